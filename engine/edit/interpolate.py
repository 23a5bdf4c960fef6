"""Shape-based interpolation between annotated slices (Qt-free).

Between two slices that both hold a class, the slices in between get the zero level set of the
linear blend of the two slices' signed distance maps (Raya & Udupa's shape-based interpolation,
with scipy's exact Euclidean distance transform). Both shapes are first moved onto the
linearly interpolated centroid, so a structure that drifts between slices is carried along. Only unlabelled voxels are written by default,
so other classes are never overwritten; the whole interpolation is one undo step.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from engine.edit.editor import LabelEditor, bbox_of

__all__ = ["signed_distance", "interpolate_slices", "annotated_slices"]

_logger = logging.getLogger(__name__)


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Signed Euclidean distance in pixels of a 2D ``bool`` mask: negative inside, positive outside.

    Returns ``(H, W)`` float32; an empty mask gives ``+inf`` everywhere.
    """
    if not mask.any():
        return np.full(mask.shape, np.inf, dtype=np.float32)
    outside = ndimage.distance_transform_edt(~mask)
    inside = ndimage.distance_transform_edt(mask)
    return (outside - inside).astype(np.float32)


def annotated_slices(data: np.ndarray, class_id: int, axis: int = 0) -> list[int]:
    """Indices along ``axis`` of the slices of a ``(z, y, x)`` map that contain ``class_id``."""
    other = tuple(a for a in range(data.ndim) if a != axis)
    return [int(i) for i in np.flatnonzero((data == class_id).any(axis=other))]


def interpolate_slices(editor: LabelEditor, class_id: int, *, axis: int = 0, only_empty: bool = True,
                       between: tuple[int, int] | None = None) -> int:
    """Fill the gaps between annotated slices of ``class_id`` along ``axis`` (one undo step).

    Parameters
    ----------
    editor
        Holds a ``(z, y, x)`` map.
    class_id
        The class to interpolate.
    axis
        0 interpolates between axial slices, 1 coronal, 2 sagittal.
    only_empty
        Write only voxels that are 0 (never overwrite another class).
    between
        Restrict to the gaps within ``[first, last]`` slice indices.

    Returns
    -------
    The number of slices that changed.
    """
    data = editor.data
    if data.ndim != 3:
        raise ValueError("interpolation needs a 3D label map")
    keys = annotated_slices(data, class_id, axis)
    if between is not None:
        keys = [k for k in keys if between[0] <= k <= between[1]]
    changed = 0
    with editor.stroke("interpolate"):
        for k0, k1 in zip(keys, keys[1:]):
            if k1 - k0 < 2:
                continue
            m0 = np.take(data, k0, axis=axis) == class_id
            m1 = np.take(data, k1, axis=axis) == class_id
            box = bbox_of(m0 | m1)
            assert box is not None
            box = tuple(slice(max(0, s.start - 2), min(n, s.stop + 2)) for s, n in zip(box, m0.shape))
            d0, d1 = signed_distance(m0[box]), signed_distance(m1[box])
            c0 = np.array(ndimage.center_of_mass(m0[box]))
            c1 = np.array(ndimage.center_of_mass(m1[box]))
            for k in range(k0 + 1, k1):
                t = (k - k0) / (k1 - k0)
                # move both shapes onto the interpolated centroid, so shapes that do not overlap
                # (a vessel drifting between slices) still blend instead of vanishing
                s0 = ndimage.shift(d0, t * (c1 - c0), order=1, mode="nearest")
                s1 = ndimage.shift(d1, (1.0 - t) * (c0 - c1), order=1, mode="nearest")
                inside = ((1.0 - t) * s0 + t * s1) < 0
                key: list[slice | int] = list(box)
                key.insert(axis, k)
                atom = editor.apply_mask(tuple(key), inside, class_id, only=0 if only_empty else None)
                changed += atom is not None
    _logger.debug("interpolated class %d along axis %d: %d slices", class_id, axis, changed)
    return changed
