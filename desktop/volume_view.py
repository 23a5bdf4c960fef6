"""The view of a volume: axial, coronal and sagittal slices with linked cross-hairs and window/level."""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from desktop.slice_view import SliceView
from desktop.tool_controller import ToolController
from engine.edit import Plane, plane_box
from engine.items import Volume, WindowPreset

__all__ = ["VolumeView", "CT_PRESETS"]

_logger = logging.getLogger(__name__)

CT_PRESETS = (
    WindowPreset("Soft tissue", 40, 400),
    WindowPreset("Lung", -600, 1500),
    WindowPreset("Bone", 400, 1800),
    WindowPreset("Brain", 40, 80),
    WindowPreset("Liver", 60, 160),
)


def auto_window(array: np.ndarray) -> WindowPreset:
    """A window from the 1st-99th percentiles of a subsample (MR and unknown modalities)."""
    sample = array[:: max(1, array.shape[0] // 16), ::4, ::4]
    lo, hi = np.percentile(sample, [1, 99]) if sample.size else (0.0, 1.0)
    return WindowPreset("Auto", float(lo + hi) / 2, float(max(hi - lo, 1.0)))


class VolumeView(QWidget):
    """Three linked slice views.

    Signals
    -------
    cursorInfo(position, value, class_id)
        Texts for the status bar (HU on CT).
    """

    cursorInfo = Signal(str, str, int)

    def __init__(self, tools: ToolController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tools = tools
        self.volume: Volume | None = None
        self.labels3d: np.ndarray | None = None
        self.views = [SliceView(axis, self) for axis in range(3)]
        self.presets = QComboBox(self)
        self.presets.setObjectName("windowPresets")
        self.wl_label = QLabel(self)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Window:", self))
        bar.addWidget(self.presets)
        bar.addWidget(self.wl_label)
        bar.addStretch(1)
        grid = QGridLayout()
        grid.setSpacing(2)
        grid.addWidget(self.views[0], 0, 0, 2, 1)
        grid.addWidget(self.views[1], 0, 1)
        grid.addWidget(self.views[2], 1, 1)
        grid.setColumnStretch(0, 2)
        grid.setColumnStretch(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addLayout(grid, 1)
        self.cursor = [0, 0, 0]  # (z, y, x)
        self._preset_list: list[WindowPreset] = []
        self.presets.currentIndexChanged.connect(self._on_preset)
        for v in self.views:
            v.indexChanged.connect(self._on_index)
            v.mouse.connect(self._on_mouse)
            v.hovered.connect(self._on_hover)
            v.windowDrag.connect(self._on_window_drag)
        tools.navigated.connect(self._on_navigate)

    @property
    def canvases(self) -> list:
        return [v.canvas for v in self.views]

    @property
    def window(self) -> tuple[float, float]:
        return self.views[0].center, self.views[0].width

    def show_volume(self, volume: Volume, labels3d: np.ndarray, lut: np.ndarray, *, outline: bool) -> None:
        """Show a volume and its label map (by reference), centred, with its default window."""
        self.volume, self.labels3d = volume, labels3d
        presets = list(volume.windows)
        if volume.modality.upper() == "CT":
            presets += list(CT_PRESETS)
        presets.append(auto_window(volume.array))
        self._preset_list = presets
        self.presets.blockSignals(True)
        self.presets.clear()
        self.presets.addItems([f"{p.name} ({p.center:g}/{p.width:g})" for p in presets])
        self.presets.setCurrentIndex(0)
        self.presets.blockSignals(False)
        first = presets[0]
        for v in self.views:
            v.set_volume(volume, labels3d, lut, outline=outline, center=first.center, width=first.width)
        self.cursor = [s // 2 for s in volume.shape]
        self._update_crosshairs()
        self._show_window()

    def clear(self) -> None:
        self.volume = self.labels3d = None

    def _on_preset(self, i: int) -> None:
        if 0 <= i < len(self._preset_list):
            p = self._preset_list[i]
            self.set_window(p.center, p.width)

    def set_window(self, center: float, width: float) -> None:
        """Window/level for all three views."""
        width = max(width, 1.0)
        for v in self.views:
            v.set_window(center, width)
        self._show_window()

    def _show_window(self) -> None:
        c, w = self.window
        self.wl_label.setText(f"L {c:.0f}  W {w:.0f}")

    def _on_window_drag(self, dx: int, dy: int) -> None:
        c, w = self.window
        step = max(w / 256.0, 0.5)
        self.set_window(c - dy * step, w + dx * step)

    def scroll(self, axis: int, steps: int) -> None:
        """Move one view by ``steps`` slices."""
        v = self.views[axis]
        v.set_index(v.index + steps)

    def _on_index(self, axis: int, index: int) -> None:
        self.cursor[axis] = index
        self._update_crosshairs()

    def _update_crosshairs(self) -> None:
        z, y, x = self.cursor
        for v, ch in zip(self.views, ((y, x), (z, x), (z, y))):
            v.canvas.set_crosshair(float(ch[0]), float(ch[1]))

    def _on_navigate(self, plane: Plane, row: float, col: float) -> None:
        if self.volume is None or plane.axis is None:
            return
        pos = [row, col]
        pos.insert(plane.axis, plane.index)
        self.cursor = [int(np.clip(round(p), 0, n - 1)) for p, n in zip(pos, self.volume.shape)]
        for axis, v in enumerate(self.views):
            if axis != plane.axis:
                v.set_index(self.cursor[axis])
        self._update_crosshairs()

    def _on_mouse(self, view: SliceView, kind: str, row: float, col: float, down: bool) -> None:
        if self.volume is not None:
            self.tools.handle(view.canvas, view.plane, self.volume.array, kind, row, col, down)

    def _on_hover(self, axis: int, row: int, col: int) -> None:
        if self.volume is None or self.labels3d is None:
            return
        pos = [row, col]
        pos.insert(axis, self.views[axis].index)
        if not all(0 <= p < n for p, n in zip(pos, self.volume.shape)):
            self.cursorInfo.emit("", "", 0)
            return
        z, y, x = pos
        value = float(self.volume.array[z, y, x])
        unit = " HU" if self.volume.modality.upper() == "CT" else ""
        self.cursorInfo.emit(f"x {x}  y {y}  z {z}", f"{value:g}{unit}", int(self.labels3d[z, y, x]))

    def on_edited(self, keys: tuple) -> None:
        """Repaint the changed boxes in every view that shows them."""
        for v in self.views:
            for key in keys:
                box = plane_box(key, v.axis, v.index)
                if box is not None:
                    v.canvas.labels_changed(box)

    def set_heat(self, values3d: np.ndarray | None) -> None:
        for v in self.views:
            v.set_heat(values3d)
