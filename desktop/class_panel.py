"""The class panel: type "cat; kitten, dog, sky" to add classes; pick, hide, rename, recolour, merge, delete."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (QColorDialog, QHBoxLayout, QInputDialog, QLineEdit, QListWidget, QListWidgetItem,
                               QMessageBox, QPushButton, QVBoxLayout, QWidget)

from engine.items import LabelSet

__all__ = ["ClassPanel"]

_logger = logging.getLogger(__name__)


def _swatch(color: tuple[int, int, int]) -> QIcon:
    pix = QPixmap(14, 14)
    pix.fill(QColor(*color))
    painter = QPainter(pix)  # a frame keeps the swatch visible on a selected row of the same colour
    painter.setPen(QColor(255, 255, 255) if sum(color) < 384 else QColor(0, 0, 0))
    painter.drawRect(0, 0, 13, 13)
    painter.end()
    return QIcon(pix)


class ClassPanel(QWidget):
    """Shows the project's classes; asks the window (through signals) to change them.

    Signals
    -------
    addRequested(text), activeChanged(class_id), visibilityChanged(hidden_ids),
    renameRequested(class_id, name), recolourRequested(class_id, (r, g, b)),
    mergeRequested(class_id, into_id), deleteRequested(class_id)
    """

    addRequested = Signal(str)
    activeChanged = Signal(int)
    visibilityChanged = Signal(object)
    renameRequested = Signal(int, str)
    recolourRequested = Signal(int, object)
    mergeRequested = Signal(int, int)
    deleteRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entry = QLineEdit(self)
        self.entry.setObjectName("classEntry")
        self.entry.setPlaceholderText("Type classes: cat; kitten, dog, sky")
        self.list = QListWidget(self)
        self.list.setObjectName("classList")
        buttons = QHBoxLayout()
        self.buttons: dict[str, QPushButton] = {}
        for name, slot in (("Rename", self.rename_current), ("Colour", self.recolour_current),
                           ("Merge", self.merge_current), ("Delete", self.delete_current)):
            b = QPushButton(name, self)
            b.setObjectName(f"class{name}")
            b.clicked.connect(slot)
            buttons.addWidget(b)
            self.buttons[name] = b
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.entry)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self.labels = LabelSet()
        self.hidden: set[int] = set()
        self.entry.returnPressed.connect(self._on_enter)
        self.list.currentItemChanged.connect(self._on_current)
        self.list.itemChanged.connect(self._on_check)

    def _on_enter(self) -> None:
        text = self.entry.text().strip()
        if text:
            self.addRequested.emit(text)
            self.entry.clear()

    def set_labels(self, labels: LabelSet, active: int) -> None:
        """Show these classes with ``active`` selected."""
        self.labels = labels
        self.hidden &= set(labels.ids)
        self.list.blockSignals(True)
        self.list.clear()
        for k, c in enumerate(labels):
            key = f"{k + 1}: " if k < 9 else ""
            it = QListWidgetItem(_swatch(c.color), f"{key}{c.name}" + (f"  ({c.prompt})" if c.prompt != c.name else ""))
            it.setData(Qt.ItemDataRole.UserRole, c.id)
            it.setFlags(it.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            it.setCheckState(Qt.CheckState.Unchecked if c.id in self.hidden else Qt.CheckState.Checked)
            it.setToolTip(f"id {c.id}; untick to hide")
            self.list.addItem(it)
            if c.id == active:
                self.list.setCurrentItem(it)
        self.list.blockSignals(False)

    def current_id(self) -> int | None:
        it = self.list.currentItem()
        return None if it is None else int(it.data(Qt.ItemDataRole.UserRole))

    def select_index(self, k: int) -> None:
        """Make the k-th class (0-based) active (number keys)."""
        if 0 <= k < self.list.count():
            self.list.setCurrentRow(k)

    def _on_current(self, current: QListWidgetItem | None, _previous: object) -> None:
        if current is not None:
            self.activeChanged.emit(int(current.data(Qt.ItemDataRole.UserRole)))

    def _on_check(self, it: QListWidgetItem) -> None:
        cid = int(it.data(Qt.ItemDataRole.UserRole))
        if it.checkState() == Qt.CheckState.Checked:
            self.hidden.discard(cid)
        else:
            self.hidden.add(cid)
        self.visibilityChanged.emit(frozenset(self.hidden))

    def rename_current(self) -> None:
        cid = self.current_id()
        if cid is None:
            return
        name, ok = QInputDialog.getText(self, "Rename class", "New name:", text=self.labels[cid].name)
        if ok and name.strip():
            self.renameRequested.emit(cid, name.strip())

    def recolour_current(self) -> None:
        cid = self.current_id()
        if cid is None:
            return
        color = QColorDialog.getColor(QColor(*self.labels[cid].color), self, "Class colour")
        if color.isValid():
            self.recolourRequested.emit(cid, (color.red(), color.green(), color.blue()))

    def merge_current(self) -> None:
        cid = self.current_id()
        if cid is None or len(self.labels) < 2:
            return
        others = [c for c in self.labels if c.id != cid]
        name, ok = QInputDialog.getItem(self, "Merge class", f"Merge {self.labels[cid].name!r} into:",
                                        [c.name for c in others], 0, False)
        if ok and self.confirm(f"Merge {self.labels[cid].name!r} into {name!r}? Its pixels change class in "
                               "every item; the class is deleted."):
            self.mergeRequested.emit(cid, next(c.id for c in others if c.name == name))

    def delete_current(self) -> None:
        cid = self.current_id()
        if cid is None:
            return
        if self.confirm(f"Delete {self.labels[cid].name!r}? Its pixels become unlabelled in every item."):
            self.deleteRequested.emit(cid)

    def confirm(self, text: str) -> bool:
        """Ask yes/no (tests replace this method)."""
        answer = QMessageBox.question(self, "Maskwright", text)
        return answer == QMessageBox.StandardButton.Yes
