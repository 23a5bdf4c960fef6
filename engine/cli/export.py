"""``maskwright export``: write a project's latest masks in a format other tools read.

  maskwright export PROJECT --format coco|voc|yolo|png|nifti|dicom-seg --out OUT
                    [--status corrected,approved] [--encoding rle|polygon] [--instances class|connected]

Photo formats (png, coco, voc, yolo) export the photos, volume formats (nifti, dicom-seg) the
volumes. By default only items marked corrected or approved are exported; ``--status all``
exports every item with a saved mask.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.errors import ExportError
from engine.jobs import CancelToken
from engine.store import STATUSES, Project

__all__ = ["add_parser", "run"]

_FORMATS = ("coco", "voc", "yolo", "png", "nifti", "dicom-seg")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("export", help="export masks as COCO, VOC, YOLO, PNG, NIfTI or DICOM SEG",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("project", type=Path, help="the project folder")
    p.add_argument("--format", required=True, choices=_FORMATS, help="the export format")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--status", default="corrected,approved",
                   help=f"comma-separated statuses to export ({', '.join(STATUSES)}) or 'all' "
                        "(default: corrected,approved)")
    p.add_argument("--encoding", choices=("rle", "polygon"), default=None, help="COCO: mask encoding")
    p.add_argument("--instances", choices=("class", "connected"), default=None,
                   help="COCO: one annotation per class, or per connected component")
    return p


def _statuses(text: str) -> list[str] | None:
    wanted = [s.strip().lower() for s in text.split(",") if s.strip()]
    if not wanted or wanted == ["all"]:
        return None
    unknown = [s for s in wanted if s not in STATUSES]
    if unknown:
        raise ExportError(f"unknown status {', '.join(unknown)}; use {', '.join(STATUSES)} or all")
    return wanted


def run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from engine.store.exporting import export_project

    statuses = _statuses(args.status)
    options = {k: v for k, v in (("encoding", args.encoding), ("instances", args.instances)) if v is not None}
    cancel = CancelToken()
    with Project.open(args.project, readonly=True) as project:
        columns = (TextColumn("Exporting"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[current]}"))
        with Progress(*columns, transient=True, disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task("export", total=None, current="")

            def progress(done: int, total: int, message: str) -> None:
                bar.update(task, completed=done, total=total or None, current=message)

            try:
                result = export_project(project, args.format, args.out, statuses=statuses, progress=progress,
                                        cancel=cancel, **options)
            except KeyboardInterrupt:
                cancel.cancel()
                raise
    for note in result.notes:
        print(f"note: {note}")
    print(f"Exported {len(result.item_ids)} item(s) as {result.format} to {args.out} ({len(result.files)} files)")
    return 0
