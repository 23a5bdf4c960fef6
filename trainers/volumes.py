"""Volumes to training slices with the inference preprocessing of :mod:`engine.medical.preprocess`.

Windowing (:func:`~engine.medical.preprocess.intensity_range`, :func:`~engine.medical.preprocess.to_unit`),
in-plane resampling (:func:`~engine.medical.preprocess.resampled_size`, :func:`~engine.medical.preprocess.resize`),
the choice of slices per input channel (:func:`~engine.medical.preprocess.channel_indices`) and the
normalisation (:func:`~engine.medical.preprocess.normalise`) are the engine's own functions, so a
checkpoint sees in training exactly what it will see in inference.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from engine.items import Volume
from engine.medical.checkpoint import IntensityWindow
from engine.medical.preprocess import channel_indices, intensity_range, normalise, resampled_size, resize, to_unit
from trainers.augment import SliceAugment
from trainers.data import SliceSamples

__all__ = ["default_window", "prepare_volume", "slice_samples"]

_logger = logging.getLogger(__name__)


def default_window(modality: str) -> IntensityWindow:
    """The window a new model trains with: soft-tissue CT (40/400 HU) or 0.5-99.5 percentiles."""
    if modality.upper() == "CT":
        return IntensityWindow("ct", center=40.0, width=400.0)
    return IntensityWindow("percentile", low=0.5, high=99.5)


def prepare_volume(volume: Volume, channels: np.ndarray, window: IntensityWindow,
                   spacing: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray]:
    """Window a volume to ``[0, 1]`` and resample it in-plane as inference does.

    Parameters
    ----------
    volume
        The raw volume, ``(z, y, x)``.
    channels
        ``(z, y, x)`` channel indices of its annotation.
    window
        The model's intensity window.
    spacing
        The model's in-plane ``(sx, sy)`` mm, or ``None`` for no resampling.

    Returns
    -------
    unit, channels
        ``(z, h, w)`` float16 in ``[0, 1]`` and ``(z, h, w)`` uint8 (nearest-neighbour resampled).
    """
    lo, hi = intensity_range(volume.array, window)
    unit = to_unit(volume.array, lo, hi)  # (z, y, x) float32
    size = resampled_size(unit.shape[-2:], (volume.spacing[0], volume.spacing[1]), spacing)
    lab = torch.from_numpy(np.ascontiguousarray(channels))
    if tuple(size) != tuple(unit.shape[-2:]):
        unit = resize(unit[:, None], size)[:, 0]
        lab = F.interpolate(lab[:, None].float(), size=size, mode="nearest")[:, 0].to(torch.uint8)
    return unit.to(torch.float16).numpy(), lab.numpy().astype(np.uint8)


def _slices(z: int, depth: int, *, in_channels: int, context: int) -> np.ndarray:
    return channel_indices([z], depth, in_channels=in_channels, context=context)[0]


def _normalise(x: torch.Tensor, *, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    return normalise(x, mean, std)


def slice_samples(pairs: Sequence[tuple[np.ndarray, np.ndarray]], size: tuple[int, int], *, in_channels: int,
                  context: int, mean: Sequence[float], std: Sequence[float],
                  augment: SliceAugment = SliceAugment()) -> SliceSamples:
    """A :class:`SliceSamples` that stacks and normalises slices with the engine's rules."""
    return SliceSamples(
        pairs, size,
        channel_slices=functools.partial(_slices, in_channels=in_channels, context=context),
        normalise=functools.partial(_normalise, mean=tuple(mean), std=tuple(std)),
        augment=augment,
    )
