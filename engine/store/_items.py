"""Items of a project: photos and volumes, referenced by path (never copied), and their status."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.errors import ProjectError
from engine.items import Photo, Volume
from engine.store._db import Database, from_json, now, serialized, to_json
from engine.store.records import STATUSES, Geometry, ItemRecord, ItemStatus

__all__ = ["ItemsMixin", "check_status"]

_ITEM_COLS = ("id, kind, source_path, source_relpath, series_uid, series_key, shape, name, added, status, "
              "geometry")


def check_status(status: str) -> None:
    """Raise :class:`ProjectError` unless ``status`` is one of :data:`STATUSES`."""
    if status not in STATUSES:
        raise ProjectError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")


class ItemsMixin:
    """The item half of :class:`engine.store.project.Project`."""

    folder: Path
    _db: Database

    def _stored_path(self, path: Path) -> tuple[str, str | None]:
        absolute = path.expanduser().resolve()
        try:
            relative: str | None = absolute.relative_to(self.folder).as_posix()
        except ValueError:
            relative = None
        return str(absolute), relative

    def _item_from_row(self, row: Sequence[Any]) -> ItemRecord:
        iid, kind, src, rel, uid, key, shape, name, added, status, geometry = row
        source = self.folder / rel if rel is not None else Path(src)
        return ItemRecord(
            id=int(iid), kind=kind, source=source, source_relative=Path(rel) if rel is not None else None,
            series_uid=uid, series_key=key, shape=tuple(int(n) for n in from_json(shape)), name=name,
            added=added, status=status,
            geometry=Geometry.from_json(from_json(geometry)) if geometry else None,
        )

    def item(self, item_id: int) -> ItemRecord:
        """The item with this id; :class:`ProjectError` when there is none."""
        rows = self._db.query(f"SELECT {_ITEM_COLS} FROM items WHERE id = ?", (int(item_id),))
        if not rows:
            raise ProjectError(f"no item with id {item_id}", self.folder)
        return self._item_from_row(rows[0])

    def items(self, status: ItemStatus | Sequence[str] | None = None) -> list[ItemRecord]:
        """Items in the order they were added, optionally only those with ``status`` (one or several)."""
        if status is None:
            rows = self._db.query(f"SELECT {_ITEM_COLS} FROM items ORDER BY id")
        else:
            wanted = [status] if isinstance(status, str) else list(status)
            for s in wanted:
                check_status(s)
            marks = ", ".join("?" * len(wanted))
            rows = self._db.query(f"SELECT {_ITEM_COLS} FROM items WHERE status IN ({marks}) ORDER BY id",
                                  tuple(wanted))
        return [self._item_from_row(r) for r in rows]

    def find_item(self, source: str | Path, *, series_key: str = "") -> ItemRecord | None:
        """The item added from ``source`` (and ``series_key``), or ``None``."""
        absolute, _ = self._stored_path(Path(source))
        rows = self._db.query(f"SELECT {_ITEM_COLS} FROM items WHERE source_path = ? AND series_key = ?",
                              (absolute, series_key))
        return self._item_from_row(rows[0]) if rows else None

    @serialized
    def _insert_item(self, *, kind: str, source: Path, shape: tuple[int, ...], name: str, series_uid: str = "",
                     series_key: str = "", geometry: Geometry | None = None) -> ItemRecord:
        existing = self.find_item(source, series_key=series_key)
        if existing is not None:
            return existing
        absolute, relative = self._stored_path(source)
        with self._db.transaction("add the item") as con:
            cur = con.execute(
                "INSERT INTO items (kind, source_path, source_relpath, series_uid, series_key, shape, name, added, "
                "status, geometry) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'new', ?)",
                (kind, absolute, relative, series_uid, series_key, to_json(list(shape)), name, now(),
                 to_json(geometry.to_json()) if geometry is not None else None))
            item_id = int(cur.lastrowid or 0)
        return self.item(item_id)

    def add_photo(self, source: str | Path | Photo, *, name: str | None = None) -> ItemRecord:
        """Add a photo by path (it is read once for its size) or as an already read :class:`Photo`.

        The source file is referenced, not copied. Adding the same file again returns the
        existing item.
        """
        if isinstance(source, Photo):
            photo = source
            if photo.source is None:
                raise ProjectError("a photo added to a project needs its source path")
        else:
            existing = self.find_item(Path(source))
            if existing is not None:
                return existing
            from engine.io.photos import read_photo

            photo = read_photo(Path(source))
        path = Path(photo.source)  # type: ignore[arg-type]
        return self._insert_item(kind="photo", source=path, shape=photo.shape, name=name or path.name)

    def add_volume(self, source: str | Path | Volume, *, series_key: str = "", name: str | None = None) -> ItemRecord:
        """Add a volume: a NIfTI/NRRD/MHA file, a DICOM series folder, or a loaded :class:`Volume`.

        Parameters
        ----------
        source
            A path (read once, through :func:`engine.io.volumes.read_volume`, for its grid and
            geometry) or a loaded volume (its ``source`` must be set).
        series_key
            Which series of a folder holding several (as ``engine.io.dicom`` names them); "" for
            single-series folders and files.
        """
        if isinstance(source, Volume):
            volume = source
        else:
            existing = self.find_item(Path(source), series_key=series_key)
            if existing is not None:
                return existing
            from engine.io.volumes import read_volume

            volume = read_volume(Path(source), series=series_key or None)
        if volume.source is None:
            raise ProjectError("a volume added to a project needs its source path")
        geometry = Geometry(volume.spacing, volume.origin, tuple(float(v) for v in volume.direction.ravel()))
        label = name or volume.description or Path(volume.source).name
        return self._insert_item(kind="volume", source=Path(volume.source), shape=volume.shape, name=label,
                                 series_uid=volume.series_uid, series_key=series_key, geometry=geometry)

    @serialized
    def set_status(self, item_id: int, status: ItemStatus) -> ItemRecord:
        """Mark an item ``new``, ``predicted``, ``corrected`` or ``approved``."""
        check_status(status)
        self.item(item_id)
        with self._db.transaction("change the status") as con:
            con.execute("UPDATE items SET status = ? WHERE id = ?", (status, int(item_id)))
        return self.item(item_id)
