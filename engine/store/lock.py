"""The writer lock of a project: one process writes, any number read.

An OS file lock on ``project.lock`` in the project folder (``fcntl.flock`` on POSIX,
``msvcrt.locking`` on Windows). The OS drops it when the process dies, so a killed process
never leaves a stale lock behind. The holder writes its pid and host name into the file so the
second process can say who has the project open.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from pathlib import Path

from engine.errors import ProjectLockedError, ProjectWriteError
from engine.fsutil import describe_os_error

__all__ = ["ProjectLock", "LOCK_NAME"]

_logger = logging.getLogger(__name__)

LOCK_NAME = "project.lock"
_WIN_LOCK_OFFSET = 4096  # Windows: lock a byte past the owner text, so others can still read it


class ProjectLock:
    """An exclusive, non-blocking writer lock on a project folder.

    Parameters
    ----------
    folder
        The project folder; the lock file is ``folder / "project.lock"``.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`ProjectLockedError` naming the folder and the holder."""
        if self._fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise ProjectWriteError(f"cannot create the lock file: {describe_os_error(err)}", self.path) from err
        try:
            _lock(fd)
        except OSError:
            os.close(fd)
            holder = self._describe_holder()
            raise ProjectLockedError(
                f"the project is open for writing in another process{holder}; close it there first, "
                "or open this project read-only",
                self.folder,
            ) from None
        self._fd = fd
        owner = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode()
        try:
            os.ftruncate(fd, 0)
            _write_at_start(fd, owner)
        except OSError as err:  # the lock itself holds; the owner note is a courtesy
            _logger.warning("could not write the owner of %s: %s", self.path, err)

    def release(self) -> None:
        """Release the lock (idempotent). The lock file stays; it is harmless when unlocked."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            _unlock(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _describe_holder(self) -> str:
        try:
            info = json.loads(self.path.read_text(encoding="utf-8") or "{}")
            return f" (pid {int(info['pid'])} on {info['host']})"
        except (OSError, ValueError, KeyError, TypeError):
            return ""

    def __enter__(self) -> ProjectLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _write_at_start(fd: int, data: bytes) -> None:
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, data)


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(fd: int) -> None:
        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock(fd: int) -> None:
        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
