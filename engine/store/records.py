"""Rows of the project store as frozen dataclasses.

Every method of :class:`engine.store.project.Project` that reads rows returns these; none of them
holds a database connection, so they can be passed between threads and kept after a close.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine.errors import ProjectError

__all__ = [
    "ItemKind",
    "ItemStatus",
    "STATUSES",
    "Geometry",
    "ItemRecord",
    "Provenance",
    "VersionRecord",
    "ClassRecord",
    "TrainingRunRecord",
    "CheckpointRecord",
]

ItemKind = Literal["photo", "volume"]
ItemStatus = Literal["new", "predicted", "corrected", "approved"]
STATUSES: tuple[str, ...] = ("new", "predicted", "corrected", "approved")


@dataclass(frozen=True)
class Geometry:
    """Where a volume's grid lies in patient space (see :mod:`engine.items` for conventions).

    Attributes
    ----------
    spacing
        ``(sx, sy, sz)`` voxel size in mm.
    origin
        ``(x, y, z)`` LPS position in mm of voxel ``(0, 0, 0)``.
    direction
        Row-major flattening of the ``(3, 3)`` direction matrix (columns are the index axes).
    """

    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

    def to_json(self) -> dict[str, list[float]]:
        """A JSON-able dict (the form stored in the database)."""
        return {"spacing": list(self.spacing), "origin": list(self.origin), "direction": list(self.direction)}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Geometry:
        """The inverse of :meth:`to_json`."""
        return cls(
            spacing=tuple(float(v) for v in value["spacing"]),  # type: ignore[arg-type]
            origin=tuple(float(v) for v in value["origin"]),  # type: ignore[arg-type]
            direction=tuple(float(v) for v in value["direction"]),
        )

    @property
    def direction_matrix(self) -> np.ndarray:
        """``(3, 3)`` float64 direction matrix."""
        return np.asarray(self.direction, dtype=np.float64).reshape(3, 3)


@dataclass(frozen=True)
class ItemRecord:
    """One photo or volume of a project.

    Attributes
    ----------
    id
        Stable item id.
    kind
        ``"photo"`` or ``"volume"``.
    source
        Absolute path of the source file (photo, NIfTI...) or DICOM series folder.
    source_relative
        ``source`` relative to the project folder when it lies inside it, else ``None``.
        When the project moves, this is the path that still works.
    series_uid
        DICOM SeriesInstanceUID, or "".
    series_key
        The key that picks this series among those in ``source`` (see ``engine.io.dicom``), or "".
    shape
        ``(H, W)`` for photos, ``(z, y, x)`` for volumes: the grid of its label maps.
    name
        Display name.
    added
        ISO 8601 UTC time it was added.
    status
        ``new``, ``predicted``, ``corrected`` or ``approved``.
    geometry
        For volumes, the grid's geometry (masks are written on it without re-reading the source).
    """

    id: int
    kind: ItemKind
    source: Path
    source_relative: Path | None
    series_uid: str
    series_key: str
    shape: tuple[int, ...]
    name: str
    added: str
    status: ItemStatus
    geometry: Geometry | None = None


@dataclass(frozen=True)
class Provenance:
    """Who made an annotation version: a model (with its checkpoint) or a person.

    Use :meth:`model` or :meth:`person` to build one.
    """

    source: Literal["model", "person"]
    model: str = ""
    checkpoint: str = ""
    user: str = ""

    def __post_init__(self) -> None:
        if self.source not in ("model", "person"):
            raise ProjectError(f"provenance source must be 'model' or 'person', not {self.source!r}")
        if self.source == "model" and not self.model:
            raise ProjectError("a model provenance needs the model name")

    @classmethod
    def from_model(cls, model: str, checkpoint: str = "") -> Provenance:
        """Made by ``model`` (catalog name) with weights ``checkpoint`` (path, tag or "")."""
        return cls("model", model=model, checkpoint=checkpoint)

    @classmethod
    def from_person(cls, user: str = "") -> Provenance:
        """Drawn or corrected by a person (``user`` may be "" when unknown)."""
        return cls("person", user=user)

    def describe(self) -> str:
        """``"model X (checkpoint Y)"`` or ``"person Z"``."""
        if self.source == "model":
            return f"model {self.model}" + (f" ({self.checkpoint})" if self.checkpoint else "")
        return f"person {self.user}" if self.user else "person"


@dataclass(frozen=True)
class VersionRecord:
    """One saved annotation (label map) of an item. Versions are never changed once committed.

    Attributes
    ----------
    item_id, version
        The item and the version number (1, 2, ... per item).
    mask_file
        Absolute path of the mask file (PNG for photos, ``.nii.gz`` for volumes).
    provenance
        Who made it.
    created
        ISO 8601 UTC time.
    parent
        The version number it was derived from, or ``None``.
    status
        The item status set together with this version.
    checksum
        SHA-256 hex digest of the label data (dtype, shape and bytes); ``None`` for versions
        migrated from schema 1, which had none.
    dtype
        ``"uint8"`` or ``"uint16"``.
    """

    item_id: int
    version: int
    mask_file: Path
    provenance: Provenance
    created: str
    parent: int | None
    status: ItemStatus
    checksum: str | None
    dtype: str = "uint8"


@dataclass(frozen=True)
class ClassRecord:
    """A class row, including deleted ones (their ids are never handed out again)."""

    id: int
    name: str
    prompt: str
    color: tuple[int, int, int]
    deleted: bool


@dataclass(frozen=True)
class TrainingRunRecord:
    """One fine-tuning run: recipe, settings, status and metrics (JSON-able dicts)."""

    id: int
    recipe: str
    settings: dict[str, Any] = field(hash=False)
    status: str
    started: str | None
    ended: str | None
    metrics: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class CheckpointRecord:
    """A checkpoint a training run produced (or one imported), with its lineage.

    Attributes
    ----------
    path
        Absolute path of the weights file.
    parent_id
        The checkpoint it was fine-tuned from, or ``None``.
    active
        Whether predictions use it now (at most one checkpoint is active per model name).
    """

    id: int
    run_id: int | None
    model: str
    path: Path
    metrics: dict[str, Any] = field(hash=False)
    parent_id: int | None
    active: bool
    created: str
