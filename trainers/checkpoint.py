"""Resumable training checkpoints: plain tensors and dicts, written atomically, read safely.

A resume checkpoint (``resume.pt`` in the run folder) holds everything needed to continue a run
exactly: model, optimizer, scheduler and gradient-scaler states, every rank's random states,
the step, the sampler position, the best metric so far and the early-stopping counter. It is
written with ``torch.save`` and read with ``torch.load(..., weights_only=True)``: no code is
ever unpickled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.fsutil import atomic_path
from trainers.errors import TrainingConfigError, TrainingError
from trainers.sampling import SamplerState
from trainers.schedule import Scheduler

__all__ = ["RESUME_NAME", "BEST_NAME", "FORMAT", "RunState", "save", "load", "save_resume", "load_resume"]

_logger = logging.getLogger(__name__)

RESUME_NAME = "resume.pt"
BEST_NAME = "best.pt"
FORMAT = "maskwright-train-checkpoint"
VERSION = 1


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` (tensors, dicts, lists, numbers, strings) atomically to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, error=TrainingError) as tmp:
        torch.save({"format": FORMAT, "version": VERSION, **payload}, tmp)


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save` (weights_only, on the CPU).

    Raises
    ------
    TrainingConfigError
        The file is missing, damaged or not a Maskwright training checkpoint.
    """
    if not path.is_file():
        raise TrainingConfigError("no checkpoint to resume from (start without --resume)", path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a damaged file
        raise TrainingConfigError(f"the checkpoint cannot be read ({err.__class__.__name__}: {err})", path) from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise TrainingConfigError("not a Maskwright training checkpoint", path)
    if int(payload.get("version", 0)) > VERSION:
        raise TrainingConfigError("the checkpoint was written by a newer Maskwright", path)
    return payload


@dataclass
class RunState:
    """Mutable bookkeeping of one run: what a resume checkpoint restores besides the modules."""

    step: int = 0
    elapsed: float = 0.0
    sampler: SamplerState = field(default_factory=SamplerState)
    best_value: float | None = None
    best_step: int = -1
    best_metrics: dict[str, Any] = field(default_factory=dict)
    best_state: dict[str, torch.Tensor] | None = None
    bad_validations: int = 0
    last_loss: float | None = None


def save_resume(
    path: Path,
    *,
    recipe: str,
    model_state: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: Scheduler,
    scaler: torch.amp.GradScaler,
    state: RunState,
    rngs: list[dict[str, Any]],
    config: dict[str, Any],
) -> None:
    """Write everything needed to continue a run exactly (``rngs``: every rank's random states)."""
    save(path, {
        "recipe": recipe, "step": state.step, "elapsed": state.elapsed, "model": model_state,
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
        "rng": rngs, "sampler": state.sampler.as_dict(), "config": config,
        "best": {"value": state.best_value, "step": state.best_step, "metrics": state.best_metrics,
                 "bad_validations": state.bad_validations, "last_loss": state.last_loss},
    })


def load_resume(
    path: Path,
    *,
    recipe: str,
    load_model: Callable[[dict[str, torch.Tensor]], None],
    optimizer: torch.optim.Optimizer,
    scheduler: Scheduler,
    scaler: torch.amp.GradScaler,
) -> tuple[RunState, list[dict[str, Any]]]:
    """Restore :func:`save_resume` (``load_model`` receives the saved model state); returns the run state and the random
    states of every rank that wrote it.

    Raises
    ------
    TrainingConfigError
        Missing or damaged file, another recipe, or weights that do not fit the model.
    """
    ck = load(path)
    if ck.get("recipe") != recipe:
        raise TrainingConfigError(f"the checkpoint is from recipe {ck.get('recipe')!r}, not {recipe!r}", path)
    try:
        load_model(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
    except (RuntimeError, ValueError, KeyError) as err:
        raise TrainingConfigError(f"the checkpoint does not fit this model or its settings ({err})", path) from err
    scheduler.load_state_dict(ck["scheduler"])
    if ck["scaler"]:
        scaler.load_state_dict(ck["scaler"])
    best = ck["best"]
    state = RunState(step=int(ck["step"]), elapsed=float(ck["elapsed"]), sampler=SamplerState(**ck["sampler"]),
                     best_value=best["value"], best_step=int(best["step"]), best_metrics=dict(best["metrics"]),
                     bad_validations=int(best["bad_validations"]), last_loss=best["last_loss"])
    _logger.info("resumed %s at step %d", path, state.step)
    return state, list(ck["rng"])
