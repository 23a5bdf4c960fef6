"""engine/io."""
