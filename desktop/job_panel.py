"""The job panel: one row per running background job, with progress and a cancel button."""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from desktop.workers import Job, JobManager

__all__ = ["JobPanel"]

_logger = logging.getLogger(__name__)


class _JobRow(QWidget):
    def __init__(self, job: Job, manager: JobManager, parent: QWidget) -> None:
        super().__init__(parent)
        self.label = QLabel(job.title, self)
        self.bar = QProgressBar(self)
        self.bar.setRange(0, 0)
        self.cancel = QPushButton("Cancel", self)
        self.cancel.setObjectName(f"cancelJob{job.id}")
        self.cancel.clicked.connect(lambda: manager.cancel(job.id))
        self.cancel.setVisible(job.cancellable)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(2, 0, 2, 0)
        layout.addWidget(self.label, 2)
        layout.addWidget(self.bar, 3)
        layout.addWidget(self.cancel)

    def show_progress(self, job: Job) -> None:
        done, total, message = job.progress
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
        self.label.setText(f"{job.title}: {message}" if message else job.title)


class JobPanel(QWidget):
    """Follows a :class:`JobManager`."""

    def __init__(self, manager: JobManager, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.manager = manager
        self.rows: dict[int, _JobRow] = {}
        self.idle = QLabel("No background jobs.", self)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(2, 2, 2, 2)
        self._layout.addWidget(self.idle)
        self._layout.addStretch(1)
        manager.started.connect(self._on_started)
        manager.progressed.connect(self._on_progress)
        manager.ended.connect(self._on_ended)

    def _on_started(self, job: Job) -> None:
        row = _JobRow(job, self.manager, self)
        self.rows[job.id] = row
        self._layout.insertWidget(self._layout.count() - 1, row)
        self.idle.hide()

    def _on_progress(self, job: Job) -> None:
        row = self.rows.get(job.id)
        if row is not None:
            row.show_progress(job)

    def _on_ended(self, job: Job, ok: bool) -> None:
        row = self.rows.pop(job.id, None)
        if row is not None:
            row.setParent(None)
            row.deleteLater()
        self.idle.setVisible(not self.rows)
