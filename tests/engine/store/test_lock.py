"""One writer per project: a second writer gets a clear error, readers are welcome, kills free it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import ProjectLockedError, ProjectReadError
from engine.store import Project, ProjectLock

REPO = Path(__file__).resolve().parents[3]
HOLDER = """
import sys, time
sys.path.insert(0, {repo!r})
from engine.store import Project
project = Project.open({folder!r})
print("open", flush=True)
time.sleep(120)
"""


def _hold_in_subprocess(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER.format(repo=str(REPO), folder=str(folder))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if line.strip() != "open":
        proc.kill()
        pytest.fail(f"the holder did not open the project: {proc.communicate()[1]}")
    return proc


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_second_writer_process_is_refused_and_a_killed_one_frees_the_project(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    Project.create(folder).close()
    proc = _hold_in_subprocess(folder)
    try:
        with pytest.raises(ProjectLockedError) as info:
            Project.open(folder)
        message = str(info.value)
        assert str(folder) in message and f"pid {proc.pid}" in message and socket.gethostname() in message
        with Project.open(folder, readonly=True) as reader:  # readers may open beside the writer
            assert reader.items() == []
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    with Project.open(folder) as project:  # the killed holder left no stale lock
        assert project.items() == []


def test_a_second_writer_in_the_same_process_is_refused(tmp_path: Path) -> None:
    with Project.create(tmp_path / "p") as first:
        with pytest.raises(ProjectLockedError, match=f"pid {os.getpid()}"):
            Project.open(first.folder)
    with Project.open(tmp_path / "p"):
        pass


def test_the_lock_is_released_on_close_and_by_failed_opens(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    Project.create(folder).close()
    (folder / "project.sqlite").write_bytes(b"garbage" * 50)
    with pytest.raises(ProjectReadError):
        Project.open(folder)
    lock = ProjectLock(folder)
    lock.acquire()  # the failed open did not keep the lock
    assert lock.held
    lock.release()
    lock.release()  # idempotent
    with ProjectLock(folder) as again:
        assert again.held
        with pytest.raises(ProjectLockedError):
            ProjectLock(folder).acquire()
    assert not again.held
