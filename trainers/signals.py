"""SIGTERM/SIGINT during training: remember the signal; the loop saves a resumable checkpoint and
stops at the end of the current step. A second Ctrl-C interrupts at once."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

__all__ = ["StopSignals"]

_logger = logging.getLogger(__name__)


class StopSignals:
    """Installs handlers for SIGTERM and SIGINT (main thread only) until :meth:`restore`.

    Parameters
    ----------
    install
        ``False`` builds an inert object (nothing received, nothing installed).
    """

    def __init__(self, *, install: bool = True) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}
        if install and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum
        _logger.warning("signal %d: saving a resumable checkpoint and stopping", signum)

    def restore(self) -> None:
        """Put the previous handlers back (idempotent)."""
        for sig, old in self._previous.items():
            signal.signal(sig, old)
        self._previous = {}
