"""Turning slices into network inputs exactly as a checkpoint was trained, and back.

Pure functions on numpy/torch arrays, used by :mod:`engine.medical.infer` and by the MCANet
trainer (so training and inference share one definition of every step):

* :func:`intensity_range` / :func:`to_unit`: CT window, MR percentiles or a fixed range to [0, 1];
* :func:`normalise`: ``(255 v - mean) / std`` per channel (the official data preprocessor);
* :func:`channel_indices`: which slices feed which input channel (2D repeat or 2.5D context);
* :func:`resampled_size` and :func:`resize`: in-plane resampling to the model's spacing and back;
* :func:`pad_to_multiple` and :func:`tile_starts`: padding and tiling for the network input.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from engine.medical.checkpoint import IntensityWindow

__all__ = [
    "intensity_range",
    "to_unit",
    "normalise",
    "channel_indices",
    "resampled_size",
    "resize",
    "pad_to_multiple",
    "tile_starts",
    "count_nans",
]

_logger = logging.getLogger(__name__)

_PERCENTILE_SAMPLES = 2_000_000  # voxels looked at for MR percentiles (a strided subsample)


def count_nans(array: np.ndarray, *, chunk: int = 16) -> int:
    """NaN voxels in a ``(z, y, x)`` array, counted a few slices at a time (no full-size temp)."""
    if not np.issubdtype(array.dtype, np.floating):
        return 0
    return int(sum(np.count_nonzero(np.isnan(array[z:z + chunk])) for z in range(0, array.shape[0], chunk)))


def intensity_range(array: np.ndarray, window: IntensityWindow) -> tuple[float, float]:
    """The raw values that map to 0 and 1.

    Parameters
    ----------
    array
        ``(z, y, x)`` or ``(H, W[, C])`` raw intensities (HU for CT); only read.
    window
        CT window (``center +- width/2``), percentiles of ``array`` (a strided subsample of at
        most two million voxels, NaNs ignored), or a fixed range.
    """
    if window.kind == "ct":
        return (window.center - window.width / 2.0, window.center + window.width / 2.0)
    if window.kind == "range":
        return (float(window.low), float(window.high))
    step = max(1, int(np.ceil(array.size / _PERCENTILE_SAMPLES)))
    sample = np.asarray(array.reshape(-1)[::step], dtype=np.float64)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return (0.0, 1.0)
    lo, hi = np.percentile(sample, [window.low, window.high])
    if not hi > lo:
        hi = lo + 1.0
    return (float(lo), float(hi))


def to_unit(values: np.ndarray | torch.Tensor, lo: float, hi: float, *,
            device: torch.device | None = None) -> torch.Tensor:
    """``clip((values - lo) / (hi - lo), 0, 1)`` as float32 on ``device``; NaN becomes 0."""
    t = torch.as_tensor(values)
    if device is not None:
        t = t.to(device, non_blocking=True)
    t = t.to(torch.float32)
    t = (t - lo) * (1.0 / (hi - lo))
    return torch.nan_to_num_(t.clamp_(0.0, 1.0), nan=0.0)


def normalise(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(255 x - mean) / std`` per channel, in place; ``x`` is ``(B, C, H, W)`` in [0, 1]."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return x.mul_(255.0).sub_(m).div_(s)


def channel_indices(z: Sequence[int] | np.ndarray, depth: int, *, in_channels: int, context: int) -> np.ndarray:
    """Slice index feeding each input channel: ``(len(z), in_channels)`` int64.

    2D models (``context == 0``) get the slice itself in every channel; 2.5D models get slices
    ``z - context .. z + context``, clamped at the ends of the volume (edge slices repeat).
    """
    z = np.asarray(z, dtype=np.int64)
    if context == 0:
        return np.repeat(z[:, None], in_channels, axis=1)
    offsets = np.arange(-context, context + 1, dtype=np.int64)
    return np.clip(z[:, None] + offsets[None, :], 0, depth - 1)


def resampled_size(shape_yx: tuple[int, int], spacing_xy: tuple[float, float],
                   target_xy: tuple[float, float] | None) -> tuple[int, int]:
    """``(H, W)`` of a ``shape_yx`` slice at ``spacing_xy`` mm resampled to ``target_xy`` mm."""
    h, w = shape_yx
    if target_xy is None:
        return (h, w)
    sx, sy = spacing_xy
    tx, ty = target_xy
    return (max(1, int(round(h * sy / ty))), max(1, int(round(w * sx / tx))))


def resize(x: torch.Tensor, size: tuple[int, int], *, antialias: bool = True) -> torch.Tensor:
    """Bilinear resize of ``(B, C, H, W)`` (half-pixel centres; antialiased when shrinking unless
    ``antialias=False``, which matches OpenCV's ``INTER_LINEAR`` used by mmseg's ``Resize``); a
    no-op at equal size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = antialias and (size[0] < x.shape[-2] or size[1] < x.shape[-1])
    if shrink and x.device.type == "cpu" and x.dtype != torch.float32:
        return F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False,
                             antialias=True).to(x.dtype)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def pad_to_multiple(x: torch.Tensor, multiple: int = 32, *, min_size: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Zero-pad ``(B, C, H, W)`` at the bottom/right to a multiple of ``multiple`` (and at least
    ``min_size``); mmseg's test-time padding (``size_divisor=32``, ``pad_val=0`` after
    normalisation)."""
    h, w = x.shape[-2:]
    ph = max(-(-h // multiple) * multiple, min_size[0]) - h
    pw = max(-(-w // multiple) * multiple, min_size[1]) - w
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (0, pw, 0, ph))


def tile_starts(length: int, tile: int, overlap: float = 0.25) -> list[int]:
    """Start offsets of tiles of ``tile`` covering ``0..length`` with about ``overlap`` overlap;
    the last tile ends at ``length`` (a single tile at 0 when ``length <= tile``)."""
    if length <= tile:
        return [0]
    stride = max(1, int(tile * (1.0 - overlap)))
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return sorted(set(starts))
