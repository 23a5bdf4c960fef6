"""The models dialog: the catalog, what is on disk, download (progress, cancel), import, remove, use.

Downloads run as jobs in the window's job panel (progress and cancel there too); nothing
downloads unless the person presses Download. The device models run on is always shown.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import (QComboBox, QDialog, QFileDialog, QHBoxLayout, QLabel, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout)

if TYPE_CHECKING:
    from desktop.main_window import MainWindow

__all__ = ["ModelsDialog"]

_logger = logging.getLogger(__name__)


def _size(n: int | None) -> str:
    if not n:
        return "?"
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


class ModelsDialog(QDialog):
    """One row per catalog entry: name, kind, size, licence, on disk; buttons act on the selected row."""

    def __init__(self, window: MainWindow, *, weights_root: Path | None = None, weights: object = None) -> None:
        super().__init__(window)
        from engine.models.catalog import default_catalog
        from engine.models.weights import WeightsManager

        self.window_ = window
        self.setWindowTitle("Models")
        if weights is None:
            root = weights_root if weights_root is not None else window.settings.get("weights_root")
            weights = WeightsManager(default_catalog(), root)
        self.weights = weights
        self.catalog = self.weights.catalog
        self.device_label = QLabel(self)
        self.device_label.setObjectName("modelsDevice")
        self.device = QComboBox(self)
        self.device.setObjectName("modelsDeviceChoice")
        self.device.setEditable(True)
        self.device.addItems(["auto", "cpu", "cuda", "cuda:0", "mps"])
        self.device.setCurrentText(str(window.settings.get("device", "auto")))
        self.table = QTableWidget(0, 6, self)
        self.table.setObjectName("modelsTable")
        self.table.setHorizontalHeaderLabels(["Model", "Kind", "Size", "Licence", "On disk", "In use"])
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        row = QHBoxLayout()
        self.buttons: dict[str, QPushButton] = {}
        for name, slot in (("Download", self.download_selected), ("Import file…", self.import_dialog),
                           ("Remove", self.remove_selected), ("Use for pre-annotation", self.use_selected)):
            b = QPushButton(name, self)
            b.setObjectName(f"models{name.split()[0]}")
            b.clicked.connect(lambda _=False, s=slot: window.run_action(lambda _w: s()))
            row.addWidget(b)
            self.buttons[name] = b
        top = QHBoxLayout()
        top.addWidget(QLabel("Device:", self))
        top.addWidget(self.device)
        top.addWidget(self.device_label, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        layout.addWidget(QLabel(f"Weights folder: {self.weights.root}", self))
        self.device.currentTextChanged.connect(self._device_changed)
        self._device_changed(self.device.currentText())
        self.refresh()
        self.resize(820, 420)

    def _device_changed(self, text: str) -> None:
        from engine.models.device import choose_device

        try:
            name = choose_device(text).name
            self.window_.settings.set("device", text)
            self.window_.settings.save()
        except ValueError as err:
            name = f"unavailable: {err}"
        self.device_label.setText(f"Models run on: {name}")
        self.window_.show_device()

    def refresh(self) -> None:
        """Re-read the catalog and the weights folder."""
        entries = self.catalog.list()
        active = {str(self.window_.settings.get(f"model.{k}", {}).get("model", "")) for k in ("photo", "volume")}
        self.table.setRowCount(len(entries))
        for r, e in enumerate(entries):
            local = self.weights.is_local(e.name)
            cells = [e.name, e.kind, _size(e.size_bytes), e.licence, "yes" if local else "no",
                     "✔" if e.name in active else ""]
            for c, text in enumerate(cells):
                it = QTableWidgetItem(text)
                it.setToolTip(e.description or e.name)
                self.table.setItem(r, c, it)
        self.table.resizeColumnsToContents()

    def selected_name(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.table.item(rows[0].row(), 0).text() if rows else None

    def download_selected(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        weights = self.weights
        self.window_.jobs.submit(f"Downloading {name}",
                                 lambda p, c: weights.download(name, progress=p, cancel=c),
                                 on_done=lambda _path: self._done(f"Downloaded {name}."))

    def import_dialog(self) -> None:
        name = self.selected_name()
        path, _ = QFileDialog.getOpenFileName(self, "Import weights", "",
                                              "Weights (*.safetensors *.pt *.pth *.bin);;All files (*)")
        if path:
            self.import_file(Path(path), name)

    def import_file(self, path: Path, name: str | None) -> None:
        """Copy a weights file into the cache (verified) as ``name``'s weights."""
        weights = self.weights
        self.window_.jobs.submit(f"Importing {path.name}",
                                 lambda p, c: weights.import_file(path, name, progress=p, cancel=c),
                                 on_done=lambda _p: self._done(f"Imported {path.name}."))

    def remove_selected(self) -> None:
        name = self.selected_name()
        if name is not None and self.window_.ask(f"Remove the downloaded weights of {name}?"):
            removed = self.weights.remove(name)
            self._done(f"Removed {len(removed)} file(s) of {name}.")

    def use_selected(self) -> None:
        """Make the selected model the one pre-annotation uses for its kind."""
        name = self.selected_name()
        if name is None:
            return
        entry = self.catalog.get(name)
        cfg = {"model": name}
        self.window_.settings.set(f"model.{entry.kind}", cfg)
        self.window_.settings.save()
        self._done(f"Pre-annotation of {entry.kind}s now uses {name}.")

    def _done(self, text: str) -> None:
        self.window_.notifier.info(text)
        self.refresh()
