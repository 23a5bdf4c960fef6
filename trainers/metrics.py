"""Dice and IoU per class, accumulated over a validation set (and over ranks under DDP)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.distributed as dist

__all__ = ["SegmentationStats"]


class SegmentationStats:
    """Accumulates per-class intersection and sizes of predicted and true label maps.

    Parameters
    ----------
    num_classes
        Channels of the model: class index ``c`` in ``[0, num_classes)``, 0 is background.
    ignore_index
        Target value excluded from every count (e.g. padding), default 255.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.sums = torch.zeros(3, num_classes, dtype=torch.float64)  # inter, pred, target

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch.

        Parameters
        ----------
        pred, target
            ``(B, H, W)`` (or any equal shape) integer class indices.
        """
        pred = pred.reshape(-1).long().cpu()
        target = target.reshape(-1).long().cpu()
        keep = target != self.ignore_index
        pred, target = pred[keep], target[keep]
        n = self.num_classes
        pred = pred.clamp(0, n - 1)
        self.sums[0] += torch.bincount(target[pred == target], minlength=n)[:n].double()
        self.sums[1] += torch.bincount(pred, minlength=n)[:n].double()
        self.sums[2] += torch.bincount(target, minlength=n)[:n].double()

    def all_reduce(self) -> None:
        """Sum the counts of every rank (no-op outside torch.distributed)."""
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(self.sums)

    def compute(self, names: Sequence[str] | None = None) -> dict[str, object]:
        """Metrics as a plain dict.

        Returns
        -------
        dict
            ``dice`` and ``iou``: ``{class name: value}`` for the foreground classes (index >= 1)
            that occur in the targets or predictions; ``mean_dice`` and ``mean_iou`` average them
            (NaN when no foreground class occurs).
        """
        inter, p, t = self.sums
        names = list(names) if names is not None else [str(i) for i in range(self.num_classes)]
        dice: dict[str, float] = {}
        iou: dict[str, float] = {}
        for c in range(1, self.num_classes):
            denom = float(p[c] + t[c])
            if denom == 0:
                continue
            dice[names[c]] = 2.0 * float(inter[c]) / denom
            iou[names[c]] = float(inter[c]) / (denom - float(inter[c]))
        mean_dice = sum(dice.values()) / len(dice) if dice else math.nan
        mean_iou = sum(iou.values()) / len(iou) if iou else math.nan
        return {"mean_dice": mean_dice, "mean_iou": mean_iou, "dice": dice, "iou": iou}
