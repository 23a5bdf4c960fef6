"""Background jobs: model runs, volume reads, downloads; with progress, cancel and error relay.

A job is a plain function ``fn(progress, cancel) -> result`` run on a ``QThreadPool`` thread. Its
progress and result come back to the GUI thread through queued signals; its error goes to the
one :class:`~desktop.notify.Notifier`; :meth:`JobManager.shutdown` cancels and joins them all.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from engine.errors import Cancelled
from engine.jobs import CancelToken, Progress

__all__ = ["Job", "JobManager"]

_logger = logging.getLogger(__name__)

JobFn = Callable[[Progress, CancelToken], Any]


class _Signals(QObject):
    progress = Signal(int, int, int, str)  # job id, done, total, message
    finished = Signal(int, object)  # job id, result
    failed = Signal(int, object)  # job id, exception


class _Runnable(QRunnable):
    def __init__(self, job: Job, signals: _Signals) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self.job = job
        self.signals = signals

    def run(self) -> None:
        job = self.job

        def progress(done: int, total: int, message: str = "") -> None:
            self.signals.progress.emit(job.id, int(done), int(total), str(message))

        try:
            job.cancel.raise_if_cancelled()
            result = job.fn(progress, job.cancel)
        except BaseException as err:  # noqa: BLE001 - relayed to the notifier, never lost
            self.signals.failed.emit(job.id, err)
        else:
            self.signals.finished.emit(job.id, result)
        finally:
            job.done.set()


@dataclass
class Job:
    """One background job."""

    id: int
    title: str
    fn: JobFn
    on_done: Callable[[Any], None] | None = None
    on_error: Callable[[BaseException], None] | None = None
    cancel: CancelToken = field(default_factory=CancelToken)
    done: threading.Event = field(default_factory=threading.Event)
    progress: tuple[int, int, str] = (0, 0, "")
    cancellable: bool = True  # False: a store write that must finish (no cancel button, shutdown waits)


class JobManager(QObject):
    """Runs jobs on a thread pool and tells the job panel about them.

    Signals
    -------
    started(job), progressed(job), ended(job, ok)
    """

    started = Signal(object)
    progressed = Signal(object)
    ended = Signal(object, bool)

    def __init__(self, notify_error: Callable[[BaseException, str], None], parent: QObject | None = None,
                 *, threads: int = 2) -> None:
        super().__init__(parent)
        self._pools = {"io": QThreadPool(self), "model": QThreadPool(self)}
        self._pools["io"].setMaxThreadCount(threads)
        self._pools["model"].setMaxThreadCount(1)  # one model run at a time: memory, not speed, is the limit
        self._signals = _Signals()
        self._signals.progress.connect(self._on_progress)
        self._signals.finished.connect(self._on_finished)
        self._signals.failed.connect(self._on_failed)
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._notify_error = notify_error

    @property
    def jobs(self) -> list[Job]:
        """Jobs still running, oldest first."""
        return list(self._jobs.values())

    def submit(self, title: str, fn: JobFn, *, on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[BaseException], None] | None = None, lane: str = "io",
               cancellable: bool = True) -> Job:
        """Start ``fn(progress, cancel)`` in the background; ``on_done(result)`` runs on the GUI thread.

        ``lane`` "io" (reads, thumbnails, downloads; a few at once) or "model" (one at a time).
        A job that is not ``cancellable`` (a save) shows no cancel button and is never cancelled.
        """
        job = Job(next(self._ids), title, fn, on_done, on_error, cancellable=cancellable)
        self._jobs[job.id] = job
        self.started.emit(job)
        self._pools[lane].start(_Runnable(job, self._signals))
        return job

    def cancel(self, job_id: int) -> None:
        """Ask a job to stop at its next check."""
        job = self._jobs.get(job_id)
        if job is not None and job.cancellable:
            job.cancel.cancel()

    def _on_progress(self, job_id: int, done: int, total: int, message: str) -> None:
        job = self._jobs.get(job_id)
        if job is not None:
            job.progress = (done, total, message)
            self.progressed.emit(job)

    def _on_finished(self, job_id: int, result: object) -> None:
        job = self._jobs.pop(job_id, None)
        if job is None:
            return
        self.ended.emit(job, True)
        if job.on_done is not None and not job.cancel.cancelled:
            try:
                job.on_done(result)
            except Exception as err:  # noqa: BLE001 - a failing callback is an error to show
                self._notify_error(err, job.title)
        elif job.cancel.cancelled:
            self._notify_error(Cancelled(), job.title)

    def _on_failed(self, job_id: int, err: object) -> None:
        job = self._jobs.pop(job_id, None)
        if job is None:
            return
        self.ended.emit(job, False)
        assert isinstance(err, BaseException)
        if job.on_error is not None:
            job.on_error(err)
        self._notify_error(err, job.title)

    def wait(self, timeout_ms: int = 30000) -> bool:
        """Block until every job has ended (tests, shutdown); whether they all did."""
        return all(bool(pool.waitForDone(timeout_ms)) for pool in self._pools.values())

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Cancel every cancellable job and join the threads (``closeEvent``); saves run to the end."""
        for job in list(self._jobs.values()):
            if job.cancellable:
                job.cancel.cancel()
        ok = self.wait(timeout_ms)
        if not ok:
            _logger.warning("some background jobs did not stop within %d ms", timeout_ms)
        return ok
