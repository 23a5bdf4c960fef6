"""``python -m trainers fit --project P --recipe mcanet|cascade|densevlm [...]``: the training process.

The same command runs headless, from the desktop (which reads the JSON-line events on stdout)
and under ``torchrun`` on several GPUs or machines. Logs go to stderr. Exit status: 0 when
training finished or stopped on a signal with a resumable checkpoint, 2 for a problem with the
settings or the data (the ``error`` event says what to do), 3 when the device ran out of memory,
1 for anything else.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.errors import MaskwrightError
from trainers.errors import OutOfMemoryError
from trainers.events import EventWriter
from trainers.loop import TrainConfig, Trainer
from trainers.schedule import ScheduleConfig

__all__ = ["main", "build_parser", "RECIPE_DEFAULTS", "RecipeDefaults", "make_trainer"]

_logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class RecipeDefaults:
    """A recipe's defaults where the command line says nothing (the references' numbers)."""

    lr: float
    weight_decay: float
    schedule: str
    batch_size: int
    crop: int
    steps: int


RECIPE_DEFAULTS: dict[str, RecipeDefaults] = {
    "mcanet": RecipeDefaults(lr=6e-5, weight_decay=0.01, schedule="poly", batch_size=6, crop=256, steps=2000),
    "cascade": RecipeDefaults(lr=2e-4, weight_decay=0.01, schedule="poly", batch_size=4, crop=512, steps=2000),
    "densevlm": RecipeDefaults(lr=1e-5, weight_decay=0.1, schedule="cosine", batch_size=4, crop=448, steps=1000),
}
OFFICIAL_WARMUP = 1500  # iterations of linear warmup in the MCANet / Cascade-CLIP configs
SCRATCH_LR = 6e-4  # MCANet from random init on a few slices (measured: reference/mcanet.md)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m trainers`` argument parser."""
    parser = argparse.ArgumentParser(prog="python -m trainers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("fit", help="fine-tune a model on a project's corrected items")
    p.add_argument("--project", type=Path, required=True, help="the project folder")
    p.add_argument("--recipe", choices=sorted(RECIPE_DEFAULTS), required=True)
    g = p.add_argument_group("budget and schedule")
    g.add_argument("--steps", type=int, help="optimizer steps (recipe default)")
    g.add_argument("--time-budget", type=float, help="stop after this many seconds")
    g.add_argument("--batch-size", type=int, help="global batch per forward pass")
    g.add_argument("--accum-steps", type=int, default=1, help="forward passes per optimizer step")
    g.add_argument("--lr", type=float)
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--schedule", choices=("poly", "cosine", "constant"))
    g.add_argument("--warmup", type=int, help="warmup steps (default: 1500, at most a tenth of the run)")
    g.add_argument("--clip-grad", type=float, default=None, help="clip the gradient norm")
    g.add_argument("--val-every", type=int, help="validate every N steps (default: 10 times per run)")
    g.add_argument("--log-every", type=int, default=10)
    g.add_argument("--checkpoint-every", type=int, help="save a resumable checkpoint every N steps")
    g.add_argument("--patience", type=int, help="stop after N validations without improvement")
    g.add_argument("--val-fraction", type=float, help="share of items kept for validation")
    r = p.add_argument_group("run")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    r.add_argument("--precision", default="auto", help="auto, fp32, bf16 or fp16")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--run-dir", type=Path, help="where resumable checkpoints go (default under the project)")
    r.add_argument("--resume", action="store_true", help="continue the run in --run-dir (default: the latest)")
    r.add_argument("--workers", type=int, default=0, help="data-loading worker processes")
    r.add_argument("--threads", type=int, help="CPU threads for torch")
    r.add_argument("--no-publish", action="store_true", help="do not put the best checkpoint into the project")
    m = p.add_argument_group("model")
    m.add_argument("--crop", type=int, help="training crop / slice size in pixels")
    m.add_argument("--init", help="mcanet: auto|scratch|imagenet|checkpoint; cascade: auto|fresh|checkpoint")
    m.add_argument("--weights", type=Path, help="file for --init imagenet/checkpoint")
    m.add_argument("--variant", default="t", help="mcanet: t, s or b")
    m.add_argument("--context", type=int, default=0, help="mcanet: 2.5D neighbours per side")
    m.add_argument("--loss", default="ce", help="mcanet: ce, or bce for one class")
    m.add_argument("--backbone", default="ViT-B-16-quickgelu.openai", help="cascade/densevlm: catalog CLIP")
    m.add_argument("--prompt-tokens", type=int, default=10, help="cascade: deep visual prompt tokens (0: none)")
    m.add_argument("--teacher", help="densevlm: catalog CLIP used as teacher (default: a copy of the start)")
    p.add_argument("-v", "--verbose", action="count", default=0)
    return parser


def _run_dir(args: argparse.Namespace) -> Path:
    if args.run_dir is not None:
        return args.run_dir
    runs = args.project / "training" / "runs"
    if args.resume:
        found = sorted(runs.glob(f"{args.recipe}-*"))
        if found:
            return found[-1]
    return runs / f"{args.recipe}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


def _mcanet_from_scratch(args: argparse.Namespace) -> bool:
    if args.init == "scratch":
        return True
    if args.init not in (None, "auto"):
        return False
    from trainers.mcanet import MCANetSettings
    from trainers.project import ProjectSource

    with ProjectSource(args.project) as source:
        name = MCANetSettings(project=args.project, variant=args.variant).model_name
        return source.active_checkpoint(name) is None


def make_trainer(args: argparse.Namespace, events: EventWriter) -> Trainer:
    """The recipe's trainer for parsed ``fit`` arguments."""
    d = RECIPE_DEFAULTS[args.recipe]
    steps = args.steps or d.steps
    lr = args.lr
    if lr is None:
        lr = SCRATCH_LR if args.recipe == "mcanet" and _mcanet_from_scratch(args) else d.lr
    warmup = args.warmup if args.warmup is not None else min(OFFICIAL_WARMUP, steps // 10)
    config = TrainConfig(
        max_steps=steps, time_budget_s=args.time_budget, batch_size=args.batch_size or d.batch_size,
        accum_steps=args.accum_steps, lr=lr,
        weight_decay=args.weight_decay if args.weight_decay is not None else d.weight_decay,
        schedule=ScheduleConfig(args.schedule or d.schedule, warmup_steps=warmup), clip_grad_norm=args.clip_grad,
        val_every=args.val_every or max(1, steps // 10), log_every=args.log_every,
        checkpoint_every=args.checkpoint_every, early_stop_patience=args.patience, seed=args.seed,
        device=args.device, precision=args.precision, run_dir=_run_dir(args), resume=args.resume,
        num_workers=args.workers)
    crop = args.crop or d.crop
    common = dict(project=args.project, crop=crop, publish=not args.no_publish)
    if args.val_fraction is not None:
        common["val_fraction"] = args.val_fraction
    if args.recipe == "mcanet":
        from trainers.mcanet import MCANetSettings, MCANetTrainer

        settings = MCANetSettings(variant=args.variant, init=args.init or "auto", weights=args.weights,
                                  context=args.context, loss=args.loss, **common)  # type: ignore[arg-type]
        return MCANetTrainer(config, settings, events=events)
    if args.recipe == "cascade":
        from trainers.cascade import CascadeSettings, CascadeTrainer

        settings_c = CascadeSettings(backbone=args.backbone, init=args.init or "auto", weights=args.weights,
                                     prompt_tokens=args.prompt_tokens, **common)  # type: ignore[arg-type]
        return CascadeTrainer(config, settings_c, events=events)
    from trainers.densevlm import DenseVLMSettings, DenseVLMTrainer

    settings_d = DenseVLMSettings(backbone=args.backbone, teacher=args.teacher, **common)  # type: ignore[arg-type]
    return DenseVLMTrainer(config, settings_d, events=events)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the training process; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
                        format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    events = EventWriter()
    try:
        trainer = make_trainer(args, events)
        trainer.fit()
    except OutOfMemoryError as err:
        print(f"trainers: {err}", file=sys.stderr)
        return 3
    except MaskwrightError as err:
        if events.last("error") is None:
            events.emit("error", kind="config", message=str(err), suggestion="", step=0)
        print(f"trainers: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - the loop has already emitted an "internal" error event
        if events.last("error") is None:
            events.emit("error", kind="internal", message=f"{err.__class__.__name__}: {err}",
                        suggestion="this is a bug in Maskwright; please report it with the log", step=0)
        _logger.exception("training failed")
        return 1
    return 0
