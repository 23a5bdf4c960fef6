"""``maskwright project new|add|info``: make a project, add photos and volumes, show what is in it.

  maskwright project new FOLDER [--name NAME] [--classes "cat; kitten, dog"]
  maskwright project add PROJECT PATHS...      photos, folders, DICOM folders, NIfTI/NRRD/MHA files
  maskwright project info PROJECT [--check]

A folder holding several DICOM series adds each series as its own item. Sources that cannot be
read are listed with the file and the reason; the others are still added.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from engine.items import LabelSet
from engine.jobs import CancelToken
from engine.store import STATUSES, Project
from engine.store.intake import IntakeResult, add_sources

__all__ = ["add_parser", "run"]

_BAR_FROM = 5  # show a progress bar when adding at least this many sources


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("project", help="create a project, add photos or volumes, show its contents",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    new = actions.add_parser("new", help="create an empty project folder")
    new.add_argument("folder", type=Path, help="the project folder (created if needed)")
    new.add_argument("--name", default="", help="display name (default: the folder's name)")
    new.add_argument("--classes", default="", help='class names, e.g. "cat; kitten, dog, sky" (";" = synonyms)')
    add = actions.add_parser("add", help="add photos, folders of photos, DICOM folders or volume files")
    add.add_argument("project", type=Path, help="the project folder")
    add.add_argument("paths", nargs="+", type=Path, help="files or folders to add")
    add.add_argument("--allow-irregular", action="store_true",
                     help="also add DICOM series with missing slices or uneven spacing")
    info = actions.add_parser("info", help="items by status, classes, versions, checkpoints")
    info.add_argument("project", type=Path, help="the project folder")
    info.add_argument("--check", action="store_true", help="also verify every saved mask file")
    return p


def run(args: argparse.Namespace) -> int:
    if args.action == "new":
        return _new(args)
    if args.action == "add":
        return _add(args)
    return _info(args)


def _new(args: argparse.Namespace) -> int:
    labels = LabelSet.from_text(args.classes)
    with Project.create(args.folder, name=args.name, labels=labels) as project:
        print(f"Created project {project.name!r} in {project.folder}")
        if len(labels):
            print("Classes: " + ", ".join(f"{c.id} {c.name}" + (f" ({c.prompt})" if c.prompt != c.name else "")
                                          for c in labels))
    return 0


def _add_with_bar(project: Project, paths: list[Path], allow_irregular: bool) -> IntakeResult:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    cancel = CancelToken()
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[current]}"))
    with Progress(*columns, transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("Adding", total=None, current="finding files...")

        def progress(done: int, total: int, message: str) -> None:
            bar.update(task, completed=done, total=total or None, current=message)

        try:
            return add_sources(project, paths, allow_irregular=allow_irregular, progress=progress, cancel=cancel)
        except KeyboardInterrupt:
            cancel.cancel()
            raise


def _size(shape: tuple[int, ...]) -> str:
    """``"W x H px"`` for photos, ``"X x Y x Z voxels"`` for volumes."""
    if len(shape) == 2:
        return f"{shape[1]}x{shape[0]} px"
    return "x".join(str(n) for n in reversed(shape)) + " voxels"


def _add(args: argparse.Namespace) -> int:
    with Project.open(args.project) as project:
        paths = list(args.paths)
        many = len(paths) >= _BAR_FROM or any(p.is_dir() for p in paths)
        if many:
            result = _add_with_bar(project, paths, args.allow_irregular)
        else:
            result = add_sources(project, paths, allow_irregular=args.allow_irregular)
        for note in result.notes:
            print(f"note: {note}")
        for item in result.added:
            print(f"added {item.kind} {item.id}: {item.name} ({_size(item.shape)})")
        for path, reason in result.skipped:
            print(f"skipped {path}: {reason}")
        for path, reason in result.errors:
            print(f"maskwright: error: {path}: {reason}", file=sys.stderr)
        kinds = Counter(item.kind for item in result.added)
        print(f"{len(result.added)} item(s) added ({kinds['photo']} photos, {kinds['volume']} volumes), "
              f"{len(result.skipped)} already there, {len(result.errors)} error(s)")
    return 1 if result.errors else 0


def _info(args: argparse.Namespace) -> int:
    with Project.open(args.project, readonly=True) as project:
        meta = project.meta()
        items = project.items()
        print(f"Project {project.name!r}: {project.folder}")
        print(f"  schema {meta.get('schema_version')}, created {meta.get('created', '?')}, "
              f"last written by Maskwright {meta.get('app_version', '?')}")
        kinds = Counter(i.kind for i in items)
        statuses = Counter(i.status for i in items)
        print(f"Items: {len(items)} ({kinds['photo']} photos, {kinds['volume']} volumes)")
        print("  " + ", ".join(f"{s} {statuses[s]}" for s in STATUSES))
        classes = project.classes()
        active = [c for c in classes if not c.deleted]
        print(f"Classes: {len(active)}" + (f" (+{len(classes) - len(active)} deleted)" if len(active) < len(classes)
                                            else ""))
        for c in active:
            prompt = f"  prompt {c.prompt!r}" if c.prompt != c.name else ""
            print(f"  {c.id:>3}  {c.name}  #{c.color[0]:02x}{c.color[1]:02x}{c.color[2]:02x}{prompt}")
        sources: Counter[str] = Counter()
        annotated = 0
        for item in items:
            versions = project.versions(item.id)
            annotated += bool(versions)
            sources.update(v.provenance.source for v in versions)
        print(f"Versions: {sum(sources.values())} on {annotated} item(s) "
              f"({sources['model']} by a model, {sources['person']} by a person)")
        runs = project.training_runs()
        if runs:
            last = runs[-1]
            print(f"Training runs: {len(runs)} (last: {last.id} {last.recipe}, {last.status}, started {last.started})")
        checkpoints = project.checkpoints()
        print(f"Checkpoints: {len(checkpoints)}")
        for ck in checkpoints:
            mark = "*" if ck.active else " "
            lineage = f" <- {ck.parent_id}" if ck.parent_id is not None else ""
            metrics = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in ck.metrics.items())
            print(f" {mark}{ck.id:>3}  {ck.model}  {ck.path}{lineage}" + (f"  [{metrics}]" if metrics else ""))
        if args.check:
            problems = project.verify()
            for line in problems:
                print(f"maskwright: error: {line}", file=sys.stderr)
            print("Mask files: " + ("all complete and unchanged" if not problems else f"{len(problems)} problem(s)"))
            return 1 if problems else 0
    return 0
