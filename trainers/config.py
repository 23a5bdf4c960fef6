"""Settings and results of a training run (shared by every recipe)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from trainers.errors import TrainingConfigError
from trainers.schedule import ScheduleConfig

__all__ = ["TrainConfig", "FitResult"]


@dataclass(frozen=True)
class TrainConfig:
    """Settings every recipe shares.

    ``batch_size`` is the global batch of one forward pass (all ranks together); an optimizer step
    sees ``batch_size * accum_steps`` samples. Training stops at ``max_steps`` optimizer steps or
    after ``time_budget_s`` seconds, whichever comes first. ``val_every``, ``log_every`` and
    ``checkpoint_every`` count optimizer steps; ``early_stop_patience`` counts validations without
    improvement. ``run_dir`` holds ``resume.pt`` and ``best.pt`` (a temporary folder if ``None``).
    """

    max_steps: int = 1000
    time_budget_s: float | None = None
    batch_size: int = 4
    accum_steps: int = 1
    lr: float = 6e-5
    weight_decay: float = 0.01
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    clip_grad_norm: float | None = None
    val_every: int = 100
    val_batch_size: int = 4
    log_every: int = 10
    checkpoint_every: int | None = None
    early_stop_patience: int | None = None
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    run_dir: Path | None = None
    resume: bool = False
    num_workers: int = 0
    focus_fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.batch_size < 1 or self.accum_steps < 1:
            raise TrainingConfigError("max_steps, batch_size and accum_steps must be at least 1")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise TrainingConfigError("the time budget must be positive")

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able settings (for checkpoints and published metadata)."""
        out = asdict(self)
        out["run_dir"] = str(self.run_dir) if self.run_dir is not None else None
        return out


@dataclass(frozen=True)
class FitResult:
    """What :meth:`Trainer.fit` ends with.

    ``status`` is ``"done"`` or ``"stopped"`` (signal or cancel: ``run_dir/resume.pt`` continues
    it); ``best_state`` holds the best weights on the CPU (rank 0 only, else ``None``).
    """

    status: str
    reason: str
    step: int
    best_step: int
    best_metrics: dict[str, Any]
    best_state: dict[str, torch.Tensor] | None
    run_dir: Path
    published: str | None = None
