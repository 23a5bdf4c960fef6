"""Fixtures for the export tests: a label set with id gaps and photo entries with awkward shapes."""

from __future__ import annotations

import numpy as np
import pytest

from engine.io.export import PhotoExportEntry
from engine.items import LabelClass, LabelSet


@pytest.fixture
def labels() -> LabelSet:
    """Ids with gaps (1, 3, 7, 9); "bird" (9) never occurs in the masks."""
    return LabelSet([
        LabelClass(1, "cat", color=(200, 30, 30)),
        LabelClass(3, "dog: big", color=(30, 200, 30)),
        LabelClass(7, "sky", color=(30, 30, 200)),
        LabelClass(9, "bird", color=(250, 250, 0)),
    ])


def ring_and_blobs(h: int = 48, w: int = 64) -> np.ndarray:
    """A ring with a hole holding a blob of another class, one class in two pieces, diagonal pixels."""
    yy, xx = np.mgrid[:h, :w]
    data = np.zeros((h, w), dtype=np.uint8)
    r = np.hypot(yy - 20, xx - 20)
    data[(r < 14) & (r >= 6)] = 1  # ring: one object with a hole
    data[r < 3] = 3  # a dog inside the cat's hole
    data[5:12, 45:60] = 3  # the dog class again, a second piece
    data[30:40, 40:50] = 7
    data[42, 2] = data[43, 3] = data[44, 4] = 7  # diagonal chain: one 8-connected object
    data[h - 1, w - 1] = 1  # a single pixel in the corner
    return data


@pytest.fixture
def entries() -> list[PhotoExportEntry]:
    """Three photos: shapes above, a random map, and one without any mask."""
    rng = np.random.default_rng(5)
    noisy = rng.choice(np.array([0, 1, 3, 7], dtype=np.uint8), size=(23, 31), p=[0.4, 0.2, 0.2, 0.2])
    return [
        PhotoExportEntry("img1.jpg", (48, 64), ring_and_blobs()),
        PhotoExportEntry("site b/img10.png", (23, 31), noisy),
        PhotoExportEntry("img2.jpeg", (20, 25), None),
    ]
