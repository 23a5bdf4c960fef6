"""The project browser: items with status and thumbnails, filtered by status."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QComboBox, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from engine.store import STATUSES, ItemRecord

__all__ = ["ProjectBrowser"]

_logger = logging.getLogger(__name__)

_STATUS_MARK = {"new": "○", "predicted": "◐", "corrected": "●", "approved": "✔"}
_THUMB = 64


class ProjectBrowser(QWidget):
    """Lists the project's items.

    Signals
    -------
    activated(item_id)
        The person opened an item (double click or Enter).
    """

    activated = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.filter = QComboBox(self)
        self.filter.setObjectName("statusFilter")
        self.filter.addItem("All items", "")
        for s in STATUSES:
            self.filter.addItem(s.capitalize(), s)
        self.list = QListWidget(self)
        self.list.setObjectName("itemList")
        self.list.setIconSize(QSize(_THUMB, _THUMB))
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.filter)
        layout.addWidget(self.list, 1)
        self._thumbs: dict[int, QIcon] = {}
        self._records: list[ItemRecord] = []
        self.filter.currentIndexChanged.connect(lambda _: self._refill())
        self.list.itemActivated.connect(lambda it: self.activated.emit(int(it.data(Qt.ItemDataRole.UserRole))))

    @property
    def status_filter(self) -> str:
        return str(self.filter.currentData() or "")

    def set_items(self, records: list[ItemRecord], *, current: int | None = None) -> None:
        """Show these items (the filter applies), keeping the selection where possible."""
        self._records = records
        self._refill(current)

    def _refill(self, current: int | None = None) -> None:
        selected = set(self.selected_ids()) if current is None else {current}
        self.list.blockSignals(True)
        self.list.clear()
        wanted = self.status_filter
        for r in self._records:
            if wanted and r.status != wanted:
                continue
            size = "x".join(str(n) for n in reversed(r.shape)) if r.kind == "photo" else "x".join(map(str, r.shape))
            it = QListWidgetItem(f"{_STATUS_MARK.get(r.status, '?')} {r.name}\n{r.kind} {size} · {r.status}")
            it.setData(Qt.ItemDataRole.UserRole, r.id)
            it.setToolTip(str(r.source))
            icon = self._thumbs.get(r.id) or self._kind_icon(r.kind)
            if icon is not None:
                it.setIcon(icon)
            self.list.addItem(it)
            if r.id in selected:
                it.setSelected(True)
                self.list.setCurrentItem(it)
        self.list.blockSignals(False)

    def set_thumbnail(self, item_id: int, image: QImage) -> None:
        """Set an item's thumbnail (made by a worker)."""
        self._thumbs[item_id] = QIcon(QPixmap.fromImage(image))
        for i in range(self.list.count()):
            it = self.list.item(i)
            if int(it.data(Qt.ItemDataRole.UserRole)) == item_id:
                it.setIcon(self._thumbs[item_id])

    @staticmethod
    def _kind_icon(kind: str) -> QIcon | None:
        """A stand-in icon until a thumbnail exists (volumes get theirs when read)."""
        try:
            import qtawesome

            return qtawesome.icon("fa5s.cube" if kind == "volume" else "fa5s.image", color="gray")
        except Exception:  # noqa: BLE001 - an icon is never worth a crash
            return None

    def has_thumbnail(self, item_id: int) -> bool:
        return item_id in self._thumbs

    def selected_ids(self) -> list[int]:
        return [int(it.data(Qt.ItemDataRole.UserRole)) for it in self.list.selectedItems()]

    def visible_ids(self) -> list[int]:
        return [int(self.list.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.list.count())]

    def select(self, item_id: int) -> None:
        for i in range(self.list.count()):
            it = self.list.item(i)
            if int(it.data(Qt.ItemDataRole.UserRole)) == item_id:
                self.list.setCurrentItem(it)
                return

    @staticmethod
    def thumb_size() -> int:
        return _THUMB

    @staticmethod
    def source_name(path: Path) -> str:
        return path.name
