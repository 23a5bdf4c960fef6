"""Adding sources to a project: photos, folders of photos, NIfTI/NRRD/MHA files, DICOM folders.

:func:`find_sources` turns what a person named into a list of :class:`Source` (one per photo,
volume file or DICOM series) without reading pixels; :func:`add_sources` adds them one by one,
reporting progress, and collects per-file errors instead of stopping at the first. A folder
holding several DICOM series gives one item per series (and a note saying so).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from engine.errors import Cancelled, MaskwrightError
from engine.jobs import CancelToken, Progress, check_cancelled, report
from engine.store.project import Project
from engine.store.records import ItemRecord

__all__ = ["Source", "IntakeResult", "find_sources", "add_sources"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """One thing to add: a photo file, a volume file, or one DICOM series.

    Attributes
    ----------
    kind
        ``"photo"``, ``"volume"`` (NIfTI/NRRD/MHA file) or ``"dicom"``.
    path
        The file, or for DICOM the folder (or file) that was scanned.
    series
        For DICOM, the scanned series (``engine.io.dicom.SeriesInfo``), else ``None``.
    """

    kind: Literal["photo", "volume", "dicom"]
    path: Path
    series: object | None = None

    def describe(self) -> str:
        """The path, and for DICOM the series summary."""
        if self.series is not None:
            return f"{self.path} [{self.series.summary()}]"  # type: ignore[attr-defined]
        return str(self.path)


@dataclass(frozen=True)
class IntakeResult:
    """What :func:`add_sources` did.

    Attributes
    ----------
    added
        New items, in order.
    skipped
        ``(path, reason)`` for sources already in the project.
    errors
        ``(path, reason)`` for everything that could not be added; the rest was added.
    notes
        Things worth telling (a folder with several DICOM series...).
    """

    added: tuple[ItemRecord, ...] = ()
    skipped: tuple[tuple[Path, str], ...] = ()
    errors: tuple[tuple[Path, str], ...] = ()
    notes: tuple[str, ...] = field(default=())


def _error_parts(err: MaskwrightError, fallback: Path) -> tuple[Path, str]:
    return (err.path or fallback, err.reason)


def _dicom_sources(path: Path, cancel: CancelToken | None, notes: list[str]) -> list[Source]:
    from engine.io.dicom import scan_dicom

    series = scan_dicom(path, cancel=cancel)
    if len(series) > 1:
        notes.append(f"{path} holds {len(series)} DICOM series; each is added as its own item: "
                     + "; ".join(s.summary() for s in series))
    return [Source("dicom", path, s) for s in series]


def find_sources(paths: Iterable[str | Path], *, exclude: Sequence[Path] = (),
                 cancel: CancelToken | None = None) -> tuple[list[Source], list[tuple[Path, str]], list[str]]:
    """Expand ``paths`` into sources, reading headers only.

    Parameters
    ----------
    paths
        Photos, volume files, DICOM files, and folders holding any of them (searched recursively).
    exclude
        Folders whose contents are never sources (the project's own ``masks/``).

    Returns
    -------
    sources, errors, notes
        The sources in the order given (folders: photos, then volume files, then DICOM series),
        ``(path, reason)`` for paths that hold nothing usable, and notes to show.
    """
    from engine.io.photos import is_photo, list_photos
    from engine.io.volumes import VOLUME_SUFFIXES, is_volume_source

    excluded = [Path(e).resolve() for e in exclude]

    def wanted(p: Path) -> bool:
        resolved = p.resolve()
        return not any(resolved == e or e in resolved.parents for e in excluded)

    sources: list[Source] = []
    errors: list[tuple[Path, str]] = []
    notes: list[str] = []
    for raw in paths:
        check_cancelled(cancel)
        path = Path(raw).expanduser()
        try:
            if not path.exists():
                errors.append((path, "no such file or folder"))
            elif path.is_file():
                if is_photo(path):
                    sources.append(Source("photo", path))
                elif path.name.lower().endswith(VOLUME_SUFFIXES):
                    sources.append(Source("volume", path))
                elif is_volume_source(path):
                    sources.extend(_dicom_sources(path, cancel, notes))
                else:
                    errors.append((path, "not a photo, a volume file (NIfTI, NRRD, MHA) or a DICOM file"))
            else:
                found = [Source("photo", p) for p in list_photos(path) if wanted(p)]
                volume_files = sorted(p for p in path.rglob("*") if p.is_file() and wanted(p)
                                      and p.name.lower().endswith(VOLUME_SUFFIXES) and not p.name.startswith("."))
                found += [Source("volume", p) for p in volume_files]
                if wanted(path) and is_volume_source(path):
                    found += _dicom_sources(path, cancel, notes)
                if not found:
                    errors.append((path, "no photos, volume files or DICOM series found in this folder"))
                sources.extend(found)
        except Cancelled:
            raise
        except MaskwrightError as err:
            errors.append(_error_parts(err, path))
    return sources, errors, notes


def _add_one(project: Project, source: Source, allow_irregular: bool,
             cancel: CancelToken | None) -> ItemRecord | None:
    """Add one source; ``None`` when it is already in the project."""
    if source.kind == "photo":
        if project.find_item(source.path) is not None:
            return None
        return project.add_photo(source.path)
    if source.kind == "volume":
        if project.find_item(source.path) is not None:
            return None
        return project.add_volume(source.path)
    from engine.io.dicom import load_series

    info = source.series
    folder = info.files[0] if len(info.files) == 1 else info.folder  # type: ignore[attr-defined]
    if project.find_item(folder, series_key=info.key) is not None:  # type: ignore[attr-defined]
        return None
    volume = load_series(info, allow_irregular=allow_irregular, cancel=cancel)  # type: ignore[arg-type]
    return project.add_volume(volume, series_key=info.key)  # type: ignore[attr-defined]


def add_sources(project: Project, paths: Iterable[str | Path], *, allow_irregular: bool = False,
                progress: Progress | None = None, cancel: CancelToken | None = None) -> IntakeResult:
    """Add every photo, volume and DICOM series found under ``paths`` to ``project``.

    Each source is read once (photos are decoded, DICOM series loaded) so that unreadable ones
    are caught now, with the file and the reason, rather than when someone opens them. One
    failing source does not stop the others. Sources already in the project are skipped.

    Parameters
    ----------
    allow_irregular
        Add DICOM series with missing slices or uneven spacing (otherwise they are errors).
    progress, cancel
        See :mod:`engine.jobs`; progress counts sources.
    """
    sources, errors, notes = find_sources(paths, exclude=[project.masks_dir], cancel=cancel)
    added: list[ItemRecord] = []
    skipped: list[tuple[Path, str]] = []
    total = len(sources)
    for done, source in enumerate(sources):
        check_cancelled(cancel)
        report(progress, done, total, source.path.name)
        try:
            record = _add_one(project, source, allow_irregular, cancel)
        except Cancelled:
            raise
        except MaskwrightError as err:
            errors.append(_error_parts(err, source.path))
            _logger.info("could not add %s: %s", source.describe(), err)
            continue
        if record is None:
            skipped.append((source.path, "already in the project"))
        else:
            added.append(record)
    report(progress, total, total, "done")
    return IntakeResult(tuple(added), tuple(skipped), tuple(errors), tuple(notes))
