"""Reading what the person opens, in worker threads (no Qt here: these run off the GUI thread)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import UnsupportedFormatError
from engine.items import Photo, Volume
from engine.jobs import CancelToken, Progress, check_cancelled, report
from engine.store import ItemRecord

__all__ = ["Sources", "classify_paths", "read_item_source", "LoadedItem", "display_pixels"]

_logger = logging.getLogger(__name__)


@dataclass
class Sources:
    """What a set of dropped/opened paths holds."""

    photos: list[Path] = field(default_factory=list)
    volume_files: list[Path] = field(default_factory=list)
    dicom_folders: list[Path] = field(default_factory=list)
    unsupported: list[Path] = field(default_factory=list)


def classify_paths(paths: list[Path]) -> Sources:
    """Sort paths into photos, volume files and DICOM folders (folders are searched)."""
    from engine.io.photos import is_photo, list_photos
    from engine.io.volumes import is_volume_source

    out = Sources()
    for path in map(Path, paths):
        if path.is_dir():
            if is_volume_source(path):
                out.dicom_folders.append(path)
            out.photos.extend(list_photos(path))
            out.volume_files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in
                                           (".nii", ".gz", ".nrrd", ".nhdr", ".mha", ".mhd") and
                                           is_volume_source(p) and not p.name.lower().endswith(".dcm")))
        elif is_photo(path):
            out.photos.append(path)
        elif is_volume_source(path):
            if path.suffix.lower() in (".dcm", "") and not path.name.lower().endswith((".nii", ".mha")):
                out.dicom_folders.append(path.parent)
            else:
                out.volume_files.append(path)
        else:
            out.unsupported.append(path)
    return out


@dataclass
class LoadedItem:
    """An item read from disk, with its latest annotation (or ``None``)."""

    record: ItemRecord
    source: Photo | Volume
    annotation: np.ndarray | None
    base_version: int | None
    prediction: np.ndarray | None = None


def read_item_source(record: ItemRecord, *, progress: Progress | None = None,
                     cancel: CancelToken | None = None) -> Photo | Volume:
    """Read the photo or volume an item was added from."""
    check_cancelled(cancel)
    report(progress, 0, 1, f"reading {record.name}")
    if record.kind == "photo":
        from engine.io.photos import read_photo

        item: Photo | Volume = read_photo(record.source)
    elif record.kind == "volume":
        from engine.io.volumes import read_volume

        item = read_volume(record.source, series=record.series_key or None)
    else:
        raise UnsupportedFormatError(f"unknown item kind {record.kind!r}", record.source)
    report(progress, 1, 1, f"read {record.name}")
    return item


def display_pixels(photo: Photo) -> np.ndarray:
    """The ``(H, W, 3)`` uint8 pixels shown for a photo."""
    return photo.rgb
