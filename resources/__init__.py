"""Data only: palettes, prompt lists, the application icon, styles and the sample project.

``resources.path("sample/photos")`` gives the folder of a resource inside the installed package
(or the PyInstaller bundle).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def path(relative: str) -> Path:
    """The absolute path of a file or folder under ``resources/``."""
    return ROOT / relative
