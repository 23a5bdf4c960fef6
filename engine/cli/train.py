"""``maskwright train``: run the training process (``python -m trainers fit ...``).

The engine never imports ``trainers`` (import rule): this command starts the training process
as a child with the same Python (or, in the packaged app, the bundle's own executable), passes
every argument through, and returns its exit status. Its progress arrives as JSON lines on
stdout, exactly as the desktop reads it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

__all__ = ["add_parser", "run", "trainer_command"]


def trainer_command(*args: str) -> list[str]:
    """The command line that starts the training process with ``args``.

    In a PyInstaller bundle (``sys.frozen``) the bundle's executable dispatches ``trainers``
    itself; elsewhere it is ``python -m trainers``.
    """
    if getattr(sys, "frozen", False):
        return [sys.executable, "trainers", *args]
    return [sys.executable, "-m", "trainers", *args]


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="fine-tune a model on the project's corrected items",
        description="Fine-tune on corrected items: the arguments go to `python -m trainers fit`, e.g.\n"
        "  maskwright train --project P --recipe mcanet|cascade|densevlm [--steps N] ...\n"
        "(`maskwright train --help-recipe` shows every option of the training process).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--help-recipe", action="store_true", help="show the training process's own options")
    p.set_defaults(passes_unknown_args=True)  # engine.cli.main hands the rest to the trainer
    return p


def run(args: argparse.Namespace) -> int:
    extra = [a for a in args.unknown_args if a != "--"]
    if args.help_recipe:
        extra = ["--help"]
    return subprocess.call(trainer_command("fit", *extra))
