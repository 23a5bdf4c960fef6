"""Turns canvas mouse events into engine edits for the current tool (brush, eraser, polygon, fill, wand).

A brush or eraser drag is one engine stroke (``begin_stroke`` on press, ``end_stroke`` on
release) and becomes one :class:`~desktop.undo.EditCommand` on the undo stack.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal

from desktop.canvas import Canvas
from desktop.document import Document
from engine.edit import Plane, erase, fill_polygon, flood_fill, magic_wand, paint

__all__ = ["ToolController", "TOOLS"]

_logger = logging.getLogger(__name__)

TOOLS = ("brush", "eraser", "polygon", "fill", "wand", "navigate")


@dataclass
class ToolOptions:
    """The settings the tools read (the tool options panel edits them)."""

    radius: float = 8.0
    hardness: float = 1.0
    wand_low: float = 200.0
    wand_high: float = 3000.0
    connectivity: int = 1


class ToolController(QObject):
    """Routes canvas events of the shown plane to the engine.

    Signals
    -------
    toolChanged(name)
    navigated(plane, row, col)
        A click with the navigate tool (volume views move their cross-hairs).
    needClass()
        The person tried to paint before any class exists.
    """

    toolChanged = Signal(str)
    navigated = Signal(object, float, float)
    needClass = Signal()
    failed = Signal(object)  # an exception from an edit: shown by the notifier, the stroke is undone

    def __init__(self, document: Document, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.tool = "brush"
        self.options = ToolOptions()
        self._last: tuple[float, float] | None = None
        self._stroke_open = False
        self._polygon_canvas: Canvas | None = None

    def set_tool(self, name: str) -> None:
        if name not in TOOLS:
            raise ValueError(f"unknown tool {name!r}")
        self.cancel()
        self.tool = name
        self.toolChanged.emit(name)

    @property
    def value(self) -> int:
        return int(self.document.active_class)

    def _ready(self) -> bool:
        if self.document.editor is None:
            return False
        if self.tool in ("brush", "polygon", "fill", "wand") and self.value not in self.document.labels:
            self.needClass.emit()
            return False
        return True

    def handle(self, canvas: Canvas, plane: Plane, image: np.ndarray | None, kind: str, row: float,
               col: float, buttons_down: bool) -> None:
        """One mouse event on ``canvas`` showing ``plane``; ``image`` holds intensities for the wand.

        An error never escapes into the event loop: the open stroke is undone and the error is
        emitted as ``failed`` (the window shows it), so the tools keep working.
        """
        try:
            self._handle(canvas, plane, image, kind, row, col, buttons_down)
        except Exception as err:  # noqa: BLE001 - relayed to the notifier
            self.cancel()
            self.failed.emit(err)

    def _handle(self, canvas: Canvas, plane: Plane, image: np.ndarray | None, kind: str, row: float,
                col: float, buttons_down: bool) -> None:
        if self.tool == "navigate":
            if kind in ("press", "move") and (kind == "press" or buttons_down):
                self.navigated.emit(plane, row, col)
            return
        if kind == "press" and not self._ready():
            return
        editor = self.document.editor
        if editor is None:
            return
        o = self.options
        if self.tool in ("brush", "eraser"):
            if kind == "press":
                editor.begin_stroke(self.tool)
                self._stroke_open = True
                self._last = (row, col)
                self._dab(plane, (row, col), None)
            elif kind == "move" and self._stroke_open and buttons_down:
                self._dab(plane, self._last, (row, col))  # type: ignore[arg-type]
                self._last = (row, col)
            elif kind == "release" and self._stroke_open:
                self.finish_stroke()
        elif self.tool == "polygon":
            if kind == "press":
                canvas.polygon.append((row, col))
                self._polygon_canvas = canvas
                canvas.update()
            elif kind == "double":
                self.close_polygon(plane)
        elif self.tool == "fill" and kind == "press":
            seed = (int(round(row)), int(round(col)))
            self.document.apply("Flood fill", lambda ed: flood_fill(ed, plane, seed, value=self.value,
                                                                     connectivity=o.connectivity))
        elif self.tool == "wand" and kind == "press" and image is not None:
            seed = (int(round(row)), int(round(col)))
            self.document.apply("Magic wand", lambda ed: magic_wand(
                ed, plane, image, seed, low=o.wand_low, high=o.wand_high, value=self.value,
                connectivity=o.connectivity))

    def _dab(self, plane: Plane, p0: tuple[float, float], p1: tuple[float, float] | None) -> None:
        editor = self.document.editor
        assert editor is not None
        o = self.options
        if self.tool == "brush":
            paint(editor, plane, p0, p1, radius=o.radius, value=self.value, hardness=o.hardness)
        else:
            erase(editor, plane, p0, p1, radius=o.radius, hardness=o.hardness)

    def finish_stroke(self) -> None:
        """End an open brush/eraser stroke and push it as one undo step."""
        editor = self.document.editor
        if not self._stroke_open or editor is None:
            return
        self._stroke_open = False
        step = editor.end_stroke()
        self.document.push_step(step, "Brush stroke" if self.tool == "brush" else "Erase")

    def close_polygon(self, plane: Plane) -> None:
        """Fill the polygon drawn so far (double-click or Enter)."""
        canvas = self._polygon_canvas
        editor = self.document.editor
        if canvas is None or editor is None:
            return
        points, canvas.polygon = list(canvas.polygon), []
        canvas.update()
        self.document.apply("Polygon fill", lambda ed: fill_polygon(ed, plane, points, value=self.value))

    def cancel(self) -> None:
        """Drop an open stroke or polygon (Escape, tool change, item change)."""
        editor = self.document.editor
        if self._stroke_open and editor is not None and editor.history.in_stroke:
            editor.abort_stroke()
        self._stroke_open = False
        if self._polygon_canvas is not None:
            self._polygon_canvas.polygon = []
            self._polygon_canvas.update()
            self._polygon_canvas = None
