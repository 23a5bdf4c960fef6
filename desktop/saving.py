"""Saving the shown item to the project store in a worker, so the GUI thread never waits on the disk.

The map saved is a copy taken at the moment of saving (a snapshot); editing goes on meanwhile.
When the write ends, "modified" is cleared only if the editor did not change since the snapshot,
and the recovery journal is discarded only then. One background save runs at a time; a save
asked for meanwhile runs after it. Any synchronous save (item switch, export, close) first waits
for the background one, so versions stay in order and nothing is written twice or lost.

The store supports this: :class:`engine.store.Project` opens SQLite with
``check_same_thread=False``, guards the connection with a lock and serialises read-then-write
methods such as ``save_annotation`` with its writer lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.jobs import CancelToken, Progress
from engine.store import Provenance

if TYPE_CHECKING:
    from desktop.document import Document
    from desktop.workers import Job, JobManager
    from engine.edit import LabelEditor
    from engine.store import Project

__all__ = ["PendingSave", "start_background_save", "finish_save", "wait_for_save"]

_logger = logging.getLogger(__name__)


@dataclass(eq=False)
class PendingSave:
    """One background save of the shown item.

    Attributes
    ----------
    snapshot
        The label map saved: a copy of the editor's ``(H, W)`` or ``(z, y, x)`` uint8/uint16 map.
    revision
        The editor's revision when the snapshot was taken.
    """

    project: Project
    item_id: int
    editor: LabelEditor
    revision: int
    snapshot: np.ndarray
    status: str
    parent: int | None
    on_saved: Callable[[], None] | None = None
    job: Job | None = None
    version: Any = None  # VersionRecord once written
    error: BaseException | None = None
    finished: bool = False
    again: bool = False  # another save was asked for while this one ran


def start_background_save(doc: Document, jobs: JobManager, *, status: str | None = None,
                          on_saved: Callable[[], None] | None = None) -> PendingSave | None:
    """Save the shown item's unsaved edits as a new version in a worker (see the module docstring).

    Returns the pending save, or ``None`` when there is nothing to save (or a status-only change,
    done at once: it is one small SQL update).
    """
    if doc.project is None or doc.record is None or doc.editor is None:
        return None
    pending = doc.pending_save
    if pending is not None and not pending.finished:
        pending.again = True
        return pending
    if not doc.modified:
        if status is not None:
            doc.save(status=status)
        return None
    editor, record, project = doc.editor, doc.record, doc.project
    ctx = PendingSave(project, record.id, editor, editor.revision, editor.data.copy(),
                      status or "corrected", doc.base_version, on_saved)

    def run(progress: Progress, cancel: CancelToken) -> object:
        progress(0, 1, f"writing {ctx.snapshot.nbytes / 1e6:.0f} MB")
        try:
            ctx.version = project.save_annotation(ctx.item_id, ctx.snapshot, provenance=Provenance.from_person(),
                                                  status=ctx.status,  # type: ignore[arg-type]
                                                  parent=ctx.parent)
        except BaseException as err:
            ctx.error = err
            raise
        progress(1, 1, "")
        return ctx.version

    doc.pending_save = ctx
    ctx.job = jobs.submit(f"Saving {record.name}", run, cancellable=False,
                          on_done=lambda _v: _done(doc, jobs, ctx), on_error=lambda _e: _failed(doc, ctx))
    return ctx


def finish_save(doc: Document, ctx: PendingSave) -> None:
    """Apply a finished background save to the document (idempotent; GUI thread)."""
    if ctx.finished:
        return
    ctx.finished = True
    if doc.pending_save is ctx:
        doc.pending_save = None
    if ctx.version is None:
        return
    unchanged = ctx.editor.revision == ctx.revision
    if unchanged and doc.journal is not None and doc.project is ctx.project:
        doc.journal.discard(ctx.item_id)
    if doc.project is ctx.project and doc.editor is ctx.editor:
        doc.base_version = ctx.version.version
        doc.record = ctx.project.item(ctx.item_id)
        if unchanged:
            doc.undo_stack.setClean()
        elif doc.journal is not None:
            doc.journal_stale()  # the journal's parent version changed: rewrite it at the next tick
    doc.itemsChanged.emit()
    doc.saved.emit(ctx.item_id)


def _done(doc: Document, jobs: JobManager, ctx: PendingSave) -> None:
    first = not ctx.finished
    finish_save(doc, ctx)
    if first and ctx.on_saved is not None:
        ctx.on_saved()
    if ctx.again and doc.modified:
        start_background_save(doc, jobs, on_saved=ctx.on_saved)


def _failed(doc: Document, ctx: PendingSave) -> None:
    """The edits stay unsaved (and in the journal); the job manager shows the error."""
    ctx.finished = True
    if doc.pending_save is ctx:
        doc.pending_save = None


def wait_for_save(doc: Document, timeout_s: float | None = None) -> bool:
    """Block until the background save (if any) has ended and apply it; whether none is left running.

    Used only where the caller needs the store up to date at once (close, item switch, export).
    """
    ctx = doc.pending_save
    if ctx is None or ctx.job is None:
        return True
    if not ctx.job.done.wait(timeout_s):
        return False
    if ctx.error is None:
        finish_save(doc, ctx)
    else:
        _failed(doc, ctx)
    return True
