"""Exact polygons of binary masks, traced along pixel edges (shared by the COCO and YOLO writers).

Coordinates are pixel *corners*: pixel ``(row r, column c)`` is the unit square
``[c, c + 1] x [r, r + 1]`` and a vertex ``(x, y)`` is a corner of that grid, the convention
of COCO (pycocotools rasterises such a polygon back to exactly the pixels it encloses).

Foreground pixels are 8-connected (two pixels touching at a corner belong to one component),
the background 4-connected. Each component gives one :class:`Component`: its outer ring and the
rings of its holes. :func:`keyhole` joins a component's rings into a single polygon with
zero-width cuts, which an even-odd rasteriser (pycocotools, OpenCV ``fillPoly``) fills with the
holes left open: the exported polygon reproduces the mask exactly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

__all__ = ["Component", "trace_components", "keyhole"]

_logger = logging.getLogger(__name__)

# Directions of travel; the foreground is on the right-hand side on screen (y points down), so
# outer rings run clockwise on screen and holes counter-clockwise.
_EAST, _SOUTH, _WEST, _NORTH = 0, 1, 2, 3
_STEP = np.array([(1, 0), (0, 1), (-1, 0), (0, -1)], dtype=np.int64)  # (dx, dy)


@dataclass(frozen=True)
class Component:
    """One connected component of a mask.

    Attributes
    ----------
    outer
        ``(N, 2)`` int64 ``(x, y)`` corner vertices of the outer boundary, clockwise on screen,
        without repeating the first vertex; only the corners (no collinear vertices).
    holes
        The rings of its holes, ``(M, 2)`` each, counter-clockwise on screen.
    area
        Number of pixels in the component.
    """

    outer: np.ndarray
    holes: tuple[np.ndarray, ...]
    area: int


def _edges(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Directed boundary edges of ``mask``: start x, start y and direction, one entry per edge."""
    m = np.pad(mask.astype(np.int8), 1)
    # horizontal edges at y = r between padded rows r and r + 1 (pixel rows r - 1 and r):
    # foreground below heads east from (c, r), foreground above heads west from (c + 1, r)
    diff = m[1:, 1:-1] - m[:-1, 1:-1]
    hr, hc = np.nonzero(diff)
    below = diff[hr, hc] > 0
    # vertical edges at x = c between padded columns c and c + 1: foreground on the left heads
    # south from (c, r), foreground on the right heads north from (c, r + 1)
    diff = m[1:-1, 1:] - m[1:-1, :-1]
    vr, vc = np.nonzero(diff)
    right = diff[vr, vc] > 0
    x = np.concatenate([hc + ~below, vc])
    y = np.concatenate([hr, vr + right])
    d = np.concatenate([np.where(below, _EAST, _WEST), np.where(right, _NORTH, _SOUTH)])
    return x.astype(np.int64), y.astype(np.int64), d.astype(np.int64)


def _successors(x: np.ndarray, y: np.ndarray, d: np.ndarray, width: int) -> np.ndarray:
    """Index of the edge that follows each edge on its ring (left turn at a saddle vertex)."""
    key = y * (width + 2) + x
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    end = (y + _STEP[d, 1]) * (width + 2) + (x + _STEP[d, 0])
    first = np.searchsorted(sorted_key, end, side="left")
    count = np.searchsorted(sorted_key, end, side="right") - first
    nxt = order[first]
    saddle = np.nonzero(count == 2)[0]
    if saddle.size:
        a, b = order[first[saddle]], order[first[saddle] + 1]
        left = (d[saddle] + 3) % 4  # a left turn keeps diagonal pixels in one component
        nxt[saddle] = np.where(d[a] == left, a, b)
    return nxt


def _rings(x: np.ndarray, y: np.ndarray, d: np.ndarray, nxt: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Follow ``nxt`` around every ring.

    Returns each ring's corner vertices as ``(N, 2)`` and, per edge, the index of its ring.
    """
    ring_of = np.full(x.size, -1, dtype=np.int64)
    succ = nxt.tolist()
    seen = ring_of.tolist()
    rings: list[np.ndarray] = []
    for start in range(x.size):
        if seen[start] >= 0:
            continue
        k = len(rings)
        idx = [start]
        seen[start] = k
        e = succ[start]
        while e != start:
            idx.append(e)
            seen[e] = k
            e = succ[e]
        ring = np.asarray(idx, dtype=np.int64)
        dirs = d[ring]
        corner = dirs != np.roll(dirs, 1)  # keep a vertex only where the direction turns
        rings.append(np.stack([x[ring][corner], y[ring][corner]], axis=1))
    return rings, np.asarray(seen, dtype=np.int64)


def _signed_area(ring: np.ndarray) -> float:
    """Shoelace area; positive for clockwise-on-screen (outer) rings."""
    xs, ys = ring[:, 0].astype(np.float64), ring[:, 1].astype(np.float64)
    return float(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))) / 2.0


def _hole_parents(rings: list[np.ndarray], holes: list[int], x: np.ndarray, y: np.ndarray,
                  d: np.ndarray, ring_of: np.ndarray, width: int) -> dict[int, int]:
    """For each hole ring, a ring of the same component lying further left.

    The foreground pixel just left of a hole's leftmost edge belongs to the hole's component;
    the left end of its horizontal run is an edge of another ring of that component (its outer
    ring or another hole) whose leftmost x is strictly smaller, so following parents ends at
    the component's outer ring.
    """
    north = np.nonzero(d == _NORTH)[0]  # left ends of runs: edge (c, r+1) -> (c, r) lies in row r
    key = (y[north] - 1) * (width + 2) + x[north]
    order = np.argsort(key)
    key, north = key[order], north[order]
    rows = np.empty(len(holes), dtype=np.int64)
    cols = np.empty(len(holes), dtype=np.int64)
    for i, h in enumerate(holes):
        ring = rings[h]
        minx = ring[:, 0].min()
        k = int(np.nonzero((ring[:, 0] == minx) & (np.roll(ring[:, 0], -1) == minx))[0][0])
        rows[i] = min(ring[k, 1], ring[(k + 1) % len(ring), 1])
        cols[i] = minx - 1
    pos = np.searchsorted(key, rows * (width + 2) + cols, side="right") - 1
    return {h: int(ring_of[north[p]]) for h, p in zip(holes, pos.tolist())}


def trace_components(mask: np.ndarray) -> list[Component]:
    """Trace the connected components of a binary mask.

    Parameters
    ----------
    mask
        ``(H, W)`` bool (or 0/1) array.

    Returns
    -------
    list of Component
        One per 8-connected foreground component, ordered by the first pixel in raster order.
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2D, got shape {mask.shape}")
    rows = np.nonzero(mask.any(axis=1))[0]
    if rows.size == 0:
        return []
    cols = np.nonzero(mask.any(axis=0))[0]
    y0, x0 = int(rows[0]), int(cols[0])
    crop = mask[y0: rows[-1] + 1, x0: cols[-1] + 1]  # trace inside the bounding box only
    x, y, d = _edges(crop)
    rings, ring_of = _rings(x, y, d, _successors(x, y, d, crop.shape[1]))
    if x0 or y0:
        rings = [r + np.array([x0, y0], dtype=np.int64) for r in rings]
        x, y = x + x0, y + y0
    areas = [_signed_area(r) for r in rings]
    holes = [i for i, a in enumerate(areas) if a < 0]
    parent = _hole_parents(rings, holes, x, y, d, ring_of, mask.shape[1])
    owned: dict[int, list[int]] = {i: [] for i, a in enumerate(areas) if a > 0}
    for h in holes:
        top = parent[h]
        while areas[top] < 0:
            top = parent[top]
        owned[top].append(h)
    comps = []
    for outer, hs in owned.items():
        area = areas[outer] + sum(areas[h] for h in hs)
        comps.append(Component(rings[outer], tuple(rings[h] for h in hs), int(round(area))))
    comps.sort(key=lambda c: (int(c.outer[:, 1].min()), int(c.outer[c.outer[:, 1] == c.outer[:, 1].min(), 0].min())))
    return comps


def _direction(a: np.ndarray, b: np.ndarray) -> int:
    """The direction of the axis-aligned step from vertex ``a`` to vertex ``b``."""
    dx, dy = int(np.sign(b[0] - a[0])), int(np.sign(b[1] - a[1]))
    return {(1, 0): _EAST, (0, 1): _SOUTH, (-1, 0): _WEST, (0, -1): _NORTH}[(dx, dy)]


def keyhole(component: Component) -> np.ndarray:
    """One closed polygon for a component, holes joined to the outer ring by zero-width cuts.

    Returns ``(N, 2)`` int64 ``(x, y)`` corner vertices (first vertex not repeated). Under the
    even-odd fill rule the result encloses exactly the component's pixels: each cut is walked
    once out and once back, so it adds nothing.
    """
    if not component.holes:
        return component.outer
    start = component.outer[:1]
    parts = [component.outer, start]
    for hole in component.holes:
        parts.extend([hole, hole[:1], start])
    return np.concatenate(parts, axis=0)[:-1]
