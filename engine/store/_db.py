"""SQLite plumbing of the project store: connections, transactions, error translation."""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from engine.errors import ProjectError, ProjectReadError, ProjectWriteError

__all__ = ["Database", "now", "to_json", "from_json", "serialized"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


def serialized(method: Callable[Concatenate[Any, _P], _T]) -> Callable[Concatenate[Any, _P], _T]:
    """Run a read-then-write method of the project under its writer lock.

    Threads of one process then cannot interleave, e.g., two saves computing the same next
    version number, or two new classes getting the same id.
    """

    @functools.wraps(method)
    def wrapper(self: Any, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        with self._db.writer:
            return method(self, *args, **kwargs)

    return wrapper


def now() -> str:
    """The current UTC time as ISO 8601 with milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def to_json(value: Any) -> str:
    """Compact, key-sorted JSON text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def from_json(text: str | None) -> Any:
    """Parse JSON text stored by :func:`to_json` (``None`` stays ``None``)."""
    return None if text is None else json.loads(text)


def _describe(err: sqlite3.Error) -> str:
    text = str(err)
    if "disk is full" in text or getattr(err, "sqlite_errorcode", 0) == 13:  # SQLITE_FULL
        return "the disk is full"
    if "readonly" in text or "read-only" in text:
        return "the database is read-only"
    if "locked" in text or "busy" in text:
        return "the database is busy (another process is writing)"
    return text


class Database:
    """One connection to ``project.sqlite`` with the house pragmas and a lock for threads.

    Parameters
    ----------
    path
        The database file.
    readonly
        Open with ``mode=ro``; every write raises :class:`ProjectError`.
    new
        The file does not exist yet (project creation); otherwise a missing or empty file is
        a :class:`ProjectReadError`.

    Notes
    -----
    ``journal_mode=WAL`` lets readers work while the writer commits. ``synchronous=FULL`` makes
    every commit durable on power loss as well as on a process kill: an annotation a person saw
    "saved" must survive, and the fsync per commit costs far less than writing the mask file.
    """

    def __init__(self, path: Path, *, readonly: bool, new: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        self._guard = threading.RLock()
        self.writer = threading.RLock()  # held by read-then-write operations (see `serialized`)
        if not new:
            try:
                empty = path.stat().st_size == 0
            except OSError as err:
                raise ProjectReadError(f"cannot read the project database ({err.strerror})", path) from err
            if empty:
                raise ProjectReadError("the project database is empty (0 bytes)", path)
        try:
            if readonly:
                con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                      isolation_level=None, check_same_thread=False)
            else:
                con = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self.con = con
            con.execute("PRAGMA busy_timeout = 5000")
            con.execute("PRAGMA foreign_keys = ON")
            if readonly:
                con.execute("PRAGMA query_only = ON")
            else:
                mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise ProjectWriteError(f"cannot switch the database to WAL mode (got {mode})", path)
            con.execute("PRAGMA synchronous = FULL")
            result = [r[0] for r in con.execute("PRAGMA quick_check").fetchall()]
        except sqlite3.Error as err:
            with contextlib.suppress(Exception):
                self.con.close()
            raise ProjectReadError(f"the project database is damaged or unreadable ({err})", path) from err
        if result != ["ok"]:
            self.con.close()
            raise ProjectReadError(f"the project database is damaged ({'; '.join(result[:3])})", path)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._guard:
            with contextlib.suppress(sqlite3.Error):
                self.con.close()

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row | tuple[Any, ...]]:
        """Run a read-only statement and return all rows."""
        with self._guard:
            try:
                return self.con.execute(sql, params).fetchall()
            except sqlite3.Error as err:
                raise ProjectReadError(f"could not read the project database ({err})", self.path) from err

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        """The first column of the first row, or ``None``."""
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    @contextlib.contextmanager
    def transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` as one unit; any error rolls back.

        SQLite errors become :class:`ProjectWriteError` ("could not <action>: <reason>").
        """
        if self.readonly:
            raise ProjectError("the project is open read-only", self.path.parent)
        with self._guard:
            try:
                self.con.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as err:
                raise ProjectWriteError(f"could not {action}: {_describe(err)}", self.path) from err
            try:
                yield self.con
                self.con.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    self.con.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise ProjectWriteError(f"could not {action}: {_describe(exc)}", self.path) from exc
                raise
