"""Kill a writing process with SIGKILL at random moments; every reopen shows the last commit.

The writer (``_crash_writer.py``) saves annotations with changing masks, changes statuses and
adds, renames, recolours and merges classes, journalling an ``intent`` (the predicted state)
before each operation and a ``done`` line after it returns. After each kill the project must
open for writing, equal the last ``done`` state or the one ``intent`` after it, reference only
complete mask files whose content matches the committed checksum, and hold no orphan files.
"""

from __future__ import annotations

import importlib.util
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.items import LabelSet, Photo, Volume
from engine.store import Project

WRITER = Path(__file__).with_name("_crash_writer.py")
KILLS = 24

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def _load_writer() -> Any:
    spec = importlib.util.spec_from_file_location("_crash_writer", WRITER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read_journal(path: Path) -> list[dict[str, Any]]:
    """Complete records; a line cut by the kill is dropped from the file too."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    complete = raw[: raw.rfind(b"\n") + 1]
    if len(complete) != len(raw):
        path.write_bytes(complete)
    return [json.loads(line) for line in complete.decode().splitlines()]


def _wait_for_commit(proc: subprocess.Popen, journal: Path, done_before: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the writer exited with {proc.returncode}: {err.decode()[-2000:]}")
        if journal.exists() and journal.read_bytes().count(b'"kind": "done"') > done_before:
            return
        time.sleep(0.01)
    pytest.fail("the writer committed nothing within 60 s")


def test_sigkill_at_random_moments_keeps_the_last_commit(tmp_path: Path) -> None:
    writer = _load_writer()
    folder = tmp_path / "project"
    with Project.create(folder, name="crash", labels=LabelSet.from_text("a, b, c")) as project:
        for k in range(2):
            project.add_photo(Photo(np.zeros((96, 128, 3), np.uint8), source=tmp_path / f"photo{k}.png"))
        project.add_volume(Volume(np.zeros((6, 40, 48), np.int16), spacing=(0.7, 0.7, 2.5),
                                  source=tmp_path / "volume.nii.gz"))
    journal = tmp_path / "journal.jsonl"
    rng = random.Random(20261127)
    landed_mid_operation = killed_inside_operation = strays = 0
    for kill in range(KILLS):
        done_before = sum(r["kind"] == "done" for r in _read_journal(journal))
        proc = subprocess.Popen([sys.executable, str(WRITER), str(folder), str(journal), "7"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _wait_for_commit(proc, journal, done_before)
            time.sleep(rng.uniform(0.0, 0.3))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
        records = _read_journal(journal)
        assert not [r for r in records if r["kind"] == "mismatch"], "the store disagreed with the prediction"
        last_done = max(i for i, r in enumerate(records) if r["kind"] == "done")
        pending = [r for r in records[last_done + 1:] if r["kind"] == "intent"]
        assert len(pending) <= 1
        killed_inside_operation += bool(pending)

        with Project.open(folder, readonly=True) as reader:  # a reader beside a crashed writer's files
            kept = {v.mask_file.name for i in reader.items() for v in reader.versions(i.id)}
            strays += len({p.name for p in reader.masks_dir.iterdir()} - kept)

        with Project.open(folder) as project:  # must open, for writing, every time
            actual = writer.snapshot(project)
            assert project.verify() == [], f"kill {kill}: damaged mask files"
            referenced = {v.mask_file.name for i in project.items() for v in project.versions(i.id)}
            on_disk = {p.name for p in project.masks_dir.iterdir()}
            assert on_disk == referenced, f"kill {kill}: orphans {on_disk - referenced} left in masks/"
            for item in project.items():  # the latest version loads through the public API too
                if project.latest_version(item.id) is not None:
                    project.load_annotation(item.id)

        if writer.fingerprint(actual) != records[last_done]["fp"]:
            assert pending, f"kill {kill}: the project lost the last reported commit"
            assert writer.matches(pending[0]["state"], actual), f"kill {kill}: state is neither before nor after"
            landed_mid_operation += 1
    steps = sum(r["kind"] == "done" for r in _read_journal(journal))
    assert steps >= KILLS
    print(f"{KILLS} kills, {steps} committed operations; {killed_inside_operation} kills inside an operation, "
          f"{landed_mid_operation} of them after its commit; {strays} uncommitted files cleaned up")
    assert killed_inside_operation > 0
