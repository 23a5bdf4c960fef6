"""One plane of a volume (axial, coronal or sagittal): a canvas, a slice slider and a title."""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from desktop.canvas import Canvas
from desktop.overlay import LabelOverlay, heat_image
from engine.edit import Plane
from engine.items import Volume

__all__ = ["SliceView", "AXIS_NAMES", "window_to_grey"]

_logger = logging.getLogger(__name__)

AXIS_NAMES = ("Axial", "Coronal", "Sagittal")


def window_to_grey(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """Map intensities to uint8 grey with a window: ``[center - width/2, center + width/2]`` -> ``[0, 255]``."""
    width = max(float(width), 1e-6)
    scale = np.float32(255.0 / width)
    out = (values.astype(np.float32, copy=False) - np.float32(center - width / 2.0)) * scale
    np.clip(out, 0.0, 255.0, out=out)
    return out.astype(np.uint8)


class SliceView(QWidget):
    """Shows slice ``index`` of a volume seen along ``axis`` (0 axial, 1 coronal, 2 sagittal).

    Signals
    -------
    indexChanged(axis, index)
    mouse(view, kind, row, col, left_down)
        Left-button/hover events in plane pixel coordinates.
    hovered(axis, row, col)
    windowDrag(dx, dy)
    """

    indexChanged = Signal(int, int)
    mouse = Signal(object, str, float, float, bool)
    hovered = Signal(int, int, int)
    windowDrag = Signal(int, int)

    def __init__(self, axis: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.axis = axis
        self.volume: Volume | None = None
        self.labels3d: np.ndarray | None = None
        self.index = 0
        self.center, self.width = 40.0, 400.0
        self.canvas = Canvas(self)
        self.canvas.setObjectName(f"{AXIS_NAMES[axis].lower()}Canvas")
        self.canvas.wheel_scrolls_slices = True
        self.title = QLabel(AXIS_NAMES[axis], self)
        self.title.setMinimumWidth(110)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setObjectName(f"{AXIS_NAMES[axis].lower()}Slider")
        top = QHBoxLayout()
        top.addWidget(self.title)
        top.addWidget(self.slider, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(1, 1, 1, 1)
        layout.setSpacing(1)
        layout.addLayout(top)
        layout.addWidget(self.canvas, 1)
        self.slider.valueChanged.connect(self.set_index)
        self.canvas.sliceStep.connect(lambda steps: self.set_index(self.index + steps))
        self.canvas.mouse.connect(self._on_mouse)
        self.canvas.hovered.connect(lambda r, c: self.hovered.emit(self.axis, r, c))
        self.canvas.windowDrag.connect(self.windowDrag)
        self._heat3d: np.ndarray | None = None

    @property
    def plane(self) -> Plane:
        return Plane(self.axis, self.index)

    @property
    def depth(self) -> int:
        return 0 if self.volume is None else int(self.volume.shape[self.axis])

    def set_volume(self, volume: Volume, labels3d: np.ndarray, lut: np.ndarray, *, outline: bool,
                   center: float, width: float) -> None:
        """Show a volume and its ``(z, y, x)`` label map (by reference), starting at the middle slice."""
        self.volume, self.labels3d = volume, labels3d
        self.center, self.width = center, width
        sx, sy, sz = volume.spacing
        self.canvas.aspect = (sy / sx, sz / sx, sz / sy)[self.axis]
        self.index = self.depth // 2
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(self.depth - 1, 0))
        self.slider.setValue(self.index)
        self.slider.blockSignals(False)
        self.canvas.set_overlay(LabelOverlay(self.plane.view(labels3d), lut, outline=outline))
        self._render(keep_view=False)

    def set_window(self, center: float, width: float) -> None:
        self.center, self.width = center, width
        self._render(keep_view=True)

    def set_index(self, index: int) -> None:
        """Scroll to slice ``index`` (clamped)."""
        if self.volume is None:
            return
        index = int(np.clip(index, 0, self.depth - 1))
        if index == self.index and self.canvas.image_shape is not None:
            return
        self.index = index
        if self.slider.value() != index:
            self.slider.blockSignals(True)
            self.slider.setValue(index)
            self.slider.blockSignals(False)
        self._render(keep_view=True)
        self.indexChanged.emit(self.axis, index)

    def _render(self, *, keep_view: bool) -> None:
        assert self.volume is not None and self.labels3d is not None
        plane = self.plane
        self.canvas.set_pixels(window_to_grey(plane.view(self.volume.array), self.center, self.width),
                               keep_view=keep_view)
        if self.canvas.overlay is not None:
            self.canvas.overlay.set_labels(plane.view(self.labels3d))
        if self._heat3d is not None:
            self.canvas.set_heat(*heat_image(plane.view(self._heat3d)))
        self.title.setText(f"{AXIS_NAMES[self.axis]} {self.index + 1}/{self.depth}")

    def set_heat(self, values3d: np.ndarray | None) -> None:
        self._heat3d = values3d
        if values3d is None:
            self.canvas.set_heat(None, None)
        elif self.volume is not None:
            self.canvas.set_heat(*heat_image(self.plane.view(values3d)))

    def _on_mouse(self, kind: str, row: float, col: float, event: QMouseEvent) -> None:
        self.mouse.emit(self, kind, row, col, bool(event.buttons() & Qt.MouseButton.LeftButton))
