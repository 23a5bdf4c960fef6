"""What every export writer shares: the entry and result types, checks, names and file writes."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from engine.errors import ExportError
from engine.fsutil import atomic_write_bytes
from engine.items import LabelSet

__all__ = ["PhotoExportEntry", "ExportResult", "check_entries", "check_ids", "load_entry", "output_names",
           "write_bytes", "write_json", "write_text", "labels_json"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class PhotoExportEntry:
    """One photo of a photo export.

    Attributes
    ----------
    name
        The image's file name as the dataset refers to it, relative, "/"-separated
        ("img1.jpg", "site_a/img2.png"). Output files keep its folders and replace its suffix.
    size
        ``(H, W)`` of the photo in pixels.
    labels
        ``(H, W)`` uint8/uint16 class ids (0 = no class); or a function that returns them, called
        when the writer reaches this photo (so a large project is exported without holding every
        mask in memory); or ``None`` for a photo without a mask (exported with no annotation).
    """

    name: str
    size: tuple[int, int]
    labels: np.ndarray | Callable[[], np.ndarray] | None = None

    def label_data(self) -> np.ndarray:
        """The label map (loaded if ``labels`` is a function), all zeros (uint8) when there is none.

        Raises :class:`ExportError` naming the image when the map is not ``size`` or not
        uint8/uint16.
        """
        if self.labels is None:
            return np.zeros(self.size, dtype=np.uint8)
        data = self.labels() if callable(self.labels) else self.labels
        if not isinstance(data, np.ndarray) or data.dtype not in (np.uint8, np.uint16):
            kind = data.dtype if isinstance(data, np.ndarray) else type(data).__name__
            raise ExportError(f"a label map must be a uint8 or uint16 array, got {kind}", self.name)
        if data.shape != tuple(self.size):
            raise ExportError(f"the mask is {data.shape} but the image is {tuple(self.size)}", self.name)
        return data


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote.

    Attributes
    ----------
    format
        The format name ("coco", "yolo"...).
    files
        Every file written, in writing order.
    items
        Number of photos or volumes exported.
    notes
        Things a person should know about the result (classes without pixels, lossy choices).
    """

    format: str
    files: tuple[Path, ...]
    items: int
    notes: tuple[str, ...] = field(default=())


def check_ids(data: np.ndarray, labels: LabelSet, where: str | Path) -> list[int]:
    """The class ids present in ``data``; raise :class:`ExportError` for ids ``labels`` lacks."""
    if data.dtype not in (np.uint8, np.uint16):
        raise ExportError(f"a label map must be uint8 or uint16, got {data.dtype}", where)
    if data.dtype == np.uint8:
        present = [int(i) for i in np.nonzero(np.bincount(data.ravel(), minlength=1))[0] if i]
    else:
        present = [int(i) for i in np.unique(data) if i]
    unknown = [i for i in present if i not in labels]
    if unknown:
        raise ExportError(f"the mask uses class id(s) {unknown} that the label set does not define", where)
    return present


def check_entries(entries: list[PhotoExportEntry], labels: LabelSet) -> None:
    """Validate every entry's size and in-memory label map before anything is written.

    Label maps given as functions are checked when loaded (:func:`load_entry`).
    """
    if len(labels) == 0:
        raise ExportError("the label set has no classes")
    for entry in entries:
        h, w = entry.size
        if h <= 0 or w <= 0:
            raise ExportError(f"invalid image size {entry.size}", entry.name)
        if isinstance(entry.labels, np.ndarray):
            check_ids(entry.label_data(), labels, entry.name)


def load_entry(entry: PhotoExportEntry, labels: LabelSet) -> tuple[np.ndarray, list[int]]:
    """The entry's checked ``(H, W)`` label map and the class ids present in it."""
    data = entry.label_data()
    return data, check_ids(data, labels, entry.name)


def output_names(entries: list[PhotoExportEntry], suffix: str) -> list[str]:
    """Relative output file names: each entry's name with ``suffix``; refuses unsafe or clashing ones."""
    seen: dict[str, str] = {}
    out: list[str] = []
    for entry in entries:
        rel = PurePosixPath(entry.name.replace("\\", "/"))
        if rel.is_absolute() or ".." in rel.parts or not rel.name or rel.name in (".", ".."):
            raise ExportError("an image name must be a relative path inside the dataset", entry.name)
        target = rel.with_suffix(suffix).as_posix() if rel.suffix else rel.as_posix() + suffix
        key = target.casefold()  # clashes on case-insensitive file systems too
        if key in seen:
            raise ExportError(f"both {seen[key]!r} and {entry.name!r} would be written to {target!r}", entry.name)
        seen[key] = entry.name
        out.append(target)
    return out


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` atomically, creating folders; errors become :class:`ExportError` naming ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        from engine.fsutil import describe_os_error

        raise ExportError(f"cannot create the folder: {describe_os_error(err)}", path.parent) from err
    atomic_write_bytes(path, data, error=ExportError)
    return path


def write_text(path: Path, text: str) -> Path:
    """Write UTF-8 text atomically (see :func:`write_bytes`)."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: object, *, indent: int | None = None) -> Path:
    """Write JSON (UTF-8, no NaN) atomically (see :func:`write_bytes`)."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, indent=indent)
    return write_bytes(path, text.encode("utf-8"))


def labels_json(labels: LabelSet) -> dict[str, object]:
    """The label set as plain JSON: ``{"classes": [{"id", "name", "prompt", "color"}, ...]}``."""
    return {"classes": [{"id": c.id, "name": c.name, "prompt": c.prompt, "color": list(c.color)} for c in labels]}
