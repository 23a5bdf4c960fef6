"""The one training loop: resume exactness, signals, OOM, events, budgets, early stop."""

from __future__ import annotations

import io
import json
import os
import signal
from pathlib import Path

import pytest
import torch

from engine.jobs import CancelToken
from tests.trainers._toy import OOMNet, ToyTrainer
from trainers import checkpoint
from trainers.errors import OutOfMemoryError, TrainingConfigError
from trainers.events import EventWriter, parse_event
from trainers.loop import TrainConfig
from trainers.schedule import ScheduleConfig


def _config(run_dir: Path, **kw: object) -> TrainConfig:
    base = dict(max_steps=20, batch_size=4, accum_steps=2, lr=3e-3, weight_decay=0.01, clip_grad_norm=1.0,
                schedule=ScheduleConfig("poly", warmup_steps=3), val_every=5, log_every=5, seed=3,
                device="cpu", precision="fp32", run_dir=run_dir)
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def _quiet() -> EventWriter:
    return EventWriter(io.StringIO())


def test_resume_continues_exactly(tmp_path: Path) -> None:
    full = ToyTrainer(_config(tmp_path / "a"), events=_quiet()).fit()
    first = ToyTrainer(_config(tmp_path / "b", max_steps=10), events=_quiet()).fit()
    assert first.status == "done" and first.step == 10
    # the second half runs with the full schedule length, as the stopped run would have
    # (the resume checkpoint stores the scheduler factor; the schedule is recomputed from the step).
    stopped = ToyTrainer(_config(tmp_path / "c"), events=_quiet())
    stopped.after_step = lambda step: os.kill(os.getpid(), signal.SIGTERM) if step == 10 else None
    part = stopped.fit()
    assert part.status == "stopped" and part.reason == "signal" and part.step == 10
    assert (tmp_path / "c" / checkpoint.RESUME_NAME).is_file()
    rest = ToyTrainer(_config(tmp_path / "c", resume=True), events=_quiet()).fit()
    assert rest.status == "done" and rest.step == 20
    a = checkpoint.load(tmp_path / "a" / checkpoint.RESUME_NAME)["model"]
    c = checkpoint.load(tmp_path / "c" / checkpoint.RESUME_NAME)["model"]
    for key in a:
        torch.testing.assert_close(c[key], a[key], rtol=1e-6, atol=1e-7)
    assert rest.best_step == full.best_step
    assert rest.best_metrics["mean_dice"] == pytest.approx(full.best_metrics["mean_dice"], abs=1e-6)
    b = checkpoint.load(tmp_path / "b" / checkpoint.RESUME_NAME)["model"]
    assert any(not torch.allclose(b[k], a[k]) for k in a)  # the test can fail: 10 steps differ from 20


def test_signal_handlers_are_restored(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    ToyTrainer(_config(tmp_path, max_steps=2), events=_quiet()).fit()
    assert signal.getsignal(signal.SIGTERM) is before


def test_cancel_saves_resumable_checkpoint(tmp_path: Path) -> None:
    token = CancelToken()
    trainer = ToyTrainer(_config(tmp_path), events=_quiet(), cancel=token)
    trainer.after_step = lambda step: token.cancel() if step == 4 else None
    result = trainer.fit()
    assert (result.status, result.reason, result.step) == ("stopped", "cancelled", 4)
    assert checkpoint.load(tmp_path / checkpoint.RESUME_NAME)["step"] == 4
    assert trainer.events.last("stopped") is not None


def test_events_are_json_lines(tmp_path: Path) -> None:
    out = io.StringIO()
    ToyTrainer(_config(tmp_path, max_steps=10), events=EventWriter(out)).fit()
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert {"step", "val", "checkpoint"} <= set(kinds)
    step = next(e for e in events if e["event"] == "step")
    assert step["loss"] > 0 and step["lr"] > 0 and step["samples_per_s"] > 0
    val = next(e for e in events if e["event"] == "val")
    assert set(val["metrics"]["dice"]) <= {"square", "small"} and 0 <= val["metrics"]["mean_dice"] <= 1
    assert all(parse_event(line) is not None for line in out.getvalue().splitlines())
    assert parse_event("INFO not an event") is None


def test_out_of_memory_gives_clear_error(tmp_path: Path) -> None:
    trainer = ToyTrainer(_config(tmp_path), events=_quiet(), model_cls=OOMNet)
    with pytest.raises(OutOfMemoryError, match="smaller batch"):
        trainer.fit()
    error = trainer.events.last("error")
    assert error is not None and error["kind"] == "out_of_memory"
    assert "--batch-size 2" in error["suggestion"] and "crop" in error["suggestion"]


def test_time_budget_stops(tmp_path: Path) -> None:
    result = ToyTrainer(_config(tmp_path, max_steps=10**6, time_budget_s=0.5), events=_quiet()).fit()
    assert result.status == "done" and result.reason == "time" and 0 < result.step < 10**6


def test_early_stopping(tmp_path: Path) -> None:
    # lr 0: the metric never improves after the first validation, so patience 2 ends at step 3.
    result = ToyTrainer(_config(tmp_path, lr=0.0, max_steps=100, val_every=1, early_stop_patience=2),
                        events=_quiet()).fit()
    assert result.reason == "early_stop" and result.step == 3 and result.best_step == 1


def test_learning_improves_dice(tmp_path: Path) -> None:
    result = ToyTrainer(_config(tmp_path, max_steps=60, val_every=20, lr=1e-2), events=_quiet()).fit()
    assert result.best_metrics["mean_dice"] > 0.6


def test_resume_without_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TrainingConfigError, match="no checkpoint"):
        ToyTrainer(_config(tmp_path, resume=True), events=_quiet()).fit()


def test_damaged_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / checkpoint.RESUME_NAME).write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingConfigError, match="cannot be read"):
        ToyTrainer(_config(tmp_path, resume=True), events=_quiet()).fit()


def test_bf16_autocast_on_cpu_trains(tmp_path: Path) -> None:
    result = ToyTrainer(_config(tmp_path, max_steps=5, precision="bf16"), events=_quiet()).fit()
    assert result.status == "done"
    assert all(v.dtype == torch.float32 for v in result.best_state.values())  # type: ignore[union-attr]


def test_fp16_on_cpu_is_refused(tmp_path: Path) -> None:
    trainer = ToyTrainer(_config(tmp_path, precision="fp16"), events=_quiet())
    with pytest.raises(TrainingConfigError, match="fp16"):
        trainer.fit()
    assert trainer.events.last("error")["kind"] == "config"  # type: ignore[index]


@pytest.mark.gpu
def test_fp16_with_grad_scaler_on_cuda(tmp_path: Path) -> None:
    result = ToyTrainer(_config(tmp_path, max_steps=10, device="cuda", precision="fp16"), events=_quiet()).fit()
    assert result.status == "done" and result.best_metrics["mean_dice"] >= 0


def test_data_loader_workers_do_not_change_the_result(tmp_path: Path) -> None:
    a = ToyTrainer(_config(tmp_path / "a", max_steps=6), events=_quiet()).fit()
    b = ToyTrainer(_config(tmp_path / "b", max_steps=6, num_workers=2), events=_quiet()).fit()
    for key, value in a.best_state.items():  # type: ignore[union-attr]
        torch.testing.assert_close(b.best_state[key], value, rtol=0, atol=0)  # type: ignore[index]
