"""The paint tools as functions on a :class:`LabelEditor` (Qt-free).

All tools work on one plane of the map (the photo itself, or one slice of a volume seen from one
axis) and write through :meth:`LabelEditor.apply_mask`, so undo, no-op filtering and repaint
notifications behave the same for all of them. Wrap several calls in ``editor.stroke()`` to make
them one undo step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from engine.edit.editor import LabelEditor, bbox_of, plane_key
from engine.edit.shapes import brush_segment, polygon_mask, split_segment

__all__ = ["Plane", "paint", "erase", "fill_polygon", "flood_fill", "magic_wand", "threshold_fill"]

_logger = logging.getLogger(__name__)

Point = tuple[float, float]


@dataclass(frozen=True)
class Plane:
    """Which 2D plane of the map a tool works on.

    Attributes
    ----------
    axis
        ``None`` for a photo; for a ``(z, y, x)`` volume the axis the plane is normal to:
        0 axial (rows y, cols x), 1 coronal (rows z, cols x), 2 sagittal (rows z, cols y).
    index
        The slice index along ``axis``.
    """

    axis: int | None = None
    index: int = 0

    def key(self, ndim: int, box: tuple[slice, slice]) -> tuple[slice | int, ...]:
        """The map key of a box on this plane."""
        return plane_key(ndim, self.axis, self.index, box)

    def view(self, data: np.ndarray) -> np.ndarray:
        """The 2D view of ``data`` (map or image of the same grid) on this plane."""
        if data.ndim == 2 or self.axis is None:
            return data
        return data[self.key(data.ndim, (slice(None), slice(None)))]


def paint(editor: LabelEditor, plane: Plane, p0: Point, p1: Point | None, *, radius: float,
          value: int, hardness: float = 1.0) -> int:
    """Paint class ``value`` with a round brush dragged from ``p0`` to ``p1`` (``None``: one dab).

    Returns the number of atoms recorded (0 when nothing changed).
    """
    p1 = p0 if p1 is None else p1
    n = 0
    for a, b in split_segment(p0, p1, radius):
        box, mask = brush_segment(a, b, radius, hardness)
        n += editor.apply_mask(plane.key(editor.data.ndim, box), mask, value) is not None
    return n


def erase(editor: LabelEditor, plane: Plane, p0: Point, p1: Point | None, *, radius: float,
          hardness: float = 1.0, only: int | None = None) -> int:
    """Erase (write 0) along a drag; ``only`` restricts erasing to one class."""
    p1 = p0 if p1 is None else p1
    n = 0
    for a, b in split_segment(p0, p1, radius):
        box, mask = brush_segment(a, b, radius, hardness)
        n += editor.apply_mask(plane.key(editor.data.ndim, box), mask, 0, only=only) is not None
    return n


def fill_polygon(editor: LabelEditor, plane: Plane, points: list[Point], *, value: int) -> bool:
    """Fill the polygon through ``points`` (``(row, col)``) with ``value``; whether anything changed."""
    shape = polygon_mask(points)
    if shape is None:
        return False
    box, mask = shape
    return editor.apply_mask(plane.key(editor.data.ndim, box), mask, value) is not None


def _write_region(editor: LabelEditor, plane: Plane, region: np.ndarray, value: int) -> bool:
    box = bbox_of(region)
    if box is None:
        return False
    return editor.apply_mask(plane.key(editor.data.ndim, box), region[box], value) is not None  # type: ignore[arg-type]


def _component(mask2d: np.ndarray, seed: tuple[int, int], connectivity: int) -> np.ndarray:
    """The connected component of ``mask2d`` holding ``seed`` (all false if the seed is outside)."""
    r, c = seed
    if not (0 <= r < mask2d.shape[0] and 0 <= c < mask2d.shape[1]) or not mask2d[r, c]:
        return np.zeros_like(mask2d)
    structure = ndimage.generate_binary_structure(2, connectivity)
    box = bbox_of(mask2d)
    assert box is not None
    labels, _ = ndimage.label(mask2d[box], structure=structure)
    region = np.zeros_like(mask2d)
    region[box] = labels == labels[r - box[0].start, c - box[1].start]
    return region


def flood_fill(editor: LabelEditor, plane: Plane, seed: tuple[int, int], *, value: int,
               connectivity: int = 1) -> bool:
    """Fill the region of equal class around ``seed`` (``(row, col)``) with ``value``.

    ``connectivity`` 1 joins 4-neighbours, 2 also diagonals. Returns whether anything changed.
    """
    labels2d = plane.view(editor.data)
    r, c = seed
    if not (0 <= r < labels2d.shape[0] and 0 <= c < labels2d.shape[1]):
        return False
    region = _component(labels2d == labels2d[r, c], (r, c), connectivity)
    return _write_region(editor, plane, region, value)


def magic_wand(editor: LabelEditor, plane: Plane, image: np.ndarray, seed: tuple[int, int] | None, *,
               low: float, high: float, value: int, connectivity: int = 1) -> bool:
    """Label pixels whose intensity lies in ``[low, high]`` (e.g. an HU range on CT).

    Parameters
    ----------
    image
        Intensities on the same grid as the map: ``(H, W)``, ``(H, W, C)`` (the channel mean is
        used) or ``(z, y, x)``.
    seed
        ``(row, col)`` on the plane: only the connected region around it is labelled; ``None``
        labels every pixel of the plane in range.
    """
    img2d = plane.view(image) if image.ndim == editor.data.ndim else image
    if img2d.ndim == 3:
        img2d = img2d.mean(axis=2)
    inside = (img2d >= low) & (img2d <= high)
    region = inside if seed is None else _component(inside, seed, connectivity)
    return _write_region(editor, plane, region, value)


def threshold_fill(editor: LabelEditor, image: np.ndarray, *, low: float, high: float, value: int,
                   seed: tuple[int, ...] | None = None, only_unlabelled: bool = True) -> bool:
    """Label every element of the whole map whose intensity is in ``[low, high]`` (3D connected to ``seed`` if given)."""
    if image.shape[: editor.data.ndim] != editor.data.shape:
        raise ValueError(f"image shape {image.shape} does not match the map {editor.data.shape}")
    inside = (image >= low) & (image <= high)
    if seed is not None:
        if not inside[tuple(seed)]:
            return False
        labels, _ = ndimage.label(inside)
        inside = labels == labels[tuple(seed)]
    box = bbox_of(inside)
    if box is None:
        return False
    return editor.apply_mask(box, inside[box], value, only=0 if only_unlabelled else None) is not None
