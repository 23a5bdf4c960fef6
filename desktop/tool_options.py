"""Tool options: brush size and hardness, wand range, overlay opacity and outline mode."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QFormLayout, QSlider, QSpinBox, QWidget

from desktop.tool_controller import ToolOptions

__all__ = ["ToolOptionsPanel"]

_logger = logging.getLogger(__name__)


class ToolOptionsPanel(QWidget):
    """Edits a :class:`ToolOptions` in place and the overlay display settings.

    Signals
    -------
    optionsChanged(), opacityChanged(float), outlineChanged(bool), uncertaintyToggled(bool)
    """

    optionsChanged = Signal()
    opacityChanged = Signal(float)
    outlineChanged = Signal(bool)
    uncertaintyToggled = Signal(bool)

    def __init__(self, options: ToolOptions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.options = options
        form = QFormLayout(self)
        self.size = QSpinBox(self)
        self.size.setObjectName("brushSize")
        self.size.setRange(1, 500)
        self.size.setValue(int(options.radius))
        self.hardness = QSlider(Qt.Orientation.Horizontal, self)
        self.hardness.setObjectName("brushHardness")
        self.hardness.setRange(0, 100)
        self.hardness.setValue(int(options.hardness * 100))
        self.low = QDoubleSpinBox(self)
        self.high = QDoubleSpinBox(self)
        for box, value in ((self.low, options.wand_low), (self.high, options.wand_high)):
            box.setRange(-5000, 70000)
            box.setDecimals(0)
            box.setValue(value)
        self.opacity = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity.setObjectName("overlayOpacity")
        self.opacity.setRange(0, 100)
        self.opacity.setValue(50)
        self.outline = QCheckBox("Outline only", self)
        self.outline.setObjectName("outlineMode")
        self.uncertainty = QCheckBox("Uncertainty overlay", self)
        self.uncertainty.setObjectName("uncertaintyOverlay")
        self.uncertainty.setChecked(True)
        form.addRow("Brush radius", self.size)
        form.addRow("Hardness", self.hardness)
        form.addRow("Wand low (HU)", self.low)
        form.addRow("Wand high (HU)", self.high)
        form.addRow("Overlay opacity", self.opacity)
        form.addRow(self.outline)
        form.addRow(self.uncertainty)
        self.size.valueChanged.connect(self._sync)
        self.hardness.valueChanged.connect(self._sync)
        self.low.valueChanged.connect(self._sync)
        self.high.valueChanged.connect(self._sync)
        self.opacity.valueChanged.connect(lambda v: self.opacityChanged.emit(v / 100.0))
        self.outline.toggled.connect(self.outlineChanged)
        self.uncertainty.toggled.connect(self.uncertaintyToggled)

    def _sync(self) -> None:
        o = self.options
        o.radius = float(self.size.value())
        o.hardness = self.hardness.value() / 100.0
        o.wand_low, o.wand_high = sorted((self.low.value(), self.high.value()))
        self.optionsChanged.emit()

    def change_size(self, delta: int) -> None:
        """Grow or shrink the brush (``[`` and ``]``)."""
        self.size.setValue(max(1, self.size.value() + delta))
