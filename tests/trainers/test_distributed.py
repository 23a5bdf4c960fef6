"""DistributedDataParallel on two CPU processes (gloo) equals one process with the same global batch."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp

from tests.trainers._toy import ToyTrainer, ddp_worker
from trainers import checkpoint
from trainers.events import EventWriter
from trainers.loop import TrainConfig
from trainers.schedule import ScheduleConfig


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_processes_equal_one(tmp_path: Path) -> None:
    def config(run_dir: Path) -> TrainConfig:
        return TrainConfig(max_steps=8, batch_size=4, accum_steps=2, lr=3e-3, clip_grad_norm=1.0,
                           schedule=ScheduleConfig("cosine", warmup_steps=2), val_every=4, log_every=4, seed=5,
                           device="cpu", precision="fp32", run_dir=run_dir)

    single = ToyTrainer(config(tmp_path / "one"), events=EventWriter(io.StringIO())).fit()
    mp.spawn(ddp_worker, args=(2, _free_port(), config(tmp_path / "two")), nprocs=2, join=True)
    one = checkpoint.load(tmp_path / "one" / checkpoint.RESUME_NAME)
    two = checkpoint.load(tmp_path / "two" / checkpoint.RESUME_NAME)
    assert two["step"] == one["step"] == 8
    assert len(two["rng"]) == 2  # both ranks' random states are kept for an exact resume
    for key, value in one["model"].items():
        torch.testing.assert_close(two["model"][key], value, rtol=1e-4, atol=1e-5)
    assert abs(two["best"]["value"] - single.best_metrics["mean_dice"]) < 1e-3
    torch.manual_seed(5)  # the run seed: the loop builds the model right after seeding
    start = ToyTrainer(config(tmp_path)).build_model().state_dict()
    moved = sum(float((value - start[key]).abs().sum()) for key, value in one["model"].items())
    assert moved > 0  # training changed the weights, so equality is not trivial


def test_two_processes_stop_and_resume_exactly(tmp_path: Path) -> None:
    def config(run_dir: Path, resume: bool = False) -> TrainConfig:
        return TrainConfig(max_steps=8, batch_size=4, lr=3e-3, schedule=ScheduleConfig("poly", warmup_steps=2),
                           val_every=3, log_every=2, seed=2, device="cpu", precision="fp32", run_dir=run_dir,
                           resume=resume)

    mp.spawn(ddp_worker, args=(2, _free_port(), config(tmp_path / "full")), nprocs=2, join=True)
    mp.spawn(ddp_worker, args=(2, _free_port(), config(tmp_path / "cut"), 4), nprocs=2, join=True)
    assert checkpoint.load(tmp_path / "cut" / checkpoint.RESUME_NAME)["step"] == 4
    mp.spawn(ddp_worker, args=(2, _free_port(), config(tmp_path / "cut", resume=True)), nprocs=2, join=True)
    full = checkpoint.load(tmp_path / "full" / checkpoint.RESUME_NAME)
    cut = checkpoint.load(tmp_path / "cut" / checkpoint.RESUME_NAME)
    assert cut["step"] == full["step"] == 8 and cut["sampler"] == full["sampler"]
    for key, value in full["model"].items():
        torch.testing.assert_close(cut["model"][key], value, rtol=1e-6, atol=1e-7)
