"""Footprints of the paint tools on a 2D plane: brush dabs and segments, polygons (Qt-free).

Every function returns ``(box, mask)``: ``box`` is ``(rows, cols)`` slices (possibly reaching past
the plane's edges; :meth:`LabelEditor.apply_mask` clips them) and ``mask`` a ``bool`` array of the
box's shape. Coordinates are ``(row, col)`` floats in pixels, pixel centres at integers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["brush_dab", "brush_segment", "polygon_mask", "BAYER8"]

Box = tuple[slice, slice]

# 8x8 ordered-dither thresholds in (0, 1): a soft brush paints a pixel of its feathered rim when
# the rim weight exceeds the threshold at that pixel (anchored to the plane, so dabs agree).
_B2 = np.array([[0, 2], [3, 1]])
_B4 = np.block([[4 * _B2, 4 * _B2 + 2], [4 * _B2 + 3, 4 * _B2 + 1]])
BAYER8 = (np.block([[4 * _B4, 4 * _B4 + 2], [4 * _B4 + 3, 4 * _B4 + 1]]) + 0.5) / 64.0


def _weights(dist: np.ndarray, radius: float, hardness: float) -> np.ndarray:
    """Brush weight in ``[0, 1]`` at distance ``dist``: 1 inside ``hardness * radius``, linear to 0 at ``radius``."""
    inner = radius * hardness
    if radius - inner < 1e-6:
        return (dist <= radius).astype(np.float32)
    return np.clip((radius - dist) / (radius - inner), 0.0, 1.0).astype(np.float32)


def _footprint(dist: np.ndarray, box: Box, radius: float, hardness: float) -> np.ndarray:
    if hardness >= 1.0:
        return dist <= radius
    w = _weights(dist, radius, hardness)
    rows = np.arange(box[0].start, box[0].stop) % 8
    cols = np.arange(box[1].start, box[1].stop) % 8
    return w > BAYER8[rows[:, None], cols[None, :]]


def brush_dab(center: tuple[float, float], radius: float, hardness: float = 1.0) -> tuple[Box, np.ndarray]:
    """A round brush footprint.

    Parameters
    ----------
    center
        ``(row, col)`` of the dab centre in pixels.
    radius
        Radius in pixels (``>= 0.5``; a radius below 1 paints one pixel).
    hardness
        ``1`` paints a crisp disc; lower values feather the rim over the outer ``1 - hardness``
        of the radius with ordered dithering (a binary label map has no partial labels).
    """
    return brush_segment(center, center, radius, hardness)


def brush_segment(p0: tuple[float, float], p1: tuple[float, float], radius: float,
                  hardness: float = 1.0) -> tuple[Box, np.ndarray]:
    """The footprint of a brush dragged from ``p0`` to ``p1`` (a capsule), see :func:`brush_dab`."""
    radius = max(float(radius), 0.5)
    r0, c0 = map(float, p0)
    r1, c1 = map(float, p1)
    top = math.floor(min(r0, r1) - radius)
    left = math.floor(min(c0, c1) - radius)
    bottom = math.ceil(max(r0, r1) + radius) + 1
    right = math.ceil(max(c0, c1) + radius) + 1
    box = (slice(top, bottom), slice(left, right))
    rr = np.arange(top, bottom, dtype=np.float32)[:, None]
    cc = np.arange(left, right, dtype=np.float32)[None, :]
    dr, dc = r1 - r0, c1 - c0
    length2 = dr * dr + dc * dc
    if length2 < 1e-12:
        dist = np.sqrt((rr - r0) ** 2 + (cc - c0) ** 2)
    else:
        t = np.clip(((rr - r0) * dr + (cc - c0) * dc) / length2, 0.0, 1.0)
        dist = np.sqrt((rr - (r0 + t * dr)) ** 2 + (cc - (c0 + t * dc)) ** 2)
    mask = _footprint(dist, box, radius, hardness)
    if not mask.any():  # a tiny brush between pixel centres still paints the nearest pixel
        mask[int(round(r0)) - top, int(round(c0)) - left] = True
    return box, mask


def split_segment(p0: tuple[float, float], p1: tuple[float, float], radius: float
                  ) -> Iterator[tuple[tuple[float, float], tuple[float, float]]]:
    """Cut a long drag into pieces about ``4 * radius`` long, so each footprint box stays small."""
    r0, c0 = p0
    r1, c1 = p1
    length = math.hypot(r1 - r0, c1 - c0)
    n = max(1, math.ceil(length / max(4.0 * radius, 8.0)))
    prev = (r0, c0)
    for k in range(1, n + 1):
        t = k / n
        cur = (r0 + t * (r1 - r0), c0 + t * (c1 - c0))
        yield prev, cur
        prev = cur


def polygon_mask(points: Sequence[tuple[float, float]]) -> tuple[Box, np.ndarray] | None:
    """The filled polygon through ``points`` (``(row, col)``, at least 3), or ``None`` if degenerate."""
    if len(points) < 3:
        return None
    pts = np.asarray(points, dtype=np.float64)
    top, left = np.floor(pts.min(axis=0)).astype(int)
    bottom, right = np.ceil(pts.max(axis=0)).astype(int) + 1
    h, w = int(bottom - top), int(right - left)
    if h <= 0 or w <= 0:
        return None
    image = Image.new("1", (w, h), 0)
    ImageDraw.Draw(image).polygon([(float(c - left), float(r - top)) for r, c in pts], fill=1, outline=1)
    mask = np.asarray(image, dtype=bool)
    if not mask.any():
        return None
    return (slice(int(top), int(bottom)), slice(int(left), int(right))), mask
