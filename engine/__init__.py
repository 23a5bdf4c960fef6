"""Maskwright's Qt-free core: items, I/O, the project store, models and segmentation engines.

Nothing in this package imports Qt, ``trainers`` or ``desktop`` (checked by import-linter).
"""

__version__ = "0.1.0"
