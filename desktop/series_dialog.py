"""The series picker: which of the series found in a DICOM folder to add."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from engine.io.dicom_scan import SeriesInfo

__all__ = ["SeriesPicker"]

_logger = logging.getLogger(__name__)


class SeriesPicker(QDialog):
    """Lists series with modality, description, size and geometry problems; all ticked at first."""

    def __init__(self, series: list[SeriesInfo], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Choose series")
        self.series = series
        self.list = QListWidget(self)
        self.list.setObjectName("seriesList")
        for k, s in enumerate(series):
            it = QListWidgetItem(s.summary())
            it.setData(Qt.ItemDataRole.UserRole, k)
            it.setFlags(it.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            it.setCheckState(Qt.CheckState.Unchecked if s.problems else Qt.CheckState.Checked)
            self.list.addItem(it)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"This folder holds {len(series)} series. Tick the ones to add:", self))
        layout.addWidget(self.list)
        layout.addWidget(buttons)
        self.resize(640, 320)

    def chosen(self) -> list[SeriesInfo]:
        """The ticked series."""
        return [self.series[int(self.list.item(i).data(Qt.ItemDataRole.UserRole))]
                for i in range(self.list.count()) if self.list.item(i).checkState() == Qt.CheckState.Checked]
