"""The project side of training: reading corrected items and publishing checkpoints.

Reading opens the project read-only, so training runs beside the desktop, which holds the
writer lock. Publishing writes the weights and a JSON description (metrics, the items and
settings trained on, the parent checkpoint) atomically under ``<project>/checkpoints/``, then
records the checkpoint in the project's ``checkpoints`` table when the writer lock is free.
When the desktop holds the lock, the ``checkpoint`` event (kind ``"published"``) carries every
field :meth:`engine.store.Project.add_checkpoint` needs, so the lock holder records it; the
description file beside the weights stays the durable record either way. Earlier checkpoints
are never deleted (rollback is :meth:`~engine.store.Project.set_active_checkpoint`).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ProjectLockedError
from engine.fsutil import atomic_path, atomic_write_bytes
from engine.items import LabelSet, Photo, Volume
from engine.store import Project
from trainers.data import TRAINABLE, TrainingItem
from trainers.errors import TrainingDataError, TrainingError

__all__ = ["ProjectSource", "Published", "publish_checkpoint", "publish_result", "require_items", "CHECKPOINTS_DIR"]

_logger = logging.getLogger(__name__)

CHECKPOINTS_DIR = "checkpoints"


class ProjectSource:
    """A project opened read-only as an :class:`~trainers.data.AnnotationSource`.

    Parameters
    ----------
    folder
        The project folder.
    kind
        Only items of this kind (``"photo"`` or ``"volume"``), or ``None`` for both.
    """

    def __init__(self, folder: str | Path, *, kind: str | None = None) -> None:
        self.folder = Path(folder)
        self.kind = kind
        self.project = Project.open(self.folder, readonly=True)

    def close(self) -> None:
        """Close the project."""
        self.project.close()

    def __enter__(self) -> ProjectSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def labels(self) -> LabelSet:
        """The project's current classes."""
        return self.project.labels()

    def trainable_items(self) -> list[TrainingItem]:
        """Corrected or approved items (of :attr:`kind`) that have a saved annotation."""
        out = []
        for rec in self.project.items(status=TRAINABLE):
            if self.kind is not None and rec.kind != self.kind:
                continue
            version = self.project.latest_version(rec.id)
            if version is None:
                _logger.warning("item %d (%s) is %s but has no saved annotation; skipped", rec.id, rec.name, rec.status)
                continue
            key = f"{rec.id}:{rec.series_uid or rec.source.name}"
            out.append(TrainingItem(key, rec.id, rec.kind, rec.name, version.version))
        return out

    def all_items(self) -> list[TrainingItem]:
        """Every item (of :attr:`kind`), whatever its status (for recipes that need no labels);
        ``version`` is the latest annotation's, or 0."""
        out = []
        for rec in self.project.items():
            if self.kind is None or rec.kind == self.kind:
                latest = self.project.latest_version(rec.id)
                key = f"{rec.id}:{rec.series_uid or rec.source.name}"
                out.append(TrainingItem(key, rec.id, rec.kind, rec.name, latest.version if latest else 0))
        return out

    def read_photo(self, item: TrainingItem) -> Photo:
        """The photo's pixels (read from its source file)."""
        from engine.io.photos import read_photo

        return read_photo(self.project.item(item.item_id).source)

    def read_volume(self, item: TrainingItem) -> Volume:
        """The volume (read from its source file or DICOM folder)."""
        from engine.io.volumes import read_volume

        rec = self.project.item(item.item_id)
        return read_volume(rec.source, series=rec.series_key or None)

    def read_labels(self, item: TrainingItem) -> np.ndarray:
        """The class-id label map of the annotation version ``item.version``."""
        return self.project.load_annotation(item.item_id, item.version).data

    def active_checkpoint(self, model: str) -> tuple[int, Path] | None:
        """``(id, path)`` of the checkpoint predictions of ``model`` use now, or ``None``."""
        rec = self.project.active_checkpoint(model)
        return (rec.id, rec.path) if rec is not None else None


@dataclass(frozen=True)
class Published:
    """A published checkpoint: its weights file, its description file, and its id in the project's
    ``checkpoints`` table (``None`` when the writer lock was held elsewhere)."""

    path: Path
    description: Path
    checkpoint_id: int | None
    record: dict[str, Any]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "model"


def publish_checkpoint(
    folder: str | Path,
    *,
    model: str,
    recipe: str,
    write_weights: Callable[[Path], None],
    suffix: str,
    metrics: dict[str, Any],
    settings: dict[str, Any],
    items: list[TrainingItem],
    parent_id: int | None,
    extra: dict[str, Any] | None = None,
    activate: bool = True,
    lock_wait_s: float = 2.0,
) -> Published:
    """Write a checkpoint into the project and record it.

    Parameters
    ----------
    folder
        The project folder.
    model
        The catalog name the weights are for (``checkpoints.model``).
    write_weights
        Writes the weights file to the path it is given (a temporary name that keeps ``suffix``).
    suffix
        File suffix of the weights (``".safetensors"``).
    metrics, settings
        Validation metrics and the training settings (JSON-able).
    items
        The items it was trained on (ids and annotation versions are recorded).
    parent_id
        The checkpoint it was fine-tuned from, or ``None``.
    extra
        More JSON-able metadata (class map, input channels...).
    activate
        Make it the checkpoint predictions use (earlier ones stay, for rollback).
    lock_wait_s
        How long to retry when another process holds the writer lock.
    """
    folder = Path(folder)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    out_dir = folder / CHECKPOINTS_DIR / _slug(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{stamp}-{_slug(recipe)}-{secrets.token_hex(3)}"
    path = out_dir / f"{stem}{suffix}"
    with atomic_path(path, error=TrainingError) as tmp:
        write_weights(tmp)
    record = {
        "model": model, "recipe": recipe, "path": str(path), "metrics": metrics, "settings": settings,
        "items": [{"id": i.item_id, "version": i.version, "name": i.name} for i in items],
        "parent_id": parent_id, "created": stamp, **(extra or {}),
    }
    description = out_dir / f"{stem}.json"
    atomic_write_bytes(description, json.dumps(record, indent=1, default=str).encode(), error=TrainingError)
    checkpoint_id = _record(folder, record, path, activate=activate, lock_wait_s=lock_wait_s)
    return Published(path, description, checkpoint_id, record)


def publish_result(trainer: Any, result: Any, *, items: list[TrainingItem],  # noqa: ANN401
                   write_weights: Callable[[Path], None], parent_id: int | None,
                   extra: dict[str, Any] | None = None) -> Published:
    """:func:`publish_checkpoint` for a recipe's :class:`~trainers.config.FitResult`: its best
    metrics, the loop's and the recipe's settings (``trainer.config``, ``trainer.settings`` with
    ``project`` and ``model_name``), as ``.safetensors``."""
    s = trainer.settings
    return publish_checkpoint(
        s.project, model=s.model_name, recipe=trainer.name, suffix=".safetensors", write_weights=write_weights,
        metrics=result.best_metrics, items=items, parent_id=parent_id, extra=extra,
        settings={**trainer.config.as_dict(), trainer.name: {k: str(v) for k, v in vars(s).items()}})


def _record(folder: Path, record: dict[str, Any], path: Path, *, activate: bool, lock_wait_s: float) -> int | None:
    deadline = time.monotonic() + lock_wait_s
    while True:
        try:
            project = Project.open(folder)
            break
        except ProjectLockedError:
            if time.monotonic() >= deadline:
                _logger.info("%s is open for writing elsewhere; the lock holder records %s", folder, path)
                return None
            time.sleep(0.2)
    with project:
        parent = record["parent_id"]
        if parent is not None:
            try:
                project.checkpoint(parent)
            except Exception:  # noqa: BLE001 - a parent removed meanwhile is not worth failing for
                parent = None
        run = project.add_training_run(record["recipe"], {"settings": record["settings"], "items": record["items"]},
                                       status="finished")
        project.update_training_run(run.id, metrics=record["metrics"])
        ckpt = project.add_checkpoint(path, model=record["model"], run_id=run.id, metrics=record["metrics"],
                                      parent_id=parent, active=activate)
        return ckpt.id


def require_items(items: list[TrainingItem], folder: Path, kind: str) -> None:
    """Raise :class:`TrainingDataError` when there is nothing to train on."""
    if not items:
        raise TrainingDataError(
            f"no {kind} in this project is marked corrected or approved: correct a few predictions "
            "(or approve them) and train again", folder)
