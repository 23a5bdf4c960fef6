"""A Maskwright project: a folder with ``project.sqlite`` (metadata) and ``masks/`` (label maps).

Writes follow one order: the mask file is written under a new name (temp file, fsync, rename),
then one SQLite transaction commits the rows that reference it. A kill at any instant leaves the
last committed state readable; files a kill left unreferenced are removed on the next writable
open. One process writes (``project.lock``); any number of read-only opens may run beside it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine import __version__
from engine.errors import LabelError, ProjectError, ProjectReadError, ProjectWriteError, SchemaVersionError
from engine.fsutil import describe_os_error, replace_durably
from engine.items import LabelMap, LabelSet
from engine.jobs import CancelToken, Progress, check_cancelled, report
from engine.store import _masks, schema
from engine.store._classes import ClassesMixin
from engine.store._db import Database, now, serialized
from engine.store._items import ItemsMixin, check_status
from engine.store._training import TrainingMixin
from engine.store.lock import ProjectLock
from engine.store.records import ItemRecord, ItemStatus, Provenance, VersionRecord

__all__ = ["Project", "DB_NAME"]

_logger = logging.getLogger(__name__)

DB_NAME = "project.sqlite"
_VERSION_COLS = "item_id, version, mask_file, source, model, checkpoint, user, created, parent, status, checksum, dtype"


class Project(ItemsMixin, ClassesMixin, TrainingMixin):
    """An open project. Use :meth:`create` or :meth:`open`, ideally as a context manager.

    Attributes
    ----------
    folder
        The project folder (absolute).
    readonly
        Whether it was opened read-only (every write raises :class:`ProjectError`).
    """

    def __init__(self, folder: Path, db: Database, lock: ProjectLock | None) -> None:
        self.folder = folder
        self._db = db
        self._lock = lock
        self.readonly = db.readonly
        self.masks_dir = folder / _masks.MASKS_DIR

    # ------------------------------------------------------------------ opening and closing

    @classmethod
    def create(cls, folder: str | Path, *, name: str = "", labels: LabelSet | None = None) -> Project:
        """Make a new project in ``folder`` (created if needed) and open it for writing.

        The database is built under a temporary name and renamed into place, so a kill during
        creation leaves no half-made project. Raises :class:`ProjectError` when ``folder``
        already holds a project.
        """
        folder = Path(folder).expanduser().resolve()
        db_path = folder / DB_NAME
        if db_path.exists():
            raise ProjectError("this folder already holds a Maskwright project", folder)
        masks = folder / _masks.MASKS_DIR
        if masks.is_dir() and any(masks.iterdir()):
            raise ProjectError(f"the folder already has a non-empty {_masks.MASKS_DIR}/ folder, which a project "
                               "keeps its own files in; choose another folder", folder)
        try:
            (folder / _masks.MASKS_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ProjectWriteError(f"cannot create the project folder: {describe_os_error(err)}", folder) from err
        lock = ProjectLock(folder)
        lock.acquire()
        tmp = folder / f".{DB_NAME}.tmp-{secrets.token_hex(4)}"
        try:
            db = Database(tmp, readonly=False, new=True)
            schema.create_schema(db.con)
            schema.migrate(db.con, tmp)
            with db.transaction("create the project") as con:
                con.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [
                    ("app_version", __version__), ("name", name or folder.name), ("created", now()),
                    ("next_class_id", "1"),
                ])
            db.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.close()
            for extra in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{tmp}{extra}")
            replace_durably(tmp, db_path)
        except OSError as err:
            lock.release()
            raise ProjectWriteError(f"cannot create the project: {describe_os_error(err)}", folder) from err
        except BaseException:
            lock.release()
            raise
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        project = cls._open_locked(folder, lock)
        if labels is not None:
            project.set_labels(labels)
        return project

    @classmethod
    def open(cls, folder: str | Path, *, readonly: bool = False) -> Project:
        """Open an existing project.

        Parameters
        ----------
        folder
            The project folder (the one holding ``project.sqlite``).
        readonly
            Open without the writer lock, beside a writer; nothing can be changed.

        Raises
        ------
        ProjectReadError
            No project there, or its database is damaged.
        ProjectLockedError
            Another process has it open for writing (only when ``readonly`` is false).
        SchemaVersionError
            Written by a newer Maskwright (nothing is changed), or, read-only, by an older one
            (open it once for writing to upgrade it).
        """
        folder = Path(folder).expanduser().resolve()
        if not (folder / DB_NAME).is_file():
            reason = "no such folder" if not folder.exists() else f"not a Maskwright project ({DB_NAME} is missing)"
            raise ProjectReadError(reason, folder)
        if readonly:
            db = Database(folder / DB_NAME, readonly=True)
            try:
                version = schema.read_version(db.con, db.path)
                schema.check_supported(version, db.path)
                if version != schema.CURRENT_VERSION:
                    raise SchemaVersionError(
                        f"this project uses schema version {version}; open it once for writing to upgrade it "
                        f"to version {schema.CURRENT_VERSION}", db.path)
            except BaseException:
                db.close()
                raise
            return cls(folder, db, None)
        lock = ProjectLock(folder)
        lock.acquire()
        try:
            return cls._open_locked(folder, lock)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _open_locked(cls, folder: Path, lock: ProjectLock) -> Project:
        db = Database(folder / DB_NAME, readonly=False)
        try:
            version = schema.read_version(db.con, db.path)
            schema.check_supported(version, db.path)
            old, new = schema.migrate(db.con, db.path)
            if old != new:
                _logger.info("upgraded %s from schema %d to %d", folder, old, new)
            if db.scalar("SELECT value FROM meta WHERE key = 'app_version'") != __version__:
                with db.transaction("record the app version") as con:
                    con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('app_version', ?)", (__version__,))
            project = cls(folder, db, lock)
            project._prepare_masks_dir()
        except BaseException:
            db.close()
            raise
        return project

    def _prepare_masks_dir(self) -> None:
        referenced = [r[0] for r in self._db.query("SELECT mask_file FROM versions")]
        if not self.masks_dir.is_dir():
            if referenced:
                raise ProjectReadError(f"the masks folder is missing ({len(referenced)} saved versions refer to it)",
                                       self.masks_dir)
            try:
                self.masks_dir.mkdir()
            except OSError as err:
                raise ProjectWriteError(f"cannot create the masks folder: {describe_os_error(err)}",
                                        self.masks_dir) from err
        _masks.remove_orphans(self.masks_dir, referenced)
        for leftover in self.folder.glob(f".{DB_NAME}.tmp-*"):  # from a create that was killed
            with contextlib.suppress(OSError):
                leftover.unlink()

    def close(self) -> None:
        """Close the database and release the writer lock (idempotent)."""
        self._db.close()
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Project({str(self.folder)!r}, readonly={self.readonly})"

    # ------------------------------------------------------------------ meta

    @property
    def name(self) -> str:
        """The project's display name."""
        return str(self._db.scalar("SELECT value FROM meta WHERE key = 'name'") or self.folder.name)

    def meta(self) -> dict[str, str]:
        """Every ``meta`` entry (schema_version, app_version, name, created, ...)."""
        return {str(k): str(v) for k, v in self._db.query("SELECT key, value FROM meta")}

    # ------------------------------------------------------------------ annotations

    def _version_from_row(self, row: Sequence[Any]) -> VersionRecord:
        item_id, version, mask_file, source, model, checkpoint, user, created, parent, status, digest, dtype = row
        return VersionRecord(
            item_id=int(item_id), version=int(version), mask_file=self.masks_dir / mask_file,
            provenance=Provenance(source, model=model, checkpoint=checkpoint, user=user), created=created,
            parent=None if parent is None else int(parent), status=status, checksum=digest, dtype=dtype)

    def versions(self, item_id: int) -> list[VersionRecord]:
        """Every saved version of an item, oldest first."""
        rows = self._db.query(f"SELECT {_VERSION_COLS} FROM versions WHERE item_id = ? ORDER BY version",
                              (int(item_id),))
        return [self._version_from_row(r) for r in rows]

    def latest_version(self, item_id: int) -> VersionRecord | None:
        """The newest version of an item, or ``None`` when it has none."""
        rows = self._db.query(f"SELECT {_VERSION_COLS} FROM versions WHERE item_id = ? ORDER BY version DESC "
                              "LIMIT 1", (int(item_id),))
        return self._version_from_row(rows[0]) if rows else None

    def _check_labelmap(self, item: ItemRecord, data: np.ndarray, labels: LabelSet) -> np.ndarray:
        data = np.asarray(data)
        if data.dtype not in (np.uint8, np.uint16):
            raise LabelError(f"a label map must be uint8 or uint16, got {data.dtype}")
        if tuple(data.shape) != item.shape:
            raise LabelError(f"label map shape {tuple(data.shape)} differs from item {item.id}'s grid {item.shape}")
        unknown = _masks.unknown_ids(data, set(labels.ids))
        if unknown:
            raise LabelError(f"the label map uses class ids the project does not define: {unknown[:10]}")
        return np.ascontiguousarray(data)

    @serialized
    def save_annotation(self, item_id: int, labelmap_data: LabelMap | np.ndarray, *, provenance: Provenance,
                        status: ItemStatus | None = None, parent: int | None = None) -> VersionRecord:
        """Save a label map as the item's next version and set the item's status.

        Parameters
        ----------
        labelmap_data
            ``(H, W)`` (photo) or ``(z, y, x)`` (volume) uint8/uint16 class ids on the item's grid,
            or a :class:`LabelMap`; every non-zero id must be a class of the project.
        provenance
            :meth:`Provenance.from_model` or :meth:`Provenance.from_person`.
        status
            Defaults to ``predicted`` for a model and ``corrected`` for a person.
        parent
            The version it derives from; defaults to the item's latest version.

        Raises
        ------
        ProjectWriteError
            The mask or the database could not be written (e.g. "the disk is full"); the previous
            version stays the latest and intact.
        """
        item = self.item(item_id)
        data = labelmap_data.data if isinstance(labelmap_data, LabelMap) else labelmap_data
        labels = self.labels()
        data = self._check_labelmap(item, data, labels)
        status = status or ("predicted" if provenance.source == "model" else "corrected")
        check_status(status)
        if parent is not None:
            self._version(item.id, parent)
        return self._commit_versions([(item, data, parent)], provenance=provenance, status=status,
                                     palette=labels.palette())[0]

    def _commit_versions(self, entries: list[tuple[ItemRecord, np.ndarray, int | None]], *,
                         provenance: Provenance, status: str | None, palette: np.ndarray | None,
                         extra_sql: Sequence[tuple[str, tuple[Any, ...]]] = ()) -> list[VersionRecord]:
        """Write each mask file, then commit every row (and ``extra_sql``) in one transaction."""
        if self.readonly:
            raise ProjectError("the project is open read-only", self.folder)
        written: list[tuple[ItemRecord, str, int, int | None, str, str]] = []
        try:
            for item, data, parent in entries:
                latest = self.latest_version(item.id)
                number = (latest.version if latest else 0) + 1
                file_name = _masks.new_mask_name(item.id, number, item.kind)
                _masks.write_mask(self.masks_dir / file_name, data, kind=item.kind, geometry=item.geometry,
                                  palette=palette)
                parent_version = parent if parent is not None else (latest.version if latest else None)
                written.append((item, file_name, number, parent_version, _masks.checksum(data), data.dtype.name))
            created = now()
            with self._db.transaction("save the annotation") as con:
                for item, file_name, number, parent_version, digest, dtype in written:
                    item_status = status or item.status
                    con.execute(
                        f"INSERT INTO versions ({_VERSION_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (item.id, number, file_name, provenance.source, provenance.model, provenance.checkpoint,
                         provenance.user, created, parent_version, item_status, digest, dtype))
                    con.execute("UPDATE items SET status = ? WHERE id = ?", (item_status, item.id))
                for sql, params in extra_sql:
                    con.execute(sql, params)
        except BaseException:
            self._discard_uncommitted([file_name for _, file_name, *_rest in written])
            raise
        return [self._version(item.id, number) for item, _, number, *_rest in written]

    def _discard_uncommitted(self, file_names: list[str]) -> None:
        """Delete written mask files that no committed row references (after a failed save).

        The database decides, not the control flow: an interrupt that lands just after COMMIT
        must not delete a committed file. If the database cannot answer, the files stay and
        the next writable open removes the unreferenced ones.
        """
        if not file_names:
            return
        try:
            marks = ", ".join("?" * len(file_names))
            kept = {r[0] for r in self._db.query(f"SELECT mask_file FROM versions WHERE mask_file IN ({marks})",
                                                 tuple(file_names))}
        except ProjectError:
            return
        for name in file_names:
            if name not in kept:
                with contextlib.suppress(OSError):
                    (self.masks_dir / name).unlink()

    def _version(self, item_id: int, version: int | None) -> VersionRecord:
        if version is None:
            record = self.latest_version(item_id)
            if record is None:
                raise ProjectError(f"item {item_id} has no saved annotation", self.folder)
            return record
        rows = self._db.query(f"SELECT {_VERSION_COLS} FROM versions WHERE item_id = ? AND version = ?",
                              (int(item_id), int(version)))
        if not rows:
            raise ProjectError(f"item {item_id} has no version {version}", self.folder)
        return self._version_from_row(rows[0])

    def load_annotation(self, item_id: int, version: int | None = None, *, verify: bool = True) -> LabelMap:
        """Read a version's label map (the latest when ``version`` is ``None``).

        With ``verify`` (the default) the content is checked against the SHA-256 stored at save
        time (about 0.2 s for a 512x512x300 map). The returned map's
        ``labels`` are the project's current classes. Raises :class:`ProjectError` when the item
        has no such version and :class:`ProjectReadError` naming the file when the mask file is
        missing, unreadable or differs from what was saved.
        """
        item = self.item(item_id)
        record = self._version(item_id, version)
        data = _masks.read_mask(record.mask_file, kind=item.kind, shape=item.shape,
                                expected=record.checksum if verify else None)
        if data.dtype.name != record.dtype:
            data = data.astype(record.dtype)
        return LabelMap(data, self.labels())

    def verify(self, *, progress: Progress | None = None, cancel: CancelToken | None = None) -> list[str]:
        """Check every version's mask file (exists, decodes, matches its checksum).

        Returns one line per problem, naming the file; empty when all is well. ``progress``
        counts items; ``cancel`` is checked between items (see :mod:`engine.jobs`).
        """
        problems: list[str] = []
        items = self.items()
        for done, item in enumerate(items):
            check_cancelled(cancel)
            report(progress, done, len(items), item.name)
            for record in self.versions(item.id):
                try:
                    _masks.read_mask(record.mask_file, kind=item.kind, shape=item.shape, expected=record.checksum)
                except ProjectReadError as err:
                    problems.append(str(err))
        report(progress, len(items), len(items), "done")
        return problems
