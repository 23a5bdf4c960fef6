"""engine/openvocab."""
