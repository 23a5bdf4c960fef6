"""The things a person annotates and the masks they make.

Conventions used everywhere in Maskwright:

* Photos are ``(H, W, 3)`` uint8 RGB arrays, row-major, EXIF orientation already applied.
* Volumes are ``(z, y, x)`` arrays. Geometry follows SimpleITK/DICOM (LPS patient space, mm):
  ``spacing`` is ``(sx, sy, sz)``, ``origin`` is the centre of voxel ``(x=0, y=0, z=0)``,
  ``direction`` is a 3x3 matrix whose *columns* are the x, y and z index axes in LPS.
* Label maps are uint8 (up to 255 classes) or uint16 rasters on exactly the grid of their item;
  0 means "no class". Class ids are stable: once a mask uses an id it never changes meaning.
"""

from __future__ import annotations

import colorsys
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from engine.errors import LabelError

__all__ = [
    "Photo",
    "Volume",
    "WindowPreset",
    "SourceInstance",
    "LabelClass",
    "LabelSet",
    "LabelMap",
    "parse_class_text",
    "default_color",
]

RGB = tuple[int, int, int]


@dataclass(frozen=True, eq=False)
class Photo:
    """A 2D photo.

    Attributes
    ----------
    rgb
        ``(H, W, 3)`` uint8 RGB, EXIF orientation applied: what models and the canvas see.
    source
        The file it was read from, if any.
    raw
        The pixel data at its original depth and channel count when that differs from ``rgb``
        (16-bit, grayscale, RGBA...): ``(H, W)`` or ``(H, W, C)``, same orientation as ``rgb``.
        ``None`` when ``rgb`` is already faithful.
    frame
        Index of the frame in a multi-page file (TIFF), else 0.
    """

    rgb: np.ndarray
    source: Path | None = None
    raw: np.ndarray | None = None
    frame: int = 0

    def __post_init__(self) -> None:
        if self.rgb.ndim != 3 or self.rgb.shape[2] != 3 or self.rgb.dtype != np.uint8:
            raise ValueError(f"Photo.rgb must be (H, W, 3) uint8, got {self.rgb.shape} {self.rgb.dtype}")
        if self.raw is not None and self.raw.shape[:2] != self.rgb.shape[:2]:
            raise ValueError("Photo.raw must have the same height and width as Photo.rgb")

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)``: the grid a label map of this photo has."""
        return (int(self.rgb.shape[0]), int(self.rgb.shape[1]))

    @property
    def pixels(self) -> np.ndarray:
        """The faithful pixel data: ``raw`` when present, else ``rgb``."""
        return self.raw if self.raw is not None else self.rgb


@dataclass(frozen=True)
class WindowPreset:
    """A display window: intensities in ``[center - width/2, center + width/2]`` map to grey."""

    name: str
    center: float
    width: float

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Map ``values`` to float32 in ``[0, 1]`` (linear, clipped)."""
        lo = self.center - self.width / 2.0
        out = (np.asarray(values, dtype=np.float32) - np.float32(lo)) / np.float32(max(self.width, 1e-6))
        return np.clip(out, 0.0, 1.0, out=out)


@dataclass(frozen=True)
class SourceInstance:
    """Where one slice of a volume came from: a DICOM file and, for multi-frame files, a frame."""

    path: Path
    sop_instance_uid: str = ""
    frame: int | None = None  # 1-based frame number in a multi-frame file, else None


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D image on a physical grid.

    Attributes
    ----------
    array
        ``(z, y, x)`` voxel values with the modality rescale applied (HU for CT).
    spacing
        ``(sx, sy, sz)`` voxel size in mm.
    origin
        ``(x, y, z)`` LPS position in mm of the centre of voxel index ``(0, 0, 0)``.
    direction
        ``(3, 3)`` float64, columns are the directions of the x, y and z index axes in LPS.
    modality
        DICOM modality ("CT", "MR", ...) or "" when unknown.
    windows
        Window presets from the header (first is the default), possibly empty.
    source
        The folder or file it was read from.
    source_instances
        One entry per slice (z order) for DICOM sources, else empty.
    series_uid, study_uid, frame_of_reference_uid
        DICOM identifiers when known, else "".
    description
        Series description or file name.
    """

    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    modality: str = ""
    windows: tuple[WindowPreset, ...] = ()
    source: Path | None = None
    source_instances: tuple[SourceInstance, ...] = ()
    series_uid: str = ""
    study_uid: str = ""
    frame_of_reference_uid: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise ValueError(f"Volume.array must be (z, y, x), got shape {self.array.shape}")
        direction = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)
        object.__setattr__(self, "direction", direction)
        object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        object.__setattr__(self, "origin", tuple(float(o) for o in self.origin))
        if self.source_instances and len(self.source_instances) != self.array.shape[0]:
            raise ValueError("Volume.source_instances needs one entry per slice")

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(z, y, x)``: the grid a label map of this volume has."""
        return tuple(int(n) for n in self.array.shape)  # type: ignore[return-value]

    def index_to_lps(self, index_xyz: np.ndarray) -> np.ndarray:
        """LPS mm positions of voxel indices given as ``(..., 3)`` in ``(x, y, z)`` order."""
        index_xyz = np.asarray(index_xyz, dtype=np.float64)
        return np.asarray(self.origin) + (index_xyz * np.asarray(self.spacing)) @ self.direction.T

    def with_array(self, array: np.ndarray) -> Volume:
        """The same geometry and metadata with other voxel values (same shape)."""
        if array.shape != self.array.shape:
            raise ValueError(f"shape {array.shape} differs from the volume's {self.array.shape}")
        return replace(self, array=array)


_TAB10 = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]


def default_color(class_id: int) -> RGB:
    """A distinct, deterministic colour for a class id (tab10 first, then golden-ratio hues)."""
    if class_id <= 0:
        return (0, 0, 0)
    if class_id <= len(_TAB10):
        return _TAB10[class_id - 1]
    hue = (class_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.65, 0.95)
    return (int(r * 255), int(g * 255), int(b * 255))


@dataclass(frozen=True)
class LabelClass:
    """One class a person annotates.

    Attributes
    ----------
    id
        Stable integer id (1..65535) used in label maps; 0 is "no class".
    name
        Display name, unique within a label set (case-insensitive).
    prompt
        Text models read: synonyms separated by ``;`` ("cat; kitten"). Defaults to ``name``.
    color
        RGB display colour.
    """

    id: int
    name: str
    prompt: str = ""
    color: RGB = (0, 0, 0)

    def __post_init__(self) -> None:
        if not 1 <= self.id <= 65535:
            raise LabelError(f"class id {self.id} is out of range 1..65535")
        if not self.name.strip():
            raise LabelError("a class needs a non-empty name")
        if not self.prompt:
            object.__setattr__(self, "prompt", self.name)

    @property
    def synonyms(self) -> tuple[str, ...]:
        """The names in ``prompt``, stripped, empty ones dropped."""
        return tuple(s.strip() for s in self.prompt.split(";") if s.strip())


def parse_class_text(text: str) -> list[tuple[str, str]]:
    """Split what a person typed into ``(name, prompt)`` pairs.

    Classes are separated by commas or new lines, synonyms of one class by ``;``. The name is the
    first synonym. ``"cat; kitten, dog"`` gives ``[("cat", "cat; kitten"), ("dog", "dog")]``.
    """
    out: list[tuple[str, str]] = []
    for chunk in re.split(r"[,\n]", text):
        synonyms = [s.strip() for s in chunk.split(";") if s.strip()]
        if synonyms:
            out.append((synonyms[0], "; ".join(synonyms)))
    return out


class LabelSet:
    """An ordered set of classes with stable ids.

    Ids are never reused by :meth:`add`: a new class gets one more than the highest id ever
    seen by this set (``next_id``), so a deleted class's id cannot silently change meaning.
    """

    def __init__(self, classes: Iterable[LabelClass] = (), *, next_id: int | None = None) -> None:
        self._classes: dict[int, LabelClass] = {}
        for c in classes:
            self._insert(c)
        highest = max(self._classes, default=0)
        self.next_id = max(highest + 1, next_id or 1)

    @classmethod
    def from_text(cls, text: str) -> LabelSet:
        """A label set from typed text, e.g. ``"cat; kitten, dog, sky"`` (ids 1, 2, 3)."""
        labels = cls()
        for name, prompt in parse_class_text(text):
            labels.add(name, prompt=prompt)
        return labels

    def _insert(self, c: LabelClass) -> None:
        if c.id in self._classes:
            raise LabelError(f"class id {c.id} is used twice")
        if self.find(c.name) is not None:
            raise LabelError(f"class name {c.name!r} is used twice")
        self._classes[c.id] = c

    def add(self, name: str, *, prompt: str = "", color: RGB | None = None, id: int | None = None) -> LabelClass:
        """Add a class and return it. ``id`` defaults to :attr:`next_id`."""
        class_id = self.next_id if id is None else id
        c = LabelClass(class_id, name.strip(), prompt.strip(), color or default_color(class_id))
        self._insert(c)
        self.next_id = max(self.next_id, class_id + 1)
        return c

    def update(self, class_id: int, **changes: object) -> LabelClass:
        """Rename, re-prompt or recolour a class; its id stays."""
        old = self[class_id]
        if "id" in changes:
            raise LabelError("a class id never changes")
        new = replace(old, **changes)  # type: ignore[arg-type]
        other = self.find(new.name)
        if other is not None and other.id != class_id:
            raise LabelError(f"class name {new.name!r} is used twice")
        self._classes[class_id] = new
        return new

    def remove(self, class_id: int) -> LabelClass:
        """Remove a class; its id is never handed out again by this set."""
        return self._classes.pop(self[class_id].id)

    def find(self, name: str) -> LabelClass | None:
        """The class with this name (case-insensitive), else ``None``."""
        key = name.strip().casefold()
        return next((c for c in self._classes.values() if c.name.casefold() == key), None)

    def __getitem__(self, class_id: int) -> LabelClass:
        try:
            return self._classes[class_id]
        except KeyError:
            raise LabelError(f"no class with id {class_id}") from None

    def __contains__(self, class_id: object) -> bool:
        return class_id in self._classes

    def __iter__(self) -> Iterator[LabelClass]:
        return iter(sorted(self._classes.values(), key=lambda c: c.id))

    def __len__(self) -> int:
        return len(self._classes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelSet) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"LabelSet({list(self)!r})"

    @property
    def ids(self) -> list[int]:
        """Class ids in ascending order."""
        return sorted(self._classes)

    @property
    def max_id(self) -> int:
        """The highest id in use, or 0."""
        return max(self._classes, default=0)

    def dtype(self) -> np.dtype:
        """The smallest label-map dtype that holds every id of this set (and the next one)."""
        return np.dtype(np.uint8) if self.next_id <= 255 else np.dtype(np.uint16)

    def palette(self) -> np.ndarray:
        """``(max_id + 1, 3)`` uint8 colour table indexed by class id; row 0 is black."""
        table = np.zeros((self.max_id + 1, 3), dtype=np.uint8)
        for c in self:
            table[c.id] = c.color
        return table


@dataclass(eq=False)
class LabelMap:
    """A raster of class ids on the grid of its item.

    Attributes
    ----------
    data
        ``(H, W)`` for photos or ``(z, y, x)`` for volumes, uint8 or uint16; 0 is "no class".
    labels
        The classes the ids refer to.
    """

    data: np.ndarray
    labels: LabelSet = field(default_factory=LabelSet)

    def __post_init__(self) -> None:
        if self.data.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"LabelMap.data must be uint8 or uint16, got {self.data.dtype}")
        if self.data.ndim not in (2, 3):
            raise ValueError(f"LabelMap.data must be 2D or 3D, got shape {self.data.shape}")

    @classmethod
    def empty(cls, shape: tuple[int, ...], labels: LabelSet) -> LabelMap:
        """An all-zero map of ``shape`` with the dtype ``labels`` needs."""
        return cls(np.zeros(shape, dtype=labels.dtype()), labels)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.data.shape)

    def present_ids(self) -> list[int]:
        """Non-zero ids that occur in the map, ascending."""
        if self.data.dtype == np.uint8:
            counts = np.bincount(self.data.ravel(), minlength=1)
            return [int(i) for i in np.nonzero(counts)[0] if i]
        return [int(i) for i in np.unique(self.data) if i]

    def unknown_ids(self) -> list[int]:
        """Ids in the map that the label set does not define."""
        return [i for i in self.present_ids() if i not in self.labels]

    def mask(self, class_id: int) -> np.ndarray:
        """Boolean mask of one class."""
        return self.data == class_id
