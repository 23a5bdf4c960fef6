"""``python -m trainers fit``: JSON-line events, SIGTERM -> resumable stop, --resume, errors, torchrun."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.store import Project
from tests.trainers._synth import volume_project
from trainers import checkpoint
from trainers.cli import build_parser, make_trainer
from trainers.events import EventWriter, parse_event

REPO = Path(__file__).resolve().parents[2]
FAST = ["--recipe", "mcanet", "--variant", "test", "--crop", "32", "--batch-size", "2", "--device", "cpu",
        "--precision", "fp32", "--threads", "1", "--log-every", "1"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _run(args: list[str], timeout: float = 300) -> tuple[int, list[dict], str]:
    proc = subprocess.run([sys.executable, "-m", "trainers", "fit", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=_env())
    events = [e for e in (parse_event(line) for line in proc.stdout.splitlines()) if e is not None]
    return proc.returncode, events, proc.stderr


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return volume_project(tmp_path_factory.mktemp("cli") / "p", [1, 2, 3], depth=6, size=32)


def test_defaults_follow_the_recipes(project: Path) -> None:
    args = build_parser().parse_args(["fit", "--project", str(project), "--recipe", "mcanet", "--steps", "100",
                                      "--init", "imagenet", "--weights", "x.pth"])
    trainer = make_trainer(args, EventWriter())
    cfg = trainer.config
    assert (cfg.lr, cfg.weight_decay, cfg.schedule.kind, cfg.batch_size) == (6e-5, 0.01, "poly", 6)
    assert cfg.schedule.warmup_steps == 10 and cfg.val_every == 10
    assert cfg.run_dir is not None and cfg.run_dir.parent == project / "training" / "runs"
    scratch = make_trainer(build_parser().parse_args(["fit", "--project", str(project), "--recipe", "mcanet"]),
                           EventWriter())
    assert scratch.config.lr == 6e-4 and scratch.config.schedule.warmup_steps == 200


def test_fit_publishes_and_prints_events(project: Path, tmp_path: Path) -> None:
    code, events, err = _run(["--project", str(project), "--steps", "3", "--run-dir", str(tmp_path / "r"), *FAST])
    assert code == 0, err
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and "step" in kinds and "val" in kinds
    assert events[-1]["published"].endswith(".safetensors")
    pub = next(e for e in events if e["event"] == "checkpoint" and e["kind"] == "published")
    assert pub["registered"] and pub["model"] == "mcanet.test" and Path(pub["description"]).is_file()
    with Project.open(project, readonly=True) as p:
        assert p.active_checkpoint("mcanet.test") is not None


def test_sigterm_saves_and_resume_finishes(project: Path, tmp_path: Path) -> None:
    run = tmp_path / "r"
    cmd = [sys.executable, "-m", "trainers", "fit", "--project", str(project), "--steps", "500", "--run-dir", str(run),
           "--no-publish", "--init", "scratch", *FAST]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=_env())
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        event = parse_event(line)
        if event is not None:
            seen.append(event)
            if event["event"] == "step" and event["step"] >= 2:
                proc.send_signal(signal.SIGTERM)
                break
    out, err = proc.communicate(timeout=120)
    seen += [e for e in (parse_event(line) for line in out.splitlines()) if e is not None]
    assert proc.returncode == 0, err
    stopped = next(e for e in seen if e["event"] == "stopped")
    assert stopped["reason"] == "signal"
    step = checkpoint.load(run / checkpoint.RESUME_NAME)["step"]
    assert step == stopped["step"] >= 2
    code, events, err = _run(["--project", str(project), "--steps", str(step + 2), "--run-dir", str(run),
                              "--no-publish", "--init", "scratch", "--resume", *FAST])
    assert code == 0, err
    assert events[0]["resumed_from_step"] == step and events[-1]["step"] == step + 2


def test_nothing_to_train_is_an_error_event(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    Project.create(folder).close()
    code, events, err = _run(["--project", str(folder), *FAST])
    assert code == 2
    assert events[-1]["event"] == "error" and "corrected or approved" in events[-1]["message"]


def test_batch_of_one_per_process_is_refused_with_advice(project: Path) -> None:
    code, events, _ = _run(["--project", str(project), *FAST, "--batch-size", "1"])
    assert code == 2 and "--batch-size 2" in events[-1]["message"]


def test_missing_project_is_an_error_event(tmp_path: Path) -> None:
    code, events, _ = _run(["--project", str(tmp_path / "nope"), *FAST])
    assert code == 2 and events[-1]["event"] == "error" and "nope" in events[-1]["message"]


def test_torchrun_two_cpu_processes(project: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "trainers", "fit", "--project", str(project), "--steps", "2", "--run-dir", str(tmp_path / "r"),
           "--no-publish", "--init", "scratch", *FAST, "--batch-size", "4"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=REPO, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [e for e in (parse_event(line) for line in proc.stdout.splitlines()) if e is not None]
    assert [e["event"] for e in events].count("start") == 1  # only rank 0 reports
    assert events[0]["world_size"] == 2 and events[-1]["event"] == "done"
