"""Scan a folder tree for DICOM image series, reading headers only.

How files become series (the decision, in order):

1. Every readable DICOM image file gives one slice per frame (:mod:`engine.io.dicom_headers`).
   Files that are empty, not DICOM, damaged, or not images (DICOMDIR, SEG, SR) are skipped and
   listed in :attr:`DicomScan.skipped` with the reason; they never stop the scan. So is a second
   copy of an instance (same SOPInstanceUID) found elsewhere in the tree.
2. Slices are grouped by SeriesInstanceUID, then split by geometry (orientation, rows/columns,
   pixel spacing, samples per pixel): a volume needs one grid.
3. Then split by *stack*: echo (EchoNumbers, or EffectiveEchoTime of enhanced frames), image
   type (ImageType value 3 plus magnitude/phase/real/imaginary markers, or enhanced FrameType
   values 3 and 4: e.g. magnitude vs phase, a localizer among axial slices),
   temporal position (TemporalPositionIdentifier / TemporalPositionIndex) and enhanced StackID.
   Each stack is a 3D volume; Maskwright annotates 3D volumes, so a 4D series becomes one entry
   per time point / echo / image type, which the person can pick from.
4. A stack whose every position occurs exactly ``n > 1`` times (a 4D series with no tag telling
   time points apart, e.g. GE fMRI) is split by acquisition order into ``n`` time points. Uneven
   repeats stay together and are reported as a problem.

Each resulting :class:`SeriesInfo` has a unique ``key``: the SeriesInstanceUID when the series
was not split, else ``"<uid>#<k>"`` (k from 1, in a stable order).
"""

from __future__ import annotations

import logging
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import DicomError
from engine.io.dicom_geometry import StackGeometry, slice_normal, stack_geometry
from engine.io.dicom_headers import SliceHeader, read_headers
from engine.jobs import CancelToken, Progress, check_cancelled, report

__all__ = ["SeriesInfo", "DicomScan", "scan_dicom", "scan_folder", "group_series"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SeriesInfo:
    """One loadable 3D image series found by :func:`scan_dicom`.

    Attributes
    ----------
    key
        Unique among the series of one scan: the SeriesInstanceUID, or ``"<uid>#<k>"`` when one
        DICOM series was split into several stacks (echoes, time points, orientations...).
    series_uid
        The SeriesInstanceUID.
    modality, description
        DICOM Modality and SeriesDescription (with the stack label appended when split).
    num_slices, rows, cols
        The volume's ``(z, y, x)`` size.
    files
        The files holding its slices (one per slice, or one multi-frame file), in z order.
    problems
        What is wrong with its geometry, found from headers alone (missing slice, uneven
        spacing, repeated positions, no geometry...). Empty means a clean regular grid.
        :func:`engine.io.dicom.load_series` refuses a series with problems unless
        ``allow_irregular=True``.
    study_uid, series_number
        From the header.
    stack
        Label of the stack within the series ("echo 2", "time point 3/10"), "" when not split.
    folder
        The common folder of ``files``.
    slices
        Per-slice headers in z order (ascending along the slice normal).
    geometry
        Spacing, origin, direction and true slice offsets of the stack.
    """

    key: str
    series_uid: str
    modality: str
    description: str
    num_slices: int
    rows: int
    cols: int
    files: tuple[Path, ...]
    problems: tuple[str, ...] = ()
    study_uid: str = ""
    series_number: int | None = None
    stack: str = ""
    folder: Path = Path(".")
    slices: tuple[SliceHeader, ...] = field(default=(), repr=False, compare=False)
    geometry: StackGeometry | None = field(default=None, repr=False, compare=False)

    def summary(self) -> str:
        """One line for lists and error messages."""
        text = (f"{self.key}: {self.modality or '?'} {self.description!r}, {self.num_slices} slices of "
                f"{self.cols}x{self.rows}")
        return text + (f" [{'; '.join(self.problems)}]" if self.problems else "")


@dataclass(frozen=True)
class DicomScan:
    """What :func:`scan_folder` found: the series, and the files it skipped with the reason."""

    series: tuple[SeriesInfo, ...]
    skipped: tuple[tuple[Path, str], ...] = ()


def _walk(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        out.extend(Path(dirpath) / f for f in sorted(filenames))
    return out


def scan_folder(folder: str | Path, *, progress: Progress | None = None,
                cancel: CancelToken | None = None) -> DicomScan:
    """Scan ``folder`` (recursively; a single file is fine too) for DICOM image series.

    Reads headers only (no pixel data). See the module docstring for how files are grouped.

    Raises
    ------
    DicomError
        ``folder`` does not exist.
    Cancelled
        ``cancel`` was set.
    """
    root = Path(folder)
    if not root.exists():
        raise DicomError("no such file or folder", root)
    files = _walk(root)
    headers: list[SliceHeader] = []
    skipped: list[tuple[Path, str]] = []
    seen: dict[str, Path] = {}
    total = len(files)
    for i, path in enumerate(files):
        check_cancelled(cancel)
        try:
            file_headers = read_headers(path)
        except DicomError as err:
            skipped.append((path, err.reason))
            _logger.info("skipped %s: %s", path, err.reason)
            continue
        uid = file_headers[0].sop_uid
        if uid and uid in seen:  # the same instance copied twice into the tree
            skipped.append((path, f"a copy of {seen[uid]} (same SOPInstanceUID)"))
            continue
        seen[uid] = path
        headers.extend(file_headers)
        if i % 64 == 0:
            report(progress, i, total, "reading DICOM headers")
    report(progress, total, total, "reading DICOM headers")
    if skipped:
        _logger.warning("%d file(s) under %s were skipped (not DICOM images, damaged, or copies)", len(skipped), root)
    return DicomScan(tuple(group_series(headers)), tuple(skipped))


def scan_dicom(folder: str | Path, *, progress: Progress | None = None,
               cancel: CancelToken | None = None) -> list[SeriesInfo]:
    """The image series under ``folder`` (see :func:`scan_folder`; skipped files are logged)."""
    return list(scan_folder(folder, progress=progress, cancel=cancel).series)


def _round(values: Iterable[float] | None, digits: int = 3) -> tuple[float, ...] | None:
    return None if values is None else tuple(round(float(v), digits) + 0.0 for v in values)


_STACK_FIELDS = ("orientation", "size", "spacing", "echo", "image type", "time", "stack")


class _Clusters:
    """Map nearly equal vectors (within ``tol`` per component) to one representative.

    Rounding alone would split two slices whose orientations differ by 1e-7 across a rounding
    boundary; clustering by distance does not.
    """

    def __init__(self, tol: float) -> None:
        self.tol = tol
        self.reps: list[tuple[float, ...]] = []

    def __call__(self, values: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if values is None:
            return None
        for rep in self.reps:
            if len(rep) == len(values) and max(abs(a - b) for a, b in zip(rep, values)) <= self.tol:
                return rep
        rep = _round(values)
        self.reps.append(rep)  # type: ignore[arg-type]
        return rep


def _group_key(s: SliceHeader, orientations: _Clusters, spacings: _Clusters) -> tuple[object, ...]:
    return (orientations(s.orientation), (s.rows, s.cols, s.samples), spacings(s.pixel_spacing), s.echo,
            s.image_type, s.temporal, s.stack_id)


def _split_repeats(slices: list[SliceHeader]) -> list[tuple[str, list[SliceHeader]]]:
    """Split a stack whose every position occurs ``n > 1`` times into ``n`` time points."""
    if len(slices) < 2 or any(s.position is None or s.orientation is None for s in slices):
        return [("", slices)]
    _, _, normal = slice_normal(slices[0].orientation)  # type: ignore[arg-type]
    where = [round(float(np.dot(s.position, normal)) / 0.01) for s in slices]  # type: ignore[arg-type]
    counts = defaultdict(int)
    for w in where:
        counts[w] += 1
    n = set(counts.values())
    if len(n) != 1 or (reps := n.pop()) < 2 or len(counts) < 2:
        return [("", slices)]
    stacks: list[list[SliceHeader]] = [[] for _ in range(reps)]
    seen: dict[int, int] = defaultdict(int)
    for w, s in sorted(zip(where, slices), key=lambda ws: ws[1].order):
        stacks[seen[w]].append(s)
        seen[w] += 1
    return [(f"time point {k + 1}/{reps}", st) for k, st in enumerate(stacks)]


def _natural_key(key: tuple[object, ...]) -> tuple[object, ...]:
    """Order stack keys naturally: "echo 2" before "echo 10", absent values first."""
    out: list[object] = []
    for part in key:
        if part is None:
            out.append((0,))
        elif isinstance(part, str):
            out.append((1, tuple((0, float(c), "") if c.replace(".", "", 1).isdigit() else (1, 0.0, c)
                                 for c in re.split(r"(\d+(?:\.\d+)?)", part) if c)))
        else:
            out.append((2, repr(part)))
    return tuple(out)


def _label(key: tuple[object, ...], varying: list[int]) -> str:
    parts = []
    for i in varying:
        name, value = _STACK_FIELDS[i], key[i]
        if name == "size":
            value = f"{value[1]}x{value[0]}"  # type: ignore[index]
        elif name == "orientation" and value is not None:
            value = "(" + ", ".join(f"{v:g}" for v in value) + ")"  # type: ignore[union-attr]
        parts.append(f"{name} {value}" if value not in ("", None) else f"no {name}")
    return ", ".join(parts)


def _common_folder(files: Sequence[Path]) -> Path:
    try:
        return Path(os.path.commonpath([str(f.parent) for f in files]))
    except ValueError:
        return files[0].parent


def group_series(headers: Sequence[SliceHeader]) -> list[SeriesInfo]:
    """Group slice headers into 3D series (see the module docstring for the rules)."""
    by_uid: dict[str, list[SliceHeader]] = defaultdict(list)
    for h in headers:
        by_uid[h.series_uid].append(h)
    out: list[SeriesInfo] = []
    for uid, slices in by_uid.items():
        groups: dict[tuple[object, ...], list[SliceHeader]] = defaultdict(list)
        orientations, spacings = _Clusters(1e-3), _Clusters(1e-3)
        for s in slices:
            groups[_group_key(s, orientations, spacings)].append(s)
        keys = sorted(groups, key=_natural_key)
        varying = [i for i in range(len(_STACK_FIELDS)) if len({k[i] for k in keys}) > 1]
        stacks: list[tuple[str, list[SliceHeader]]] = []
        for k in keys:
            label = _label(k, varying)
            for extra, part in _split_repeats(groups[k]):
                stacks.append((", ".join(p for p in (label, extra) if p), part))
        for index, (label, part) in enumerate(stacks, start=1):
            out.append(_series_info(uid if len(stacks) == 1 else f"{uid}#{index}", uid, label, part))
    out.sort(key=lambda s: (s.series_number if s.series_number is not None else 1 << 30, s.series_uid,
                            int(s.key.rpartition("#")[2]) if "#" in s.key else 0))
    return out


def _series_info(key: str, uid: str, label: str, slices: list[SliceHeader]) -> SeriesInfo:
    geometry = stack_geometry(slices)
    ordered = tuple(slices[i] for i in geometry.order)
    first = ordered[0]
    files = tuple(dict.fromkeys(s.path for s in ordered))
    problems = list(geometry.problems)
    if first.samples != 1:
        problems.append(f"colour images ({first.samples} samples per pixel) cannot be loaded as a volume")
    description = first.description + (f" ({label})" if label else "")
    return SeriesInfo(key=key, series_uid=uid, modality=first.modality, description=description,
                      num_slices=len(ordered), rows=first.rows, cols=first.cols, files=files,
                      problems=tuple(problems), study_uid=first.study_uid, series_number=first.series_number,
                      stack=label, folder=_common_folder(files), slices=ordered, geometry=geometry)
