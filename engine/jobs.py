"""Progress reporting and cancellation for long jobs (engine side, Qt-free).

Every long engine function takes an optional ``progress`` callable and an optional
``cancel`` token. The CLI wires them to a rich progress bar, the desktop to a progress bar with
a cancel button running in a worker thread.
"""

from __future__ import annotations

import threading
from typing import Protocol

from engine.errors import Cancelled

__all__ = ["Progress", "CancelToken", "report", "check_cancelled"]


class Progress(Protocol):
    """Called as ``progress(done, total, message)``; ``total`` may be 0 when unknown."""

    def __call__(self, done: int, total: int, message: str, /) -> None: ...


class CancelToken:
    """A thread-safe flag a caller sets to ask a running job to stop at its next check."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the job to stop."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`~engine.errors.Cancelled` if :meth:`cancel` was called."""
        if self._event.is_set():
            raise Cancelled()


def report(progress: Progress | None, done: int, total: int, message: str = "") -> None:
    """Call ``progress`` if one was given."""
    if progress is not None:
        progress(done, total, message)


def check_cancelled(cancel: CancelToken | None) -> None:
    """Raise :class:`~engine.errors.Cancelled` if ``cancel`` was set."""
    if cancel is not None:
        cancel.raise_if_cancelled()
