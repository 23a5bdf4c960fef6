"""Training runs and checkpoints of a project: settings, metrics and lineage, rollback by activation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.errors import ProjectError
from engine.store._db import Database, from_json, now, to_json
from engine.store.records import CheckpointRecord, TrainingRunRecord

__all__ = ["TrainingMixin", "RUN_STATUSES"]

RUN_STATUSES = ("running", "finished", "failed", "cancelled")
_RUN_COLS = "id, recipe, settings, status, started, ended, metrics"
_CKPT_COLS = "id, run_id, model, path, metrics, parent_id, active, created"


class TrainingMixin:
    """The training half of :class:`engine.store.project.Project`."""

    folder: Path
    _db: Database

    # ------------------------------------------------------------------ runs

    def _run_from_row(self, row: Sequence[Any]) -> TrainingRunRecord:
        rid, recipe, settings, status, started, ended, metrics = row
        return TrainingRunRecord(int(rid), recipe, from_json(settings) or {}, status, started, ended,
                                 from_json(metrics) or {})

    def training_runs(self) -> list[TrainingRunRecord]:
        """Every training run, oldest first."""
        return [self._run_from_row(r) for r in self._db.query(f"SELECT {_RUN_COLS} FROM training_runs ORDER BY id")]

    def training_run(self, run_id: int) -> TrainingRunRecord:
        """One training run; :class:`ProjectError` when there is none with this id."""
        rows = self._db.query(f"SELECT {_RUN_COLS} FROM training_runs WHERE id = ?", (int(run_id),))
        if not rows:
            raise ProjectError(f"no training run with id {run_id}", self.folder)
        return self._run_from_row(rows[0])

    def add_training_run(self, recipe: str, settings: dict[str, Any], *, status: str = "running") -> TrainingRunRecord:
        """Record a training run that starts now. ``settings`` must be JSON-able.

        A run recorded with a final status (``finished``, ``failed``, ``cancelled``) also gets
        ``ended`` set to now.
        """
        _check_run_status(status)
        started = now()
        ended = None if status == "running" else started
        with self._db.transaction("record the training run") as con:
            cur = con.execute("INSERT INTO training_runs (recipe, settings, status, started, ended) "
                              "VALUES (?, ?, ?, ?, ?)", (recipe, to_json(settings), status, started, ended))
            run_id = int(cur.lastrowid or 0)
        return self.training_run(run_id)

    def update_training_run(self, run_id: int, *, status: str | None = None,
                            metrics: dict[str, Any] | None = None) -> TrainingRunRecord:
        """Set a run's status (a final status also sets ``ended``) and/or replace its metrics."""
        run = self.training_run(run_id)
        if status is not None:
            _check_run_status(status)
        ended = now() if status is not None and status != "running" else run.ended
        with self._db.transaction("update the training run") as con:
            con.execute("UPDATE training_runs SET status = ?, ended = ?, metrics = ? WHERE id = ?",
                        (status or run.status, ended, to_json(run.metrics if metrics is None else metrics),
                         int(run_id)))
        return self.training_run(run_id)

    # ------------------------------------------------------------------ checkpoints

    def _ckpt_from_row(self, row: Sequence[Any]) -> CheckpointRecord:
        cid, run_id, model, path, metrics, parent_id, active, created = row
        stored = Path(path)
        return CheckpointRecord(int(cid), None if run_id is None else int(run_id), model,
                                stored if stored.is_absolute() else self.folder / stored, from_json(metrics) or {},
                                None if parent_id is None else int(parent_id), bool(active), created)

    def checkpoints(self, model: str | None = None) -> list[CheckpointRecord]:
        """Checkpoints, oldest first, optionally only those of one model."""
        if model is None:
            rows = self._db.query(f"SELECT {_CKPT_COLS} FROM checkpoints ORDER BY id")
        else:
            rows = self._db.query(f"SELECT {_CKPT_COLS} FROM checkpoints WHERE model = ? ORDER BY id", (model,))
        return [self._ckpt_from_row(r) for r in rows]

    def checkpoint(self, checkpoint_id: int) -> CheckpointRecord:
        """One checkpoint; :class:`ProjectError` when there is none with this id."""
        rows = self._db.query(f"SELECT {_CKPT_COLS} FROM checkpoints WHERE id = ?", (int(checkpoint_id),))
        if not rows:
            raise ProjectError(f"no checkpoint with id {checkpoint_id}", self.folder)
        return self._ckpt_from_row(rows[0])

    def active_checkpoint(self, model: str) -> CheckpointRecord | None:
        """The checkpoint predictions of ``model`` use now, or ``None`` (the catalog weights)."""
        rows = self._db.query(f"SELECT {_CKPT_COLS} FROM checkpoints WHERE model = ? AND active = 1", (model,))
        return self._ckpt_from_row(rows[0]) if rows else None

    def add_checkpoint(self, path: str | Path, *, model: str, run_id: int | None = None,
                       metrics: dict[str, Any] | None = None, parent_id: int | None = None,
                       active: bool = False) -> CheckpointRecord:
        """Record a weights file (stored relative to the project when inside it).

        Parameters
        ----------
        model
            The catalog name the checkpoint belongs to (at most one active checkpoint per model).
        parent_id
            The checkpoint it was fine-tuned from (lineage), or ``None`` for catalog weights.
        active
            Make it the one predictions use (the previous active one of ``model`` is deactivated).
        """
        absolute = Path(path).expanduser().resolve()
        try:
            stored = absolute.relative_to(self.folder).as_posix()
        except ValueError:
            stored = str(absolute)
        if run_id is not None:
            self.training_run(run_id)
        if parent_id is not None:
            self.checkpoint(parent_id)
        with self._db.transaction("record the checkpoint") as con:
            if active:
                con.execute("UPDATE checkpoints SET active = 0 WHERE model = ?", (model,))
            cur = con.execute(
                "INSERT INTO checkpoints (run_id, model, path, metrics, parent_id, active, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, model, stored, to_json(metrics or {}), parent_id, int(active), now()))
            ckpt_id = int(cur.lastrowid or 0)
        return self.checkpoint(ckpt_id)

    def set_active_checkpoint(self, checkpoint_id: int | None, *, model: str | None = None) -> None:
        """Make one checkpoint the active one of its model (rolls back or forward).

        ``checkpoint_id=None`` with ``model`` deactivates every checkpoint of that model, so
        predictions go back to the catalog weights.
        """
        if checkpoint_id is None:
            if model is None:
                raise ProjectError("say which model goes back to its catalog weights")
            with self._db.transaction("deactivate the checkpoints") as con:
                con.execute("UPDATE checkpoints SET active = 0 WHERE model = ?", (model,))
            return
        ckpt = self.checkpoint(checkpoint_id)
        with self._db.transaction("activate the checkpoint") as con:
            con.execute("UPDATE checkpoints SET active = 0 WHERE model = ?", (ckpt.model,))
            con.execute("UPDATE checkpoints SET active = 1 WHERE id = ?", (ckpt.id,))


def _check_run_status(status: str) -> None:
    if status not in RUN_STATUSES:
        raise ProjectError(f"unknown training status {status!r}; use one of {', '.join(RUN_STATUSES)}")
