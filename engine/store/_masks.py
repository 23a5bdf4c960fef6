"""Mask files of a project: naming, checksums, writing and reading through the one codec.

Every version gets a new file name (``item000012-v0003-<random>.png``), so a committed file is
never overwritten; files no committed row references (left by a kill between the file write and
the commit) are removed by :func:`remove_orphans` when the project is next opened for writing.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from engine.errors import ItemReadError, ProjectReadError, ProjectWriteError
from engine.io.masks import read_mask_nifti, read_mask_png, write_mask_nifti, write_mask_png
from engine.items import Volume
from engine.store.records import Geometry

__all__ = ["MASKS_DIR", "checksum", "unknown_ids", "new_mask_name", "write_mask", "read_mask", "remove_orphans"]

_logger = logging.getLogger(__name__)

MASKS_DIR = "masks"


def checksum(data: np.ndarray) -> str:
    """SHA-256 hex digest of a label raster's dtype, shape and bytes.

    SHA-256 rather than blake2b: CPUs with SHA extensions hash a 512x512x300 uint8 map about
    twice as fast (0.17 s against 0.30 s here), and it is as good at catching damaged files.
    """
    data = np.ascontiguousarray(data)
    h = hashlib.sha256()
    h.update(f"{data.dtype.str}|{data.shape}|".encode())
    h.update(memoryview(data).cast("B"))
    return h.hexdigest()


def unknown_ids(data: np.ndarray, known: set[int]) -> list[int]:
    """Non-zero ids in ``data`` that are not in ``known``, ascending.

    Fast in the usual case (every id up to the maximum is known: one ``max``); otherwise one
    comparison per unknown candidate id, or a histogram when there are many candidates.
    """
    if data.size == 0:
        return []
    top = int(data.max())
    candidates = [i for i in range(1, top + 1) if i not in known]
    if not candidates:
        return []
    if len(candidates) <= 16:
        return [i for i in candidates if np.any(data == i)]
    counts = np.bincount(data.ravel(), minlength=top + 1)
    return [i for i in candidates if counts[i]]


def new_mask_name(item_id: int, version: int, kind: str) -> str:
    """A file name no other version has used: item, version and 64 random bits."""
    suffix = ".nii.gz" if kind == "volume" else ".png"
    return f"item{item_id:06d}-v{version:04d}-{secrets.token_hex(8)}{suffix}"


def _grid(shape: tuple[int, ...], geometry: Geometry) -> Volume:
    """A zero-cost Volume carrying only a grid (the codec needs shape and geometry)."""
    array = np.broadcast_to(np.zeros((), dtype=np.uint8), shape)
    return Volume(array, spacing=geometry.spacing, origin=geometry.origin, direction=geometry.direction_matrix)


def write_mask(path: Path, data: np.ndarray, *, kind: str, geometry: Geometry | None,
               palette: np.ndarray | None = None) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename, fsync folder).

    Raises :class:`ProjectWriteError` naming the file (e.g. "... the disk is full").
    """
    if kind == "volume":
        write_mask_nifti(path, data, _grid(tuple(data.shape), geometry or Geometry()), error=ProjectWriteError)
    else:
        write_mask_png(path, data, palette=palette if data.dtype == np.uint8 else None, error=ProjectWriteError)


def read_mask(path: Path, *, kind: str, shape: tuple[int, ...], expected: str | None) -> np.ndarray:
    """Read a committed mask file and check its grid and checksum.

    Raises :class:`ProjectReadError` naming the file when it is missing, unreadable, on another
    grid, or its content differs from what was committed.
    """
    if not path.is_file():
        raise ProjectReadError("the mask file of this version is missing", path)
    try:
        if kind == "volume":
            data = read_mask_nifti(path, expect_shape=shape)  # type: ignore[arg-type]
        else:
            data = read_mask_png(path)
    except ItemReadError as err:
        raise ProjectReadError(err.reason, path) from err
    if tuple(data.shape) != tuple(shape):
        raise ProjectReadError(f"mask grid {data.shape} does not match the item's {tuple(shape)}", path)
    if expected is not None and checksum(data) != expected:
        raise ProjectReadError("the mask file's content differs from what was saved (checksum mismatch)", path)
    return data


# Names this module gives (and the codec's temporary names for them); nothing else is touched.
_OURS = re.compile(r"^\.?item\d{6,}-v\d{4,}-[0-9a-f]{16}(\.tmp-[0-9a-f]+)?(\.png|\.nii\.gz)$")


def remove_orphans(folder: Path, referenced: Iterable[str]) -> list[Path]:
    """Delete mask files in ``folder`` that no committed version references; return them.

    Only files named by :func:`new_mask_name` (or their temporary files) are considered, so a
    file someone else put there is never deleted. Only call this while holding the writer lock:
    a file being written by the writer would otherwise look like an orphan.
    """
    keep = set(referenced)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        if path.name in keep or not _OURS.match(path.name) or not path.is_file():
            continue
        try:
            path.unlink()
            removed.append(path)
        except OSError as err:
            _logger.warning("could not remove the unreferenced mask file %s: %s", path, err)
    if removed:
        _logger.info("removed %d unreferenced mask file(s) from %s", len(removed), folder)
    return removed
