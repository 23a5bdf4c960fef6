"""The label overlay: a cached ARGB image of the label colours, updated box by box.

Painting a brush dab recolours only the dab's box (a LUT lookup on a few hundred pixels), never
the whole 4000x3000 image. The ``QImage`` wraps the numpy buffer without a copy.
"""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtGui import QImage

from engine.items import LabelSet

__all__ = ["LabelOverlay", "make_lut"]

_logger = logging.getLogger(__name__)


def make_lut(labels: LabelSet, hidden: set[int] | frozenset[int] = frozenset(), size: int = 256) -> np.ndarray:
    """``(size,)`` uint32 premultiplied ARGB colours by class id; 0, hidden and unknown ids are transparent."""
    lut = np.zeros(max(size, labels.max_id + 1), dtype=np.uint32)
    for c in labels:
        if c.id in hidden:
            continue
        r, g, b = (int(v) for v in c.color)
        lut[c.id] = (0xFF << 24) | (r << 16) | (g << 8) | b
    return lut


class LabelOverlay:
    """The colours of one 2D label plane.

    Parameters
    ----------
    labels2d
        ``(H, W)`` uint8/uint16 view of the label map on the shown plane (kept, not copied).
    lut
        Colours from :func:`make_lut`.
    outline
        Show only the class boundaries.
    """

    def __init__(self, labels2d: np.ndarray, lut: np.ndarray, *, outline: bool = False) -> None:
        self.labels2d = labels2d
        self.lut = lut
        self.outline = outline
        h, w = labels2d.shape
        self.buffer = np.zeros((h, w), dtype=np.uint32)
        self.image = QImage(self.buffer.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied)
        self.rebuild()

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.buffer.shape[0]), int(self.buffer.shape[1]))

    def set_lut(self, lut: np.ndarray) -> None:
        """New colours or visibility: recolour everything."""
        self.lut = lut
        self.rebuild()

    def set_outline(self, outline: bool) -> None:
        self.outline = outline
        self.rebuild()

    def set_labels(self, labels2d: np.ndarray) -> None:
        """Show another plane of the same size (slice scrolling)."""
        if labels2d.shape != self.labels2d.shape:
            raise ValueError("set_labels needs a plane of the same shape")
        self.labels2d = labels2d
        self.rebuild()

    def rebuild(self) -> None:
        """Recolour the whole plane."""
        self.update_box((slice(0, self.shape[0]), slice(0, self.shape[1])))

    def update_box(self, box: tuple[slice, slice]) -> tuple[slice, slice]:
        """Recolour one box of the plane; returns the box actually repainted (wider in outline mode)."""
        h, w = self.shape
        r0, r1 = max(0, box[0].start or 0), min(h, h if box[0].stop is None else box[0].stop)
        c0, c1 = max(0, box[1].start or 0), min(w, w if box[1].stop is None else box[1].stop)
        if r1 <= r0 or c1 <= c0:
            return (slice(r0, r0), slice(c0, c0))
        lut = self.lut
        if not self.outline:
            sub = self.labels2d[r0:r1, c0:c1]
            if sub.dtype == np.uint16 and len(lut) < 65536:
                sub = np.minimum(sub, len(lut) - 1)
            self.buffer[r0:r1, c0:c1] = lut[sub]
            return (slice(r0, r1), slice(c0, c1))
        # a pixel's outline state depends on its neighbours: repaint one pixel more, read two more
        r0, r1, c0, c1 = max(0, r0 - 1), min(h, r1 + 1), max(0, c0 - 1), min(w, c1 + 1)
        R0, R1, C0, C1 = max(0, r0 - 1), min(h, r1 + 1), max(0, c0 - 1), min(w, c1 + 1)
        ext = self.labels2d[R0:R1, C0:C1]
        edge = np.zeros(ext.shape, dtype=bool)
        edge[1:, :] |= ext[1:, :] != ext[:-1, :]
        edge[:-1, :] |= ext[:-1, :] != ext[1:, :]
        edge[:, 1:] |= ext[:, 1:] != ext[:, :-1]
        edge[:, :-1] |= ext[:, :-1] != ext[:, 1:]
        inner = (slice(r0 - R0, r1 - R0), slice(c0 - C0, c1 - C0))
        sub = ext[inner]
        if sub.dtype == np.uint16 and len(lut) < 65536:
            sub = np.minimum(sub, len(lut) - 1)
        self.buffer[r0:r1, c0:c1] = np.where(edge[inner], lut[sub], np.uint32(0))
        return (slice(r0, r1), slice(c0, c1))

    def class_at(self, row: int, col: int) -> int:
        """The class id under a pixel (0 outside)."""
        h, w = self.shape
        return int(self.labels2d[row, col]) if 0 <= row < h and 0 <= col < w else 0


def heat_image(values: np.ndarray) -> tuple[np.ndarray, QImage]:
    """A premultiplied ARGB heat map of ``(H, W)`` floats in ``[0, 1]`` (transparent where 0, red where 1)."""
    v = np.clip(np.nan_to_num(values.astype(np.float32)), 0.0, 1.0)
    a = (v * 140).astype(np.uint32)
    r = a  # premultiplied red
    g = ((1.0 - v) * v * 2 * a).astype(np.uint32)
    buf = np.ascontiguousarray((a << 24) | (r << 16) | (g << 8))
    h, w = buf.shape
    return buf, QImage(buf.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied)
