"""The project store: a folder with ``project.sqlite`` (WAL) and ``masks/``.

>>> with Project.create("my-project", name="Cats") as project:   # doctest: +SKIP
...     item = project.add_photo("cat.jpg")
...     project.add_class("cat")
...     project.save_annotation(item.id, mask, provenance=Provenance.from_person("ana"))

See :mod:`engine.store.project` for the write order that makes it crash-safe and
``docs/adr/0001-project-store.md`` for the decisions behind it.
"""

from engine.store.lock import ProjectLock
from engine.store.project import DB_NAME, Project
from engine.store.records import (
    STATUSES,
    CheckpointRecord,
    ClassRecord,
    Geometry,
    ItemKind,
    ItemRecord,
    ItemStatus,
    Provenance,
    TrainingRunRecord,
    VersionRecord,
)
from engine.store.schema import CURRENT_VERSION

__all__ = [
    "Project",
    "ProjectLock",
    "DB_NAME",
    "CURRENT_VERSION",
    "STATUSES",
    "ItemKind",
    "ItemStatus",
    "Geometry",
    "ItemRecord",
    "Provenance",
    "VersionRecord",
    "ClassRecord",
    "TrainingRunRecord",
    "CheckpointRecord",
]
