"""Learning-rate schedules: linear warmup, then poly, cosine or constant.

A plain, resumable scheduler instead of ``LambdaLR``: the factor is a function of the training
*progress* in ``[0, 1]``, which is ``step / max_steps`` or, under a time budget, the larger of
that and ``elapsed / budget`` (so a run stopped by its clock still ends its schedule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["ScheduleConfig", "lr_factor", "Scheduler"]

SCHEDULES = ("poly", "cosine", "constant")


@dataclass(frozen=True)
class ScheduleConfig:
    """Warmup and decay settings.

    Attributes
    ----------
    kind
        ``"poly"`` (mmseg: ``(1 - progress) ** power``), ``"cosine"`` or ``"constant"``.
    warmup_steps
        Linear warmup from ``warmup_ratio`` x lr to lr over this many optimizer steps.
    warmup_ratio
        Starting factor of the warmup (mmseg uses 1e-6).
    power
        Exponent of the poly schedule (1.0 in the MCANet configs).
    min_ratio
        Floor of the factor after warmup (0 = decay to zero).
    """

    kind: str = "poly"
    warmup_steps: int = 0
    warmup_ratio: float = 1e-6
    power: float = 1.0
    min_ratio: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.kind!r}: use one of {', '.join(SCHEDULES)}")
        if self.warmup_steps < 0:
            raise ValueError("warmup_steps must be >= 0")


def lr_factor(cfg: ScheduleConfig, step: int, progress: float) -> float:
    """The lr multiplier at optimizer ``step`` (0-based) and training ``progress`` in [0, 1]."""
    if step < cfg.warmup_steps:
        return cfg.warmup_ratio + (1.0 - cfg.warmup_ratio) * step / cfg.warmup_steps
    p = min(max(progress, 0.0), 1.0)
    if cfg.kind == "poly":
        f = (1.0 - p) ** cfg.power
    elif cfg.kind == "cosine":
        f = 0.5 * (1.0 + math.cos(math.pi * p))
    else:
        f = 1.0
    return cfg.min_ratio + (1.0 - cfg.min_ratio) * f


class Scheduler:
    """Sets each param group's lr to ``group["initial_lr"] * lr_factor(...)``.

    Parameters
    ----------
    optimizer
        Its param groups' ``lr`` at construction are taken as the base learning rates.
    cfg
        The schedule.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: ScheduleConfig) -> None:
        self.optimizer = optimizer
        self.cfg = cfg
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.factor = 1.0

    def set(self, step: int, progress: float) -> float:
        """Apply the factor for ``step``/``progress``; returns the first group's lr."""
        self.factor = lr_factor(self.cfg, step, progress)
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * self.factor
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict[str, float]:
        """Resumable state (the factor last applied)."""
        return {"factor": self.factor}

    def load_state_dict(self, state: dict[str, float]) -> None:
        """Restore :meth:`state_dict`."""
        self.factor = float(state["factor"])
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * self.factor
