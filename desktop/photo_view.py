"""The view of a photo: one canvas with the label overlay."""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QVBoxLayout, QWidget

from desktop.canvas import Canvas
from desktop.overlay import LabelOverlay, heat_image
from desktop.tool_controller import ToolController
from engine.edit import Plane, plane_box
from engine.items import Photo

__all__ = ["PhotoView"]

_logger = logging.getLogger(__name__)


class PhotoView(QWidget):
    """Shows the document's photo and forwards mouse events to the tool controller.

    Signals
    -------
    cursorInfo(position, value, class_id)
        Texts for the status bar under the cursor.
    """

    cursorInfo = Signal(str, str, int)

    def __init__(self, tools: ToolController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tools = tools
        self.canvas = Canvas(self)
        self.canvas.setObjectName("photoCanvas")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self.photo: Photo | None = None
        self.plane = Plane()
        self.canvas.mouse.connect(self._on_mouse)
        self.canvas.hovered.connect(self._on_hover)

    @property
    def canvases(self) -> list[Canvas]:
        return [self.canvas]

    def show_photo(self, photo: Photo, labels2d: np.ndarray, lut: np.ndarray, *, outline: bool) -> None:
        """Show a photo and its label map (kept by reference: edits show through)."""
        self.photo = photo
        self.canvas.set_pixels(photo.rgb)
        self.canvas.set_overlay(LabelOverlay(labels2d, lut, outline=outline))
        self.canvas.set_heat(None, None)

    def clear(self) -> None:
        self.photo = None
        self.canvas.set_overlay(None)

    def on_edited(self, keys: tuple) -> None:
        """Repaint the changed boxes."""
        for key in keys:
            box = plane_box(key, None, 0)
            if box is not None:
                self.canvas.labels_changed(box)

    def set_heat(self, values: np.ndarray | None) -> None:
        """Show an ``(H, W)`` uncertainty map in ``[0, 1]`` (``None`` hides it)."""
        if values is None:
            self.canvas.set_heat(None, None)
        else:
            self.canvas.set_heat(*heat_image(values))

    def _on_mouse(self, kind: str, row: float, col: float, event: QMouseEvent) -> None:
        if self.photo is None:
            return
        down = bool(event.buttons() & Qt.MouseButton.LeftButton)
        self.tools.handle(self.canvas, self.plane, self.photo.rgb, kind, row, col, down)

    def _on_hover(self, row: int, col: int) -> None:
        if self.photo is None:
            return
        h, w = self.photo.shape
        if not (0 <= row < h and 0 <= col < w):
            self.cursorInfo.emit("", "", 0)
            return
        px = self.photo.pixels[row, col]
        value = " ".join(str(int(v)) for v in np.atleast_1d(px))
        cls = self.canvas.overlay.class_at(row, col) if self.canvas.overlay is not None else 0
        self.cursorInfo.emit(f"x {col}  y {row}", value, cls)
