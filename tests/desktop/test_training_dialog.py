"""The training dialog: command line, remembered settings, event plotting, process handling and cancel.

The process plumbing is exercised with a stand-in script that prints the trainer's JSON events
(written by ``trainers.events.EventWriter``); the real trainer is started in
``test_training_flow.py``.
"""

from __future__ import annotations

import io
import sys
import textwrap
from pathlib import Path

from tests.desktop.conftest import wait_for

from trainers.events import EventWriter


def _dialog(window, tmp_path: Path):  # noqa: ANN202
    from desktop.training_dialog import TrainingDialog

    window.open_project(tmp_path / "proj", create=True)
    window.document.add_classes("cat, dog")
    window.training_dialog()
    dialog = window.training
    assert isinstance(dialog, TrainingDialog)
    return dialog


def test_command_line_and_remembered_settings(qtbot, window, tmp_path: Path) -> None:
    d = _dialog(window, tmp_path)
    d.recipe.setCurrentText("cascade")
    d.steps.setValue(7)
    d.minutes.setValue(2)
    d.device.setCurrentText("cpu")
    assert d.chosen_classes() == ["cat", "dog"]
    args = d.build_arguments()
    assert args[:3] == ["-m", "trainers", "fit"]
    assert args[args.index("--project") + 1] == str(window.document.project.folder)
    assert args[args.index("--recipe") + 1] == "cascade" and args[args.index("--steps") + 1] == "7"
    assert args[args.index("--time-budget") + 1] == "120" and "--variant" not in args
    d.recipe.setCurrentText("mcanet")
    d.variant.setCurrentText("s")
    args = d.build_arguments()
    assert args[args.index("--variant") + 1] == "s"
    from trainers.cli import build_parser

    parsed = build_parser().parse_args(args[2:])  # the trainer accepts exactly what the dialog builds
    assert parsed.steps == 7 and parsed.variant == "s" and parsed.time_budget == 120.0
    d.remember()
    from desktop.training_dialog import TrainingDialog

    again = TrainingDialog(window)
    assert again.steps.value() == 7 and again.device.currentText() == "cpu" and again.variant.currentText() == "s"
    assert again.recipe.currentText() == "mcanet"


def test_events_are_plotted_and_the_checkpoint_becomes_active(qtbot, window, tmp_path: Path) -> None:
    d = _dialog(window, tmp_path)
    stream = io.StringIO()
    ev = EventWriter(stream)
    ev.emit("start", recipe="cascade", device="cpu", train_items=3)
    for step in range(1, 4):
        ev.emit("step", step=step, max_steps=3, loss=1.0 / step, lr=0.1)
    ev.emit("val", step=3, metrics={"mean_dice": 0.5, "mean_iou": 0.4}, best=True)
    ckpt = tmp_path / "head.safetensors"
    ckpt.write_bytes(b"weights")
    ev.emit("checkpoint", step=3, path=str(ckpt), kind="best")
    ev.emit("checkpoint", step=3, path=str(ckpt), kind="published", model="tiny-clip", metrics={"mean_dice": 0.5})
    ev.emit("done", step=3, reason="steps", best_metrics={"mean_dice": 0.5})
    script = f"import sys\nsys.stdout.write({stream.getvalue()!r})\nprint('a plain log line')\n"
    d.build_arguments = lambda: ["-c", script]  # type: ignore[method-assign]
    with qtbot.waitSignal(d.finished_training, timeout=60000) as blocker:
        d.start_button.click()
    assert blocker.args[0] is True and blocker.args[1] == str(ckpt)
    assert [p[1] for p in d.loss_plot.series["loss"]] == [1.0, 0.5, 1 / 3]
    assert d.metric_plot.series["mean_dice"] == [(3.0, 0.5)]
    assert window.model_config("photo")["checkpoint"] == str(ckpt)
    assert window.model_config("photo")["model"] == "tiny-clip"
    active = window.document.project.active_checkpoint("tiny-clip")  # recorded by the lock holder
    assert active is not None and Path(active.path).resolve() == ckpt.resolve()
    assert active.metrics == {"mean_dice": 0.5}
    assert "a plain log line" in d.log.toPlainText()
    assert d.start_button.isEnabled() and not d.cancel_button.isEnabled()


def test_trainer_error_and_crash_are_messages(qtbot, window, tmp_path: Path) -> None:
    d = _dialog(window, tmp_path)
    stream = io.StringIO()
    EventWriter(stream).emit("error", message="CUDA out of memory", kind="out_of_memory",
                             suggestion="lower the batch size", step=2)
    script = f"import sys\nsys.stdout.write({stream.getvalue()!r})\nsys.exit(3)\n"
    d.build_arguments = lambda: ["-c", script]  # type: ignore[method-assign]
    with qtbot.waitSignal(d.finished_training, timeout=60000):
        d.start()
    assert "out of memory" in window.notifier.last_error and "batch size" in window.notifier.last_error
    d.build_arguments = lambda: ["-c", "import sys; sys.stderr.write('Traceback...\\nValueError: bad recipe'); sys.exit(1)"]  # type: ignore[method-assign]
    with qtbot.waitSignal(d.finished_training, timeout=60000):
        d.start()
    assert "code 1" in window.notifier.last_error and "bad recipe" in window.notifier.last_error


def test_cancel_stops_the_process(qtbot, window, tmp_path: Path) -> None:
    d = _dialog(window, tmp_path)
    script = textwrap.dedent("""
        import json, signal, sys, time
        def stop(*_):
            print(json.dumps({"event": "stopped", "step": 1, "reason": "signal", "time": 0}), flush=True)
            sys.exit(0)
        signal.signal(signal.SIGTERM, stop)
        print(json.dumps({"event": "start", "recipe": "x", "device": "cpu", "time": 0}), flush=True)
        time.sleep(60)
    """)
    d.build_arguments = lambda: ["-c", script]  # type: ignore[method-assign]
    d.start()
    wait_for(qtbot, lambda: d.events)
    with qtbot.waitSignal(d.finished_training, timeout=30000) as blocker:
        d.cancel_button.click()
    assert blocker.args[0] is False and "resumable" in d.state.text()
    assert not d.running
    assert sys.executable  # the trainer runs with the app's own interpreter
