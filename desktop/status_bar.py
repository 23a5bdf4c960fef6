"""The status bar: cursor position, pixel value or HU, class under the cursor, device in use."""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from engine.items import LabelSet

__all__ = ["StatusBar"]

_logger = logging.getLogger(__name__)


class StatusBar(QStatusBar):
    """Permanent fields on the right, passing messages on the left."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.position = QLabel(self)
        self.position.setObjectName("statusPosition")
        self.value = QLabel(self)
        self.value.setObjectName("statusValue")
        self.klass = QLabel(self)
        self.klass.setObjectName("statusClass")
        self.device = QLabel(self)
        self.device.setObjectName("statusDevice")
        self.modified = QLabel(self)
        for w in (self.position, self.value, self.klass, self.modified, self.device):
            w.setMinimumWidth(80)
            self.addPermanentWidget(w)

    def show_cursor(self, position: str, value: str, class_id: int, labels: LabelSet) -> None:
        self.position.setText(position)
        self.value.setText(value)
        if class_id and class_id in labels:
            self.klass.setText(labels[class_id].name)
        else:
            self.klass.setText("" if not position else ("unlabelled" if class_id == 0 else f"id {class_id}"))

    def show_device(self, name: str) -> None:
        self.device.setText(f"Device: {name}")

    def show_modified(self, modified: bool) -> None:
        self.modified.setText("● unsaved" if modified else "saved")
