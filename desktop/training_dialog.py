"""The training dialog: runs ``python -m trainers fit ...`` as a separate process and plots its events.

The trainer prints JSON lines (``trainers.events``); a crash or an out-of-memory in training never
takes the window down, and its GPU memory is returned when the process ends. When training
finishes, its published checkpoint becomes the active model for the next pre-annotation.
Settings are remembered between runs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QProcess, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QListWidget,
                               QListWidgetItem, QPlainTextEdit, QPushButton, QSpinBox, QVBoxLayout)

from desktop.plot_widget import LinePlot

if TYPE_CHECKING:
    from desktop.main_window import MainWindow

__all__ = ["TrainingDialog", "RECIPES"]

_logger = logging.getLogger(__name__)

RECIPES = {"mcanet": "volume", "cascade": "photo", "densevlm": "photo"}


class TrainingDialog(QDialog):
    """Recipe, classes, budget, device; start/cancel; live loss and metrics plots.

    Signals
    -------
    finished_training(ok, checkpoint_path)
    """

    finished_training = Signal(bool, str)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window_ = window
        self.setWindowTitle("Fine-tune")
        saved = dict(window.settings.get("training", {}))
        self.recipe = QComboBox(self)
        self.recipe.setObjectName("trainRecipe")
        self.recipe.addItems(list(RECIPES))
        self.recipe.setCurrentText(saved.get("recipe", "cascade"))
        self.classes = QListWidget(self)
        self.classes.setObjectName("trainClasses")
        self.classes.setToolTip("The model learns every class of the project that its corrected items use.")
        self.classes.setMaximumHeight(90)
        self.variant = QComboBox(self)
        self.variant.setObjectName("trainVariant")
        self.variant.setEditable(True)
        self.variant.addItems(["t", "s", "b"])
        self.variant.setCurrentText(saved.get("variant", "t"))
        self.steps = QSpinBox(self)
        self.steps.setObjectName("trainSteps")
        self.steps.setRange(1, 1_000_000)
        self.steps.setValue(int(saved.get("steps", 500)))
        self.minutes = QSpinBox(self)
        self.minutes.setObjectName("trainMinutes")
        self.minutes.setRange(0, 100_000)
        self.minutes.setSpecialValueText("no limit")
        self.minutes.setValue(int(saved.get("minutes", 30)))
        self.device = QComboBox(self)
        self.device.setObjectName("trainDevice")
        self.device.setEditable(True)
        self.device.addItems(["auto", "cpu", "cuda", "cuda:0", "mps"])
        self.device.setCurrentText(saved.get("device", "auto"))
        self.extra = QLineEdit(saved.get("extra", ""), self)
        self.extra.setObjectName("trainExtra")
        self.extra.setPlaceholderText("extra trainer options, e.g. --batch-size 4")
        form = QFormLayout()
        form.addRow("Recipe", self.recipe)
        form.addRow("MCANet size", self.variant)
        form.addRow("Classes learnt", self.classes)
        form.addRow("Max steps", self.steps)
        form.addRow("Time budget (min)", self.minutes)
        form.addRow("Device", self.device)
        form.addRow("Options", self.extra)
        self.loss_plot = LinePlot("training loss", self)
        self.metric_plot = LinePlot("validation", self)
        self.state = QLabel("Not started.", self)
        self.state.setObjectName("trainState")
        self.log = QPlainTextEdit(self)
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(500)
        self.start_button = QPushButton("Start", self)
        self.start_button.setObjectName("trainStart")
        self.cancel_button = QPushButton("Cancel training", self)
        self.cancel_button.setObjectName("trainCancel")
        self.cancel_button.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        plots = QHBoxLayout()
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.metric_plot)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.state)
        layout.addLayout(plots, 1)
        layout.addWidget(self.log)
        self.start_button.clicked.connect(lambda: window.run_action(lambda _w: self.start()))
        self.cancel_button.clicked.connect(self.cancel)
        self.process: QProcess | None = None
        self._buffer = b""
        self._stderr = b""
        self.events: list[dict] = []
        self.checkpoint: str = ""
        self.checkpoint_event: dict = {}
        self._fill_classes()
        self.recipe.currentTextChanged.connect(lambda r: self.variant.setEnabled(r == "mcanet"))
        self.variant.setEnabled(self.recipe.currentText() == "mcanet")
        self.resize(760, 640)

    def _fill_classes(self) -> None:
        """List the project's classes (the trainer learns those its corrected items use)."""
        self.classes.clear()
        for c in self.window_.document.labels:
            self.classes.addItem(QListWidgetItem(c.name))

    def chosen_classes(self) -> list[str]:
        return [self.classes.item(i).text() for i in range(self.classes.count())]

    def build_arguments(self) -> list[str]:
        """The trainer's command line after the executable (``-m trainers fit ...``; in a bundle, ``trainers fit ...``)."""
        from engine.cli.train import trainer_command

        project = self.window_.document.project
        assert project is not None
        recipe = self.recipe.currentText()
        args = ["--project", str(project.folder), "--recipe", recipe,
                "--steps", str(self.steps.value()), "--device", self.device.currentText().strip() or "auto"]
        if recipe == "mcanet":
            args += ["--variant", self.variant.currentText().strip() or "t"]
        if self.minutes.value() > 0:
            args += ["--time-budget", str(self.minutes.value() * 60)]
        args += self.extra.text().split()
        return trainer_command("fit", *args)[1:]

    def remember(self) -> None:
        self.window_.settings.set("training", {
            "recipe": self.recipe.currentText(), "steps": self.steps.value(), "minutes": self.minutes.value(),
            "device": self.device.currentText(), "extra": self.extra.text(), "variant": self.variant.currentText()})
        self.window_.settings.save()

    # -- running -----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    def start(self) -> None:
        """Save the open item, then start the trainer process."""
        if self.running:
            return
        self.window_.document.save()
        self.remember()
        self.events.clear()
        self.checkpoint = ""
        self.checkpoint_event = {}
        self.loss_plot.clear()
        self.metric_plot.clear()
        self.log.clear()
        self._buffer = self._stderr = b""
        proc = QProcess(self)
        from engine.cli.train import trainer_command

        proc.setProgram(trainer_command()[0])  # this Python, or the bundle's own executable
        proc.setArguments(self.build_arguments())
        proc.setWorkingDirectory(str(Path(__file__).resolve().parents[1]))
        proc.readyReadStandardOutput.connect(self._read_stdout)
        proc.readyReadStandardError.connect(self._read_stderr)
        proc.finished.connect(self._on_finished)
        proc.errorOccurred.connect(self._on_process_error)
        self.process = proc
        self.log.appendPlainText(" ".join([trainer_command()[0], *self.build_arguments()]))
        proc.start()
        self.state.setText("Starting…")
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)

    def cancel(self) -> None:
        """Ask the trainer to stop (SIGTERM: it saves a resumable checkpoint), kill if it does not."""
        if self.running:
            assert self.process is not None
            self.state.setText("Cancelling… (the trainer saves a resumable checkpoint)")
            self.process.terminate()
            QTimer.singleShot(20000, self, self._kill_if_running)  # bound to the dialog's lifetime

    def _kill_if_running(self) -> None:
        """The trainer ignored SIGTERM for 20 s: kill it."""
        if self.running:
            assert self.process is not None
            self.process.kill()

    def stop(self) -> None:
        """Window closing: stop the trainer and wait for it."""
        if self.running:
            assert self.process is not None
            self.process.terminate()
            if not self.process.waitForFinished(10000):
                self.process.kill()
                self.process.waitForFinished(3000)

    def _read_stderr(self) -> None:
        assert self.process is not None
        self._stderr = (self._stderr + bytes(self.process.readAllStandardError()))[-20000:]

    def _read_stdout(self) -> None:
        assert self.process is not None
        self._buffer += bytes(self.process.readAllStandardOutput())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self.handle_line(line.decode("utf-8", "replace"))

    def handle_line(self, line: str) -> None:
        """One line of the trainer's output: an event, or plain text for the log."""
        line = line.strip()
        if not line:
            return
        try:
            event = json.loads(line)
        except ValueError:
            self.log.appendPlainText(line)
            return
        if not isinstance(event, dict) or "event" not in event:
            self.log.appendPlainText(line)
            return
        self.events.append(event)
        kind = event["event"]
        if kind == "start":
            self.state.setText(f"Training {event.get('recipe', '')} on {event.get('device', '?')} "
                               f"({event.get('train_items', '?')} items)")
        elif kind == "step":
            self.loss_plot.add_point("loss", event.get("step", 0), event.get("loss"))
            self.state.setText(f"Step {event.get('step')}/{event.get('max_steps')}  loss {event.get('loss', 0):.4g}")
        elif kind == "val":
            metrics = event.get("metrics", {}) or {}
            for name in ("mean_dice", "mean_iou"):
                if name in metrics:
                    self.metric_plot.add_point(name, event.get("step", 0), metrics[name])
        elif kind == "checkpoint":
            if event.get("kind") == "published" or (event.get("kind") == "best" and not self.checkpoint_event):
                self.checkpoint = str(event.get("path", ""))
                self.checkpoint_event = event if event.get("kind") == "published" else {}
        elif kind == "error":
            self.window_.notifier.error(f"Training failed: {event.get('message', '')} {event.get('suggestion', '')}")
        self.log.appendPlainText(line if kind != "step" else f"step {event.get('step')}: loss {event.get('loss')}")

    def _on_process_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.window_.notifier.error(f"The trainer could not start ({' '.join(self.build_arguments()[:3])})")
            self._reset_buttons()

    def _reset_buttons(self) -> None:
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._read_stdout()
        if self._buffer:
            self.handle_line(self._buffer.decode("utf-8", "replace"))
            self._buffer = b""
        self._reset_buttons()
        kinds = [e["event"] for e in self.events]
        ok = code == 0 and "done" in kinds
        if ok and self.checkpoint:
            recipe = self.recipe.currentText()
            self.window_.activate_checkpoint(RECIPES.get(recipe, "photo"), Path(self.checkpoint), recipe,
                                             self.checkpoint_event)
            self.state.setText(f"Done. Active checkpoint: {Path(self.checkpoint).name}")
        elif "stopped" in kinds or status == QProcess.ExitStatus.CrashExit and "error" not in kinds:
            self.state.setText("Stopped; a resumable checkpoint was kept." if "stopped" in kinds else "Stopped.")
        elif not ok and "error" not in kinds:
            tail = self._stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
            self.window_.notifier.error(f"Training ended with code {code}: {' | '.join(tail) or 'no output'}")
            self.state.setText("Failed.")
        else:
            self.state.setText("Failed." if not ok else "Done (no checkpoint published).")
        self.finished_training.emit(ok, self.checkpoint)
