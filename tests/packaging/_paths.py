"""Paths shared by the packaging tests."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"
BUNDLE = REPO / "dist" / "Maskwright"
EXECUTABLE = BUNDLE / ("Maskwright.exe" if os.name == "nt" else "Maskwright")


def load_packaging_module(name: str) -> ModuleType:
    """Import ``packaging/<name>.py`` (packaging/ is scripts, not a package: ``packaging`` is PyPI's)."""
    spec = importlib.util.spec_from_file_location(f"maskwright_packaging_{name}", PACKAGING / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
