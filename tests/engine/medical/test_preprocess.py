"""The preprocessing steps shared by inference and training."""

from __future__ import annotations

import numpy as np
import torch

from engine.medical.checkpoint import IntensityWindow
from engine.medical.preprocess import (
    channel_indices,
    count_nans,
    intensity_range,
    normalise,
    pad_to_multiple,
    resampled_size,
    resize,
    tile_starts,
    to_unit,
)


def test_ct_window_maps_hu_linearly() -> None:
    lo, hi = intensity_range(np.zeros((1, 2, 2)), IntensityWindow("ct", center=40, width=400))
    assert (lo, hi) == (-160, 240)
    out = to_unit(np.array([-1000, -160, 40, 240, 3000], dtype=np.int16), lo, hi)
    np.testing.assert_allclose(out.numpy(), [0, 0, 0.5, 1, 1])


def test_mr_percentiles_ignore_nans_and_subsample_big_volumes() -> None:
    arr = np.arange(100, dtype=np.float32).reshape(1, 10, 10)
    arr[0, 0, 0] = np.nan
    lo, hi = intensity_range(arr, IntensityWindow("percentile", low=0.0, high=100.0))
    assert (lo, hi) == (1.0, 99.0)
    big = np.random.default_rng(0).normal(size=(40, 256, 256)).astype(np.float32)  # 2.6 M voxels
    lo, hi = intensity_range(big, IntensityWindow("percentile", low=2.5, high=97.5))
    assert abs(lo + 1.96) < 0.02 and abs(hi - 1.96) < 0.02
    assert to_unit(np.array([np.nan, 5.0]), 0.0, 1.0).tolist() == [0.0, 1.0]


def test_normalise_is_the_official_preprocessor() -> None:
    x = torch.full((1, 3, 1, 1), 0.5)
    out = normalise(x, (123.675, 116.28, 103.53), (58.395, 57.12, 57.375))
    np.testing.assert_allclose(out.flatten().numpy(), [(127.5 - 123.675) / 58.395, (127.5 - 116.28) / 57.12,
                                                        (127.5 - 103.53) / 57.375], rtol=1e-6)


def test_channel_indices_2d_and_25d() -> None:
    np.testing.assert_array_equal(channel_indices([0, 1], 2, in_channels=3, context=0), [[0, 0, 0], [1, 1, 1]])
    np.testing.assert_array_equal(channel_indices([0, 4], 5, in_channels=5, context=2),
                                  [[0, 0, 0, 1, 2], [2, 3, 4, 4, 4]])
    np.testing.assert_array_equal(channel_indices([0, 1], 2, in_channels=3, context=1), [[0, 0, 1], [0, 1, 1]])


def test_resampled_size_and_resize() -> None:
    assert resampled_size((512, 400), (0.7, 0.8), (1.0, 1.0)) == (410, 280)
    assert resampled_size((512, 400), (0.7, 0.8), None) == (512, 400)
    x = torch.randn(2, 3, 20, 30)
    assert resize(x, (20, 30)) is x
    assert resize(x, (10, 60)).shape == (2, 3, 10, 60)


def test_padding_and_tiles() -> None:
    x = torch.ones(1, 1, 33, 64)
    p = pad_to_multiple(x, 32)
    assert p.shape == (1, 1, 64, 64) and p[0, 0, 33:].abs().sum() == 0
    assert tile_starts(100, 512) == [0]
    assert tile_starts(1000, 512, 0.25) == [0, 384, 488]
    starts = tile_starts(700, 256, 0.5)
    assert starts[0] == 0 and starts[-1] == 700 - 256 and all(b - a <= 128 for a, b in zip(starts, starts[1:]))


def test_count_nans_in_chunks() -> None:
    arr = np.zeros((40, 4, 4), np.float32)
    arr[[0, 17, 39], 1, 2] = np.nan
    assert count_nans(arr) == 3 and count_nans(np.zeros((3, 2, 2), np.int16)) == 0
