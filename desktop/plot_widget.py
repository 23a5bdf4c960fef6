"""A small live line plot (QPainter): training loss and validation metrics against steps."""

from __future__ import annotations

import logging
import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

__all__ = ["LinePlot"]

_logger = logging.getLogger(__name__)

_COLOURS = [QColor(31, 119, 180), QColor(255, 127, 14), QColor(44, 160, 44), QColor(214, 39, 40)]


class LinePlot(QWidget):
    """Series of ``(x, y)`` points drawn on shared axes, each series scaled to its own range."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.series: dict[str, list[tuple[float, float]]] = {}
        self.setMinimumSize(260, 160)

    def add_point(self, name: str, x: float, y: float | None) -> None:
        """Append a point (``None`` or non-finite values are skipped)."""
        if y is None or not math.isfinite(float(y)):
            return
        self.series.setdefault(name, []).append((float(x), float(y)))
        self.update()

    def clear(self) -> None:
        self.series.clear()
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor(250, 250, 250))
        area = QRectF(40, 22, max(self.width() - 50, 10), max(self.height() - 44, 10))
        p.setPen(QPen(QColor(120, 120, 120), 1))
        p.drawRect(area)
        p.drawText(QPointF(6, 15), self.title)
        xs = [x for pts in self.series.values() for x, _ in pts]
        if not xs:
            p.drawText(area, Qt.AlignmentFlag.AlignCenter, "waiting for data…")
            p.end()
            return
        x0, x1 = min(xs), max(xs)
        p.drawText(QPointF(area.left(), area.bottom() + 16), f"{x0:g}")
        p.drawText(QPointF(area.right() - 40, area.bottom() + 16), f"{x1:g}")
        legend_y = 15.0
        for k, (name, pts) in enumerate(self.series.items()):
            ys = [y for _, y in pts]
            y0, y1 = min(ys), max(ys)
            if y1 - y0 < 1e-12:
                y0, y1 = y0 - 0.5, y1 + 0.5
            colour = _COLOURS[k % len(_COLOURS)]
            p.setPen(QPen(colour, 1.6))

            def to_w(x: float, y: float) -> QPointF:
                fx = 0.5 if x1 == x0 else (x - x0) / (x1 - x0)
                return QPointF(area.left() + fx * area.width(), area.bottom() - (y - y0) / (y1 - y0) * area.height())

            path = [to_w(x, y) for x, y in pts]
            for a, b in zip(path, path[1:]):
                p.drawLine(a, b)
            if len(path) == 1:
                p.drawEllipse(path[0], 2, 2)
            p.drawText(QPointF(120 + 130 * k, legend_y), f"{name}: {ys[-1]:.4g}")
        p.end()
