"""Segmentation losses shared by the recipes (pixels labelled ``ignore_index`` never count)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["soft_dice_loss", "binary_dice_loss", "sigmoid_focal_loss", "onehot_targets"]


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, *, ignore_index: int = 255,
                   include_background: bool = False, eps: float = 1.0) -> torch.Tensor:
    """``1 - Dice`` of the softmax probabilities, averaged over classes (batch pooled).

    Parameters
    ----------
    logits
        ``(B, C, H, W)`` float.
    target
        ``(B, H, W)`` int64 class indices in ``[0, C)`` or ``ignore_index``.
    include_background
        Whether channel 0 counts in the average.
    eps
        Smoothing added to numerator and denominator (a class absent from target and prediction
        scores 1, not 0/0).
    """
    probs = logits.float().softmax(dim=1)
    valid = (target != ignore_index).unsqueeze(1)
    onehot = F.one_hot(target.clamp(0, logits.shape[1] - 1), logits.shape[1]).permute(0, 3, 1, 2).float()
    probs, onehot = probs * valid, onehot * valid
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + eps) / (denom + eps)
    if not include_background:
        dice = dice[1:]
    return 1.0 - dice.mean()


def binary_dice_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None, *,
                     eps: float = 1.0) -> torch.Tensor:
    """``1 - Dice`` of sigmoid probabilities per channel, averaged.

    Parameters
    ----------
    logits, target
        ``(B, K, ...)`` float logits and {0, 1} float targets.
    valid
        Optional ``(B, 1 or K, ...)`` mask of the pixels that count.
    """
    probs = logits.float().sigmoid()
    target = target.float()
    if valid is not None:
        probs, target = probs * valid, target * valid
    dims = [0, *range(2, logits.ndim)]
    inter = (probs * target).sum(dims)
    dice = (2 * inter + eps) / (probs.sum(dims) + target.sum(dims) + eps)
    return 1.0 - dice.mean()


def sigmoid_focal_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None, *,
                       alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Mean sigmoid focal loss (RetinaNet form, as Cascade-CLIP/ZegCLIP use it).

    Parameters
    ----------
    logits, target
        ``(B, K, ...)`` float logits and {0, 1} targets.
    valid
        Optional mask of the pixels that count (broadcast to ``logits``).
    """
    logits = logits.float()
    target = target.float()
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    if valid is None:
        return loss.mean()
    valid = valid.expand_as(loss).float()
    return (loss * valid).sum() / valid.sum().clamp_min(1.0)


def onehot_targets(target: torch.Tensor, classes: int, *, ignore_index: int = 255) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class {0, 1} targets and the valid-pixel mask of a label map.

    Parameters
    ----------
    target
        ``(B, H, W)`` int64 channel indices: 0 background, ``1..classes`` the classes.

    Returns
    -------
    onehot, valid
        ``(B, classes, H, W)`` float (background is 0 everywhere) and ``(B, 1, H, W)`` float.
    """
    valid = (target != ignore_index).unsqueeze(1).float()
    onehot = F.one_hot(torch.where(target == ignore_index, 0, target), classes + 1)[..., 1:]
    return onehot.permute(0, 3, 1, 2).float(), valid
