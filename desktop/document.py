"""What the window has open: a project, one item, its label editor and undo stack.

Widgets read the document and call its methods; they never write the label map themselves.
Small store writes happen here on the GUI thread (one SQLite transaction per user action);
saving a label map, reading images and running models happen in workers (:mod:`desktop.saving`,
:mod:`desktop.workers`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from desktop.loading import LoadedItem
from desktop.recovery import Journal
from desktop.saving import PendingSave, wait_for_save
from desktop.uncertainty_store import UncertaintyStore
from desktop.undo import EditCommand
from engine.edit import LabelEditor, Step
from engine.items import LabelSet, Photo, Volume
from engine.store import ItemRecord, Project, Provenance

__all__ = ["Document"]

_logger = logging.getLogger(__name__)


class Document(QObject):
    """The open project and item.

    Signals
    -------
    projectChanged()
        A project was opened or closed.
    itemsChanged()
        Items were added or changed status.
    itemChanged()
        Another item (or none) is shown.
    labelsChanged()
        The project's classes changed.
    edited(keys)
        The label map changed in these boxes (engine keys).
    saved(item_id)
        A background save of the shown item's map was written.
    """

    projectChanged = Signal()
    itemsChanged = Signal()
    itemChanged = Signal()
    labelsChanged = Signal()
    edited = Signal(object)
    saved = Signal(int)

    def __init__(self, recovery_root: Path, parent: QObject | None = None, *, history_limit: int = 100,
                 uncertainty_root: Path | None = None) -> None:
        super().__init__(parent)
        self.recovery_root = Path(recovery_root)
        self.uncertainty_root = Path(uncertainty_root or Path(recovery_root).parent / "uncertainty")
        self.heat_store: UncertaintyStore | None = None
        self._heat_cache: tuple[int, np.ndarray] | None = None
        self.history_limit = history_limit
        self.project: Project | None = None
        self.journal: Journal | None = None
        self.labels = LabelSet()
        self.record: ItemRecord | None = None
        self.source: Photo | Volume | None = None
        self.editor: LabelEditor | None = None
        self.base_version: int | None = None
        self.prediction: np.ndarray | None = None
        self.scores: dict[int, float] = {}  # item id -> mean uncertainty of its latest prediction
        self.undo_stack = QUndoStack(self)
        self.undo_stack.setUndoLimit(history_limit)
        self.active_class = 1
        self._journal_revision = -1
        self.pending_save: PendingSave | None = None

    # -- project -----------------------------------------------------------------------------
    def open_project(self, folder: Path, *, create: bool = False, name: str = "") -> None:
        """Open (or create) a project; the previous one is saved and closed first."""
        self.close_project()
        project = Project.create(folder, name=name) if create else Project.open(folder)
        self.project = project
        self.journal = Journal(self.recovery_root, project.folder)
        self.heat_store = UncertaintyStore(self.uncertainty_root, project.folder)
        self._load_scores()
        self.labels = project.labels()
        self.active_class = self.labels.ids[0] if len(self.labels) else 1
        self.projectChanged.emit()
        self.labelsChanged.emit()
        self.itemsChanged.emit()

    def close_project(self) -> None:
        """Save the open item and close the project (releases its lock)."""
        if self.project is None:
            return
        self.save()
        self._set_item(None)
        self.project.close()
        self.project = None
        self.journal = None
        self.labels = LabelSet()
        self.heat_store = None
        self._heat_cache = None
        self.scores.clear()
        self.projectChanged.emit()
        self.itemsChanged.emit()
        self.labelsChanged.emit()

    def items(self, status: str | None = None) -> list[ItemRecord]:
        if self.project is None:
            return []
        return self.project.items(None if not status else status)  # type: ignore[arg-type]

    # -- the shown item ----------------------------------------------------------------------
    @property
    def modified(self) -> bool:
        """Unsaved edits on the shown item."""
        return self.editor is not None and not self.undo_stack.isClean()

    def show_item(self, loaded: LoadedItem | None) -> None:
        """Show an item read by a worker (its annotation, or an empty map).

        Edits made on the shown item while the other was being read are saved first.
        """
        self.save()
        self._set_item(loaded)

    def _set_item(self, loaded: LoadedItem | None) -> None:
        wait_for_save(self)
        if self.editor is not None:
            self.editor.disconnect(self._on_edit)
        self.undo_stack.clear()
        if loaded is None:
            self.record = self.source = self.editor = self.prediction = None
            self.base_version = None
        else:
            self.record, self.source = loaded.record, loaded.source
            data = loaded.annotation
            if data is None:
                data = np.zeros(loaded.source.shape, dtype=self.labels.dtype())
            elif data.dtype == np.uint8 and self.labels.dtype() == np.uint16:
                data = data.astype(np.uint16)
            self.editor = LabelEditor(np.ascontiguousarray(data), history_limit=self.history_limit)
            self.editor.connect(self._on_edit)
            self.base_version = loaded.base_version
            self.prediction = loaded.prediction
        self.undo_stack.setClean()
        self._journal_revision = -1 if self.editor is None else self.editor.revision
        self.itemChanged.emit()

    def _on_edit(self, keys: tuple) -> None:
        self.edited.emit(keys)

    def push_step(self, step: Step | None, text: str) -> None:
        """Put a committed engine step on the undo stack (``None``: nothing changed, nothing pushed)."""
        if step is not None and self.editor is not None:
            self.undo_stack.push(EditCommand(self.editor, step, text))

    def apply(self, text: str, fn: Callable[[LabelEditor], object]) -> bool:
        """Run an engine edit ``fn(editor)`` as one stroke (tools may nest their own) and push it.

        Everything ``fn`` commits becomes one undo command; returns whether anything changed.
        """
        editor = self.editor
        if editor is None:
            return False
        editor.begin_stroke(text)
        try:
            fn(editor)
        except BaseException:
            editor.abort_stroke()
            raise
        step = editor.end_stroke()
        self.push_step(step, text)
        return step is not None

    def replace_annotation(self, data: np.ndarray, *, clean: bool) -> None:
        """Swap in another label map for the shown item (a recovered journal, a new version)."""
        if self.editor is None:
            return
        self.editor.replace_data(data)
        self.undo_stack.clear()
        if clean:
            self.undo_stack.setClean()
        else:
            self.undo_stack.resetClean()

    # -- saving ------------------------------------------------------------------------------
    def save(self, status: str | None = None) -> bool:
        """Save the shown item's map as a new version if it has unsaved edits (or ``status`` is given).

        Returns whether a version was written. Errors propagate (the caller shows them); the
        edits and the journal stay, so nothing is lost. A background save still running is
        waited for first (:func:`desktop.saving.wait_for_save`); interactive saves use
        :func:`desktop.saving.start_background_save` instead.
        """
        wait_for_save(self)
        if self.project is None or self.record is None or self.editor is None:
            return False
        if not self.modified and status is None:
            return False
        if not self.modified and status is not None:
            self.record = self.project.set_status(self.record.id, status)  # type: ignore[arg-type]
            self.itemsChanged.emit()
            return False
        version = self.project.save_annotation(self.record.id, self.editor.data.copy(),
                                               provenance=Provenance.from_person(),
                                               status=status or "corrected",  # type: ignore[arg-type]
                                               parent=self.base_version)
        self.base_version = version.version
        self.record = self.project.item(self.record.id)
        self.undo_stack.setClean()
        if self.journal is not None:
            self.journal.discard(self.record.id)
        self.itemsChanged.emit()
        return True

    def autosave_store(self) -> bool:
        """Autosave unsaved edits to the project store as a new version, keeping the item's status
        (a "new" item becomes "corrected", as on an explicit save). Whether a version was written."""
        if not self.modified or self.record is None:
            return False
        status = self.record.status if self.record.status != "new" else "corrected"
        return self.save(status=status)

    def journal_stale(self) -> None:
        """Rewrite the journal at the next autosave tick (its base version changed)."""
        self._journal_revision = -1

    def autosave_journal(self) -> bool:
        """Write unsaved edits to the recovery journal (cheap, atomic); whether anything was written."""
        if self.journal is None or self.record is None or self.editor is None or not self.modified:
            return False
        if self.editor.revision == self._journal_revision:
            return False
        self.journal.write(self.record.id, self.editor.data, self.base_version)
        self._journal_revision = self.editor.revision
        return True

    def set_status(self, status: str) -> None:
        """Mark the shown item (saving unsaved edits with that status)."""
        self.save(status=status)

    # -- model results -----------------------------------------------------------------------
    def store_prediction(self, item_id: int, labels: np.ndarray, *, model: str, checkpoint: str = "",
                         uncertainty: np.ndarray | None = None) -> None:
        """Save a model's map as a new version with provenance; show it if the item is open."""
        assert self.project is not None
        if self.record is not None and self.record.id == item_id and self.modified:
            self.save()
        version = self.project.save_annotation(item_id, labels, provenance=Provenance.from_model(model, checkpoint),
                                               status="predicted")
        if uncertainty is not None and self.heat_store is not None:
            self.scores[item_id] = self.heat_store.put(item_id, version.version, uncertainty)
            self._heat_cache = None
        if self.record is not None and self.record.id == item_id and self.editor is not None:
            self.prediction = labels.copy()
            self.base_version = version.version
            self.replace_annotation(labels.astype(self.editor.data.dtype), clean=True)
            self.record = self.project.item(item_id)
        self.itemsChanged.emit()

    def _latest_model_version(self, item_id: int) -> int | None:
        assert self.project is not None
        versions = [v.version for v in self.project.versions(item_id) if v.provenance.source == "model"]
        return versions[-1] if versions else None

    def _load_scores(self) -> None:
        """Scores kept from earlier sessions, for items whose latest prediction they belong to."""
        self.scores.clear()
        if self.heat_store is None or self.project is None:
            return
        for item_id, (version, score) in self.heat_store.scores().items():
            try:
                if self._latest_model_version(item_id) == version:
                    self.scores[item_id] = score
            except Exception:  # noqa: BLE001 - an item removed meanwhile
                continue

    def uncertainty_for(self, item_id: int) -> np.ndarray | None:
        """The uncertainty map of an item's latest prediction (``[0, 1]`` floats), or ``None``."""
        if self.heat_store is None or self.project is None or item_id not in self.scores:
            return None
        if self._heat_cache is not None and self._heat_cache[0] == item_id:
            return self._heat_cache[1]
        values = self.heat_store.get(item_id, self._latest_model_version(item_id))
        if values is not None:
            self._heat_cache = (item_id, values)
        return values

    # -- classes -----------------------------------------------------------------------------
    def _classes_changed(self) -> None:
        assert self.project is not None
        self.labels = self.project.labels()
        if self.active_class not in self.labels and len(self.labels):
            self.active_class = self.labels.ids[0]
        self.labelsChanged.emit()

    def add_classes(self, text: str) -> list[int]:
        """Add the classes typed as ``"cat; kitten, dog, sky"`` (existing names are skipped)."""
        from engine.items import parse_class_text

        assert self.project is not None
        added = []
        for name, prompt in parse_class_text(text):
            if self.labels.find(name) is None:
                added.append(self.project.add_class(name, prompt=prompt).id)
                self.labels = self.project.labels()
        if added:
            self.active_class = added[0] if len(added) == len(self.labels) else self.active_class
        self._classes_changed()
        if self.editor is not None and self.labels.dtype() != self.editor.data.dtype:
            self._widen_labels()
        return added

    def _widen_labels(self) -> None:
        assert self.editor is not None
        wide = self.editor.data.astype(np.uint16)
        loaded = LoadedItem(self.record, self.source, wide, self.base_version, self.prediction)  # type: ignore[arg-type]
        was_modified = self.modified
        self._set_item(loaded)
        if was_modified:
            self.undo_stack.resetClean()

    def update_class(self, class_id: int, *, name: str | None = None, color: tuple[int, int, int] | None = None,
                     prompt: str | None = None) -> None:
        assert self.project is not None
        self.project.update_class(class_id, name=name, color=color, prompt=prompt)
        self._classes_changed()

    def delete_class(self, class_id: int, *, merge_into: int | None = None) -> None:
        """Delete (or merge) a class in every item's latest version, the shown item included."""
        assert self.project is not None
        self.save()
        self.project.delete_class(class_id, merge_into=merge_into)
        if self.editor is not None and self.record is not None:
            latest = self.project.latest_version(self.record.id)
            if latest is not None:
                self.base_version = latest.version
                self.replace_annotation(self.project.load_annotation(self.record.id).data, clean=True)
            else:  # never saved: apply the same change to the (clean) in-memory map
                data = self.editor.data.copy()
                data[data == class_id] = merge_into or 0
                self.replace_annotation(data, clean=True)
        self._classes_changed()
