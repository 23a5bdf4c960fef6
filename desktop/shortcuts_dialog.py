"""Edit keyboard shortcuts: one row per action; changes are saved in the settings by action id."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QKeySequenceEdit, QTableWidget, QTableWidgetItem, QVBoxLayout

from desktop.actions import all_actions

if TYPE_CHECKING:
    from desktop.main_window import MainWindow

__all__ = ["ShortcutsDialog"]

_logger = logging.getLogger(__name__)


class ShortcutsDialog(QDialog):
    """A table of actions and key sequences; OK applies and saves them."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window_ = window
        self.setWindowTitle("Keyboard shortcuts")
        self.actions_ = all_actions()
        self.table = QTableWidget(len(self.actions_), 2, self)
        self.table.setObjectName("shortcutTable")
        self.table.setHorizontalHeaderLabels(["Action", "Shortcut"])
        self.edits: dict[str, QKeySequenceEdit] = {}
        for row, a in enumerate(self.actions_):
            self.table.setItem(row, 0, QTableWidgetItem(a.title.replace("&", "")))
            edit = QKeySequenceEdit(window.actions_by_id[a.id].shortcut(), self)
            self.table.setCellWidget(row, 1, edit)
            self.edits[a.id] = edit
        self.table.resizeColumnsToContents()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.RestoreDefaults, self)
        buttons.accepted.connect(self.apply)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self.restore_defaults)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(520, 600)

    def restore_defaults(self) -> None:
        for a in self.actions_:
            self.edits[a.id].setKeySequence(QKeySequence(a.shortcut))

    def set_shortcut(self, action_id: str, keys: str) -> None:
        """Change one row (what typing in the row does)."""
        self.edits[action_id].setKeySequence(QKeySequence(keys))

    def apply(self) -> None:
        """Apply to the window's actions and save the differences from the defaults."""
        overrides = {}
        for a in self.actions_:
            keys = self.edits[a.id].keySequence().toString()
            self.window_.actions_by_id[a.id].setShortcut(QKeySequence(keys))
            if keys != QKeySequence(a.shortcut).toString():
                overrides[a.id] = keys
        self.window_.settings.shortcuts = overrides
        self.window_.settings.save()
        self.accept()
