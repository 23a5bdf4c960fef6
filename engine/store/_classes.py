"""Classes of a project: stable ids, never reused; deleting or merging remaps masks in new versions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import LabelError
from engine.items import RGB, LabelClass, LabelSet
from engine.store._db import Database, serialized
from engine.store.records import ClassRecord, ItemRecord, Provenance, VersionRecord

if TYPE_CHECKING:
    from engine.items import LabelMap as _LabelMap

__all__ = ["ClassesMixin"]


def _color_text(color: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in color))


def _color_value(text: str) -> RGB:
    return (int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16))


class ClassesMixin:
    """The class-editing half of :class:`engine.store.project.Project`."""

    folder: Path
    _db: Database

    if TYPE_CHECKING:
        def items(self, status: Any = None) -> list[ItemRecord]: ...
        def latest_version(self, item_id: int) -> VersionRecord | None: ...
        def load_annotation(self, item_id: int, version: int | None = None) -> _LabelMap: ...
        def _commit_versions(self, entries: list[tuple[ItemRecord, np.ndarray, int | None]], *,
                             provenance: Provenance, status: str | None, palette: np.ndarray | None,
                             extra_sql: Sequence[tuple[str, tuple[Any, ...]]] = ()) -> list[VersionRecord]: ...

    def classes(self, *, include_deleted: bool = True) -> list[ClassRecord]:
        """Every class row in id order, deleted ones included unless ``include_deleted`` is false."""
        rows = self._db.query("SELECT id, name, prompt, color, deleted FROM classes ORDER BY id")
        records = [ClassRecord(int(i), n, p, _color_value(c), bool(d)) for i, n, p, c, d in rows]
        return records if include_deleted else [r for r in records if not r.deleted]

    def _next_class_id(self) -> int:
        stored = int(self._db.scalar("SELECT value FROM meta WHERE key = 'next_class_id'") or 1)
        highest = int(self._db.scalar("SELECT MAX(id) FROM classes") or 0)
        return max(stored, highest + 1)

    def labels(self) -> LabelSet:
        """The current (not deleted) classes; ``next_id`` never hands out a used id."""
        active = [LabelClass(r.id, r.name, r.prompt, r.color) for r in self.classes(include_deleted=False)]
        return LabelSet(active, next_id=self._next_class_id())

    @serialized
    def add_class(self, name: str, *, prompt: str = "", color: RGB | None = None) -> LabelClass:
        """Add a class with the next unused id and return it."""
        labels = self.labels()
        new = labels.add(name, prompt=prompt, color=color)
        self._apply_class_changes(labels, upserts=[new], removals={}, provenance=None)
        return new

    @serialized
    def update_class(self, class_id: int, *, name: str | None = None, prompt: str | None = None,
                     color: RGB | None = None) -> LabelClass:
        """Rename, re-prompt or recolour a class; its id and the masks stay as they are."""
        labels = self.labels()
        changes: dict[str, object] = {}
        if name is not None:
            changes["name"] = name.strip()
        if prompt is not None:
            changes["prompt"] = prompt.strip() or (name or labels[class_id].name)
        if color is not None:
            changes["color"] = tuple(int(c) for c in color)
        new = labels.update(class_id, **changes)
        self._apply_class_changes(labels, upserts=[new], removals={}, provenance=None)
        return new

    @serialized
    def delete_class(self, class_id: int, *, merge_into: int | None = None,
                     provenance: Provenance | None = None) -> list[VersionRecord]:
        """Delete a class; its id is never used again.

        Every item whose latest version uses the class gets a new version in which those pixels
        become ``merge_into`` (merging two classes) or 0. Old versions are kept as they were.
        Everything is committed in one transaction. Returns the new versions.

        Parameters
        ----------
        provenance
            Who made the change; defaults to an unnamed person.
        """
        labels = self.labels()
        labels[class_id]  # noqa: B018 - raises LabelError when unknown
        if merge_into is not None and (merge_into == class_id or merge_into not in labels):
            raise LabelError(f"cannot merge class {class_id} into {merge_into}: not another existing class")
        labels.remove(class_id)
        return self._apply_class_changes(labels, upserts=[], removals={class_id: merge_into or 0},
                                         provenance=provenance)

    @serialized
    def set_labels(self, labels: LabelSet, *, provenance: Provenance | None = None) -> list[VersionRecord]:
        """Make the project's classes equal to ``labels`` (ids as given), in one transaction.

        Classes missing from ``labels`` are deleted as by :meth:`delete_class` (their pixels become
        0 in new versions, which are returned). An id that belonged to a deleted class cannot
        come back (:class:`LabelError`).
        """
        rows = {r.id: r for r in self.classes()}
        for c in labels:
            if c.id in rows and rows[c.id].deleted:
                raise LabelError(f"class id {c.id} belonged to the deleted class {rows[c.id].name!r}; "
                                 "ids are never reused")
        removals = {i: 0 for i, r in rows.items() if not r.deleted and i not in labels}
        changed = [c for c in labels if c.id not in rows or
                   (rows[c.id].name, rows[c.id].prompt, rows[c.id].color) != (c.name, c.prompt, tuple(c.color))]
        merged = LabelSet(list(labels), next_id=max(labels.next_id, self._next_class_id()))
        return self._apply_class_changes(merged, upserts=changed, removals=removals, provenance=provenance)

    def _apply_class_changes(self, labels: LabelSet, *, upserts: list[LabelClass], removals: dict[int, int],
                             provenance: Provenance | None) -> list[VersionRecord]:
        sql: list[tuple[str, tuple[Any, ...]]] = []
        for c in upserts:
            sql.append(("INSERT INTO classes (id, name, prompt, color, deleted) VALUES (?, ?, ?, ?, 0) "
                        "ON CONFLICT (id) DO UPDATE SET name = excluded.name, prompt = excluded.prompt, "
                        "color = excluded.color", (c.id, c.name, c.prompt, _color_text(c.color))))
        for class_id in removals:
            sql.append(("UPDATE classes SET deleted = 1 WHERE id = ?", (class_id,)))
        sql.append(("INSERT OR REPLACE INTO meta (key, value) VALUES ('next_class_id', ?)", (str(labels.next_id),)))
        entries = self._remapped_latest(removals) if removals else []
        return self._commit_versions(entries, provenance=provenance or Provenance.from_person(),
                                     status=None, palette=labels.palette(), extra_sql=sql)

    def _remapped_latest(self, removals: dict[int, int]) -> list[tuple[ItemRecord, np.ndarray, int | None]]:
        """Latest label maps that use a removed id, with those ids replaced."""
        entries: list[tuple[ItemRecord, np.ndarray, int | None]] = []
        for item in self.items():
            record = self.latest_version(item.id)
            if record is None:
                continue
            data = self.load_annotation(item.id, record.version).data
            if not any(np.any(data == old) for old in removals):
                continue
            lut = np.arange(int(data.max()) + 1, dtype=data.dtype)
            for old, new in removals.items():
                if old < len(lut):
                    lut[old] = new
            entries.append((item, lut[data], record.version))
        return entries
