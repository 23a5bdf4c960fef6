"""Pixel-edge polygon tracing: components match scipy's labelling, polygons rasterise back exactly."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from scipy import ndimage

from engine.io.export._polygons import keyhole, trace_components

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")


def _raster(poly: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    rle = mask_utils.frPyObjects([poly.astype(np.float64).ravel().tolist()], shape[0], shape[1])
    return mask_utils.decode(rle)[:, :, 0].astype(bool)


def test_random_masks_trace_exactly() -> None:
    rng = np.random.default_rng(0)
    for _ in range(150):
        h, w = (int(v) for v in rng.integers(1, 30, 2))
        mask = rng.random((h, w)) < rng.random()
        components = trace_components(mask)
        labelled, count = ndimage.label(mask, structure=np.ones((3, 3)))
        assert len(components) == count
        union = np.zeros_like(mask)
        for c in components:
            pixels = _raster(keyhole(c), mask.shape)
            ids = np.unique(labelled[pixels])
            assert len(ids) == 1 and ids[0] > 0  # one whole component, holes left open
            assert pixels.sum() == c.area == (labelled == ids[0]).sum()
            union |= pixels
        np.testing.assert_array_equal(union, mask)


def test_nested_rings_and_diagonals() -> None:
    mask = np.zeros((13, 13), dtype=bool)
    mask[0:13, 0:13] = True
    mask[2:11, 2:11] = False  # hole of the outer ring
    mask[4:9, 4:9] = True  # an island inside the hole
    mask[6, 6] = False  # with its own hole
    comps = trace_components(mask)
    assert [c.area for c in comps] == [13 * 13 - 81, 25 - 1]
    assert [len(c.holes) for c in comps] == [1, 1]
    diagonal = np.eye(4, dtype=bool)
    (one,) = trace_components(diagonal)  # 8-connected: one object
    assert one.area == 4 and not one.holes
    np.testing.assert_array_equal(_raster(keyhole(one), (4, 4)), diagonal)
    assert trace_components(np.zeros((3, 3), bool)) == []
    (full,) = trace_components(np.ones((2, 3), bool))
    assert full.outer.tolist() == [[0, 0], [3, 0], [3, 2], [0, 2]]  # corners only, clockwise on screen
