"""Export a project's latest annotations through :mod:`engine.io.export` (one call, any format).

Photos go to the photo formats (png, coco, voc, yolo) as one dataset whose image names are the
photos' paths relative to their common folder; volumes go to the volume formats (nifti,
dicom-seg), one file per volume named ``<item id>-<name>``. Items of the other kind are left
out with a note. NIfTI is written on the geometry stored in the project (the source is not
re-read); DICOM SEG reads the source series, since it references its files.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ExportError
from engine.jobs import CancelToken, Progress, check_cancelled, report
from engine.store import _masks
from engine.store.project import Project
from engine.store.records import ItemRecord

__all__ = ["ProjectExport", "export_project", "DEFAULT_STATUSES"]

_logger = logging.getLogger(__name__)

DEFAULT_STATUSES: tuple[str, ...] = ("corrected", "approved")


@dataclass(frozen=True)
class ProjectExport:
    """What :func:`export_project` wrote: files, exported item ids and notes for the person."""

    format: str
    files: tuple[Path, ...]
    item_ids: tuple[int, ...]
    notes: tuple[str, ...]


def _photo_names(items: Sequence[ItemRecord]) -> list[str]:
    """Each photo's path relative to the common folder of all, "/"-separated (unique)."""
    parents = [str(i.source.parent) for i in items]
    common = Path(os.path.commonpath(parents)) if parents else Path(".")
    return [i.source.relative_to(common).as_posix() for i in items]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "volume"


def export_project(project: Project, fmt: str, out: str | Path, *, statuses: Sequence[str] | None = DEFAULT_STATUSES,
                   progress: Progress | None = None, cancel: CancelToken | None = None,
                   **options: object) -> ProjectExport:
    """Export the latest version of every item whose status is in ``statuses``.

    Parameters
    ----------
    fmt
        ``png``, ``coco``, ``voc``, ``yolo`` (photos) or ``nifti``, ``dicom-seg`` (volumes).
    out
        The dataset folder (created if needed).
    statuses
        Which items to export; ``None`` exports every item that has a saved version.
    progress, cancel
        See :mod:`engine.jobs`; progress counts items.
    **options
        Format options passed to the writer (COCO ``encoding``/``instances``...).

    Raises
    ------
    ExportError
        Unknown format, nothing to export, or a writer failure (naming the file).
    """
    from engine.io.export import FORMATS, PhotoExportEntry, export_photos, export_volume

    spec = FORMATS.get(fmt)
    out = Path(out)
    labels = project.labels()
    chosen = project.items() if statuses is None else project.items(status=list(statuses))
    notes: list[str] = []
    other = [i for i in chosen if i.kind != spec.kind]
    if other:
        notes.append(f"{len(other)} {other[0].kind}(s) left out: {spec.name} exports {spec.kind}s only")
    items = [i for i in chosen if i.kind == spec.kind]
    unannotated = [i for i in items if project.latest_version(i.id) is None]
    if spec.kind == "volume" and unannotated:
        notes.append(f"{len(unannotated)} volume(s) without a saved annotation left out")
        items = [i for i in items if i not in unannotated]
    if not items:
        wanted = ", ".join(statuses) if statuses is not None else "any status"
        raise ExportError(f"no {spec.kind}s with status {wanted} to export as {spec.name}", project.folder)

    if spec.kind == "photo":
        entries = []
        for done, (item, name) in enumerate(zip(items, _photo_names(items))):
            check_cancelled(cancel)
            report(progress, done, len(items), f"reading {name}")
            data = project.load_annotation(item.id).data if item not in unannotated else None
            entries.append(PhotoExportEntry(name, item.shape, data))  # type: ignore[arg-type]
        if unannotated:
            notes.append(f"{len(unannotated)} photo(s) without a saved annotation exported without masks")
        result = export_photos(spec.name, out, entries, labels, cancel=cancel, **options)
        report(progress, len(items), len(items), "done")
        return ProjectExport(spec.name, result.files, tuple(i.id for i in items), tuple(notes) + result.notes)

    files: list[Path] = []
    suffix = ".nii.gz" if spec.name == "nifti" else ".dcm"
    for done, item in enumerate(items):
        check_cancelled(cancel)
        report(progress, done, len(items), item.name)
        data = project.load_annotation(item.id).data
        if spec.name == "nifti":
            volume = _masks._grid(item.shape, item.geometry) if item.geometry else None
        else:
            volume = None
        if volume is None:
            from engine.io.volumes import read_volume

            volume = read_volume(item.source, series=item.series_key or None, cancel=cancel)
        extra = dict(options)
        if spec.name == "dicom-seg":
            versions = project.versions(item.id)
            models = [v.provenance.model for v in versions if v.provenance.source == "model"]
            extra.setdefault("manual", not models)
            if models:
                extra.setdefault("algorithm", models[0])
        target = out / f"{item.id:04d}-{_slug(item.name)}{suffix}"
        result = export_volume(spec.name, target, volume, data, labels, cancel=cancel, **extra)
        files.extend(result.files)
        notes.extend(result.notes)
    report(progress, len(items), len(items), "done")
    return ProjectExport(spec.name, tuple(files), tuple(i.id for i in items), tuple(notes))
