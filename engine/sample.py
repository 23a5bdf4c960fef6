"""The bundled sample project: three photos and a small CT phantom, ready to annotate.

``ensure_sample_project(folder)`` builds it on first use (copying the material out of
``resources/sample`` into the project, so the project stays valid wherever it is moved) and
returns the folder; later calls leave an existing project untouched.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import platformdirs

from engine.errors import ProjectError
from engine.items import LabelSet
from engine.store.intake import add_sources
from engine.store.project import Project

__all__ = ["SAMPLE_CLASSES", "default_sample_folder", "ensure_sample_project"]

_logger = logging.getLogger(__name__)

SAMPLE_CLASSES = "person; astronaut, cat; kitten, cup; mug, liver, kidney, spine; vertebra"


def _material() -> Path:
    import resources

    return resources.path("sample")


def default_sample_folder() -> Path:
    """Where ``make run`` keeps the sample project: the per-user data folder."""
    return Path(platformdirs.user_data_dir("maskwright")) / "sample-project"


def ensure_sample_project(folder: str | Path | None = None) -> Path:
    """Create the sample project in ``folder`` unless a project is already there; return the folder."""
    folder = Path(folder) if folder is not None else default_sample_folder()
    if (folder / "project.sqlite").exists():
        return folder
    material = _material()
    sources = folder / "sources"
    for name in ("photos", "ct_phantom"):
        shutil.copytree(material / name, sources / name, dirs_exist_ok=True)
    with Project.create(folder, name="Maskwright sample", labels=LabelSet.from_text(SAMPLE_CLASSES)) as project:
        result = add_sources(project, [sources / "photos", sources / "ct_phantom"])
        if result.errors or len(result.added) != 4:
            raise ProjectError(f"the sample project could not be built: {result.errors}", folder)
    _logger.info("sample project created in %s", folder)
    return folder
