"""The image canvas: one 2D plane with its label overlay, zoom/pan, and mouse events in pixels.

Smoothness on big photos comes from three habits: the overlay is a cached ``QImage`` updated box
by box (:class:`~desktop.overlay.LabelOverlay`), a changed box repaints only its own widget rect,
and ``paintEvent`` draws only the source rect under the exposed region.
"""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QWheelEvent
from PySide6.QtWidgets import QWidget

from desktop.overlay import LabelOverlay

__all__ = ["Canvas", "gray_or_rgb_image"]

_logger = logging.getLogger(__name__)


def gray_or_rgb_image(pixels: np.ndarray) -> QImage:
    """A ``QImage`` sharing memory with ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 RGB (keep the array alive)."""
    pixels = np.ascontiguousarray(pixels)
    h, w = pixels.shape[:2]
    if pixels.ndim == 2:
        return QImage(pixels.data, w, h, w, QImage.Format.Format_Grayscale8)
    return QImage(pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888)


class Canvas(QWidget):
    """Shows one plane: an image, its label overlay, an optional heat map and cross-hair.

    Signals
    -------
    mouse(kind, row, col, event)
        ``kind`` is "press", "move", "release" or "double"; ``row``/``col`` are image pixel
        coordinates (pixel centres at integers); left-button events and hover moves only.
    hovered(row, col)
        The cursor's pixel, for the status bar.
    windowDrag(dx, dy)
        A right-button drag in widget pixels (window/level on volumes).
    sliceStep(steps)
        Wheel steps when the wheel scrolls slices.
    """

    mouse = Signal(str, float, float, object)
    hovered = Signal(int, int)
    windowDrag = Signal(int, int)
    sliceStep = Signal(int)
    viewChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(120, 120)
        self._pixels: np.ndarray | None = None
        self._image: QImage | None = None
        self.overlay: LabelOverlay | None = None
        self.opacity = 0.5
        self._heat: QImage | None = None
        self._heat_buf: np.ndarray | None = None
        self.heat_visible = True
        self.scale = 1.0
        self.aspect = 1.0  # row spacing / column spacing: rows are drawn ``aspect`` times taller
        self.offset = QPointF(0.0, 0.0)
        self.crosshair: tuple[float, float] | None = None
        self.polygon: list[tuple[float, float]] = []
        self.brush_radius = 0.0
        self.wheel_scrolls_slices = False
        self.pan_with_left = False
        self._cursor_pos: QPointF | None = None
        self._drag: tuple[str, QPointF] | None = None
        self._fitted = True

    # -- content -----------------------------------------------------------------------------
    def set_pixels(self, pixels: np.ndarray, *, keep_view: bool = False) -> None:
        """Show ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 RGB pixels."""
        new_shape = pixels.shape[:2]
        old_shape = None if self._pixels is None else self._pixels.shape[:2]
        self._pixels = np.ascontiguousarray(pixels)
        self._image = gray_or_rgb_image(self._pixels)
        if not keep_view or old_shape != new_shape:
            self.fit()
        self.update()

    def set_overlay(self, overlay: LabelOverlay | None) -> None:
        self.overlay = overlay
        self.update()

    def set_heat(self, buffer: np.ndarray | None, image: QImage | None) -> None:
        """An uncertainty heat map over the image (``None`` removes it)."""
        self._heat_buf, self._heat = buffer, image
        self.update()

    @property
    def image_shape(self) -> tuple[int, int] | None:
        return None if self._pixels is None else (int(self._pixels.shape[0]), int(self._pixels.shape[1]))

    def labels_changed(self, box: tuple[slice, slice]) -> None:
        """Recolour a changed box of the overlay and repaint just its rect."""
        if self.overlay is None:
            return
        done = self.overlay.update_box(box)
        self.update(self.widget_rect(done))

    # -- geometry ----------------------------------------------------------------------------
    def widget_rect(self, box: tuple[slice, slice]) -> QRect:
        """The widget rect covering an image box (rows, cols), padded one pixel."""
        sy = self.scale * self.aspect
        r = QRectF(self.offset.x() + box[1].start * self.scale, self.offset.y() + box[0].start * sy,
                   (box[1].stop - box[1].start) * self.scale, (box[0].stop - box[0].start) * sy)
        return r.toAlignedRect().adjusted(-2, -2, 2, 2)

    def to_image(self, pos: QPointF) -> tuple[float, float]:
        """Widget position -> image ``(row, col)`` with pixel centres at integers."""
        return ((pos.y() - self.offset.y()) / (self.scale * self.aspect) - 0.5,
                (pos.x() - self.offset.x()) / self.scale - 0.5)

    def to_widget(self, row: float, col: float) -> QPointF:
        """Image ``(row, col)`` -> widget position."""
        return QPointF(self.offset.x() + (col + 0.5) * self.scale,
                       self.offset.y() + (row + 0.5) * self.scale * self.aspect)

    def fit(self) -> None:
        """Zoom so the whole plane fits, centred."""
        shape = self.image_shape
        if shape is None:
            return
        h, w = shape
        s = min(self.width() / max(w, 1), self.height() / max(h * self.aspect, 1))
        self.scale = max(s, 1e-3)
        self.offset = QPointF((self.width() - w * self.scale) / 2, (self.height() - h * self.aspect * self.scale) / 2)
        self._fitted = True
        self.update()
        self.viewChanged.emit()

    def one_to_one(self) -> None:
        """One image pixel per screen pixel, keeping the centre."""
        self.zoom_at(QPointF(self.width() / 2, self.height() / 2), 1.0 / self.scale)

    def zoom_at(self, pos: QPointF, factor: float) -> None:
        """Zoom by ``factor`` keeping the image point under ``pos`` fixed."""
        new = float(np.clip(self.scale * factor, 0.02, 64.0))
        f = new / self.scale
        self.offset = QPointF(pos.x() - (pos.x() - self.offset.x()) * f, pos.y() - (pos.y() - self.offset.y()) * f)
        self.scale = new
        self._fitted = False
        self.update()
        self.viewChanged.emit()

    def resizeEvent(self, event: object) -> None:  # noqa: N802 - Qt API
        if self._fitted:
            self.fit()
        super().resizeEvent(event)  # type: ignore[arg-type]

    # -- painting ----------------------------------------------------------------------------
    def _source_rect(self, target: QRect) -> tuple[QRectF, QRectF] | None:
        shape = self.image_shape
        if shape is None:
            return None
        h, w = shape
        sy = self.scale * self.aspect
        x0 = max(0.0, np.floor((target.left() - self.offset.x()) / self.scale))
        y0 = max(0.0, np.floor((target.top() - self.offset.y()) / sy))
        x1 = min(float(w), np.ceil((target.right() + 1 - self.offset.x()) / self.scale))
        y1 = min(float(h), np.ceil((target.bottom() + 1 - self.offset.y()) / sy))
        if x1 <= x0 or y1 <= y0:
            return None
        src = QRectF(x0, y0, x1 - x0, y1 - y0)
        dst = QRectF(self.offset.x() + x0 * self.scale, self.offset.y() + y0 * sy, (x1 - x0) * self.scale,
                     (y1 - y0) * sy)
        return dst, src

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        rect = event.rect()
        p.fillRect(rect, QColor(30, 30, 34))
        rects = self._source_rect(rect)
        if rects is not None and self._image is not None:
            dst, src = rects
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.scale < 1.0)
            p.drawImage(dst, self._image, src)
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            if self.overlay is not None and self.opacity > 0:
                p.setOpacity(self.opacity)
                p.drawImage(dst, self.overlay.image, src)
                p.setOpacity(1.0)
            if self._heat is not None and self.heat_visible:
                p.drawImage(dst, self._heat, src)
        self._paint_decorations(p)
        p.end()

    def _paint_decorations(self, p: QPainter) -> None:
        if self.crosshair is not None:
            c = self.to_widget(*self.crosshair)
            p.setPen(QPen(QColor(255, 220, 0, 140), 1))  # solid: dashed pens cost ~1 ms per line
            p.drawLine(QPointF(0, c.y()), QPointF(self.width(), c.y()))
            p.drawLine(QPointF(c.x(), 0), QPointF(c.x(), self.height()))
        if self.polygon:
            p.setPen(QPen(QColor(255, 255, 255), 1.5))
            pts = [self.to_widget(r, c) for r, c in self.polygon]
            if self._cursor_pos is not None:
                pts.append(self._cursor_pos)
            for a, b in zip(pts, pts[1:]):
                p.drawLine(a, b)
        if self.brush_radius > 0 and self._cursor_pos is not None:
            p.setPen(QPen(QColor(255, 255, 255, 200), 1))
            r = self.brush_radius * self.scale
            p.drawEllipse(self._cursor_pos, r, r * self.aspect)

    def set_crosshair(self, row: float, col: float) -> None:
        """Move the cross-hair, repainting only the two thin strips it leaves and the two it enters."""
        old, self.crosshair = self.crosshair, (row, col)
        if old == self.crosshair:
            return
        for r, c in ([old] if old is not None else []) + [self.crosshair]:
            pt = self.to_widget(r, c)
            self.update(QRect(0, int(pt.y()) - 2, self.width(), 5))
            self.update(QRect(int(pt.x()) - 2, 0, 5, self.height()))

    def _cursor_rect(self, pos: QPointF | None) -> QRect:
        if pos is None:
            return QRect()
        r = self.brush_radius * self.scale * max(self.aspect, 1.0) + 3
        return QRectF(pos.x() - r, pos.y() - r, 2 * r, 2 * r).toAlignedRect()

    # -- input -------------------------------------------------------------------------------
    def _emit(self, kind: str, event: QMouseEvent) -> None:
        row, col = self.to_image(event.position())
        self.mouse.emit(kind, row, col, event)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and (
                self.pan_with_left or event.modifiers() & Qt.KeyboardModifier.ShiftModifier)):
            self._drag = ("pan", event.position())
        elif button == Qt.MouseButton.RightButton:
            self._drag = ("window", event.position())
        elif button == Qt.MouseButton.LeftButton:
            self._emit("press", event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        pos = event.position()
        old = self._cursor_pos
        self._cursor_pos = QPointF(pos)
        if self.brush_radius > 0 or self.polygon:
            if self.polygon:
                self.update()
            else:
                self.update(self._cursor_rect(old).united(self._cursor_rect(pos)))
        row, col = self.to_image(pos)
        self.hovered.emit(int(round(row)), int(round(col)))
        if self._drag is not None:
            kind, start = self._drag
            delta = pos - start
            self._drag = (kind, QPointF(pos))
            if kind == "pan":
                self.offset += delta
                self._fitted = False
                self.update()
                self.viewChanged.emit()
            else:
                self.windowDrag.emit(int(delta.x()), int(delta.y()))
            return
        self._emit("move", event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self._drag is not None:
            self._drag = None
            return
        if event.button() == Qt.MouseButton.LeftButton:
            self._emit("release", event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if event.button() == Qt.MouseButton.LeftButton:
            self._emit("double", event)

    def leaveEvent(self, event: object) -> None:  # noqa: N802 - Qt API
        old, self._cursor_pos = self._cursor_pos, None
        self.update(self._cursor_rect(old))

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt API
        steps = event.angleDelta().y() / 120.0
        if steps == 0:
            return
        ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        if self.wheel_scrolls_slices and not ctrl:
            self.sliceStep.emit(int(np.sign(steps) * max(1, abs(round(steps)))))
        else:
            self.zoom_at(event.position(), 1.25 ** steps)
