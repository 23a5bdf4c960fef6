"""``maskwright models list|download|import|remove|path``: the weights on this machine.

Nothing downloads except through ``models download``. Without network, fetch the file on
another machine and ``models import FILE --name NAME`` it here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.jobs import CancelToken
from engine.models.catalog import default_catalog
from engine.models.weights import WeightsManager

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("models", help="list, download, import or remove model weights", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="weights folder (default: $MASKWRIGHT_CACHE_DIR, else the platform cache folder)")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = actions.add_parser("list", help="every model the app knows, and whether its weights are here")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    dl = actions.add_parser("download", help="download the weights of a model (resumes, verifies)")
    dl.add_argument("name", help="catalog name, e.g. ViT-B-16-quickgelu.openai")
    imp = actions.add_parser("import", help="copy a weights file into the cache (works offline)")
    imp.add_argument("file", type=Path, help="the weights file")
    imp.add_argument("--name", default=None, help="catalog name (default: the entry whose sha256 matches)")
    rm = actions.add_parser("remove", help="delete the cached weights of a model")
    rm.add_argument("name")
    pa = actions.add_parser("path", help="print the local weights file of a model")
    pa.add_argument("name")
    return p


def _manager(args: argparse.Namespace) -> WeightsManager:
    return WeightsManager(default_catalog(), args.cache_dir)  # None: weights.default_root()


def _size(n: int | None) -> str:
    return "?" if not n else f"{n / 1e6:,.0f} MB"


def _list(manager: WeightsManager, as_json: bool) -> int:
    rows = []
    for e in manager.catalog.list():
        path = manager.path(e.name)
        rows.append({"name": e.name, "kind": e.kind, "architecture": e.architecture, "size_bytes": e.size_bytes,
                     "licence": e.licence, "local": path is not None, "path": str(path) if path else None,
                     "description": e.description})
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Models (weights folder: {manager.root})")
    table.add_column("name", no_wrap=True)
    for col in ("kind", "size", "licence", "here", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["kind"], _size(r["size_bytes"]), r["licence"], "yes" if r["local"] else "-",
                      r["description"])
    Console().print(table)
    return 0


def _download(manager: WeightsManager, name: str) -> int:
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    entry = manager.catalog.get(name)
    cancel = CancelToken()
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn()) as bar:
        task = bar.add_task(name, total=entry.size_bytes)

        def progress(done: int, total: int, message: str) -> None:
            bar.update(task, completed=done, total=total or entry.size_bytes)

        try:
            path = manager.download(name, progress=progress, cancel=cancel)
        except KeyboardInterrupt:
            cancel.cancel()
            raise
    print(path)
    return 0


def run(args: argparse.Namespace) -> int:
    manager = _manager(args)
    if args.action == "list":
        return _list(manager, args.json)
    if args.action == "download":
        return _download(manager, args.name)
    if args.action == "import":
        print(manager.import_file(args.file, args.name))
        return 0
    if args.action == "remove":
        removed = manager.remove(args.name)
        print(f"removed {len(removed)} file(s)" if removed else f"no cached weights of {args.name}")
        return 0
    print(manager.ensure_local(args.name))  # "path": raises with the commands when missing
    return 0
