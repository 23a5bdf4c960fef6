"""engine/medical."""
