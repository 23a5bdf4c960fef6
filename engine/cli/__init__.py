"""The ``maskwright`` command line.

Each sub-command lives in its own module of this package with two functions:
``add_parser(subparsers)`` and ``run(args) -> int``. Errors Maskwright raises on purpose are
printed as one line naming the file and the reason (exit status 2); a cancel (Ctrl-C) exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from engine import __version__
from engine.errors import Cancelled, MaskwrightError

__all__ = ["main", "build_parser"]

# Sub-command modules, in the order `maskwright --help` lists them.
COMMAND_MODULES = (
    "engine.cli.project",
    "engine.cli.export",
    "engine.cli.train",
    "engine.cli.models",
    "engine.cli.segment",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, one sub-parser per command module."""
    parser = argparse.ArgumentParser(
        prog="maskwright",
        description="Open photos or DICOM series, type class names, get masks; correct; fine-tune.",
    )
    parser.add_argument("--version", action="version", version=f"maskwright {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        command = module.add_parser(sub)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "passes_unknown_args", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.unknown_args = unknown
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args._run(args) or 0)
    except Cancelled:
        print("maskwright: cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("maskwright: cancelled", file=sys.stderr)
        return 130
    except MaskwrightError as err:
        print(f"maskwright: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
