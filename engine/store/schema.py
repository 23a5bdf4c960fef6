"""The SQLite schema of a project and its migrations.

The schema version lives in ``meta`` (key ``schema_version``). A new project gets
:data:`SCHEMA_V1` and then every migration in :data:`MIGRATIONS` in order, exactly as an old
project is upgraded, so there is one path to the current schema and it is always exercised.
Each migration is a function of a connection that runs inside the caller's transaction; the
version bump is committed together with it, so a kill mid-migration leaves the old schema.

History
-------
1. meta, items, classes, versions, training_runs, checkpoints.
2. ``versions.checksum`` and ``versions.dtype`` (verify mask content on load), ``items.geometry``
   (volume grids, so masks can be written without re-reading the DICOM), an index on versions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from engine.errors import ProjectReadError, SchemaVersionError

__all__ = ["SCHEMA_V1", "MIGRATIONS", "CURRENT_VERSION", "read_version", "check_supported", "migrate", "create_schema"]

SCHEMA_V1 = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE items (
    id             INTEGER PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('photo', 'volume')),
    source_path    TEXT NOT NULL,
    source_relpath TEXT,
    series_uid     TEXT NOT NULL DEFAULT '',
    series_key     TEXT NOT NULL DEFAULT '',
    shape          TEXT NOT NULL,
    name           TEXT NOT NULL,
    added          TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'new'
                   CHECK (status IN ('new', 'predicted', 'corrected', 'approved')),
    UNIQUE (source_path, series_key)
);
CREATE TABLE classes (
    id      INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 65535),
    name    TEXT NOT NULL,
    prompt  TEXT NOT NULL,
    color   TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE versions (
    item_id    INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    mask_file  TEXT NOT NULL UNIQUE,
    source     TEXT NOT NULL CHECK (source IN ('model', 'person')),
    model      TEXT NOT NULL DEFAULT '',
    checkpoint TEXT NOT NULL DEFAULT '',
    user       TEXT NOT NULL DEFAULT '',
    created    TEXT NOT NULL,
    parent     INTEGER,
    status     TEXT NOT NULL,
    PRIMARY KEY (item_id, version)
);
CREATE TABLE training_runs (
    id       INTEGER PRIMARY KEY,
    recipe   TEXT NOT NULL,
    settings TEXT NOT NULL DEFAULT '{}',
    status   TEXT NOT NULL,
    started  TEXT,
    ended    TEXT,
    metrics  TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE checkpoints (
    id        INTEGER PRIMARY KEY,
    run_id    INTEGER REFERENCES training_runs (id),
    model     TEXT NOT NULL,
    path      TEXT NOT NULL,
    metrics   TEXT NOT NULL DEFAULT '{}',
    parent_id INTEGER REFERENCES checkpoints (id),
    active    INTEGER NOT NULL DEFAULT 0,
    created   TEXT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('schema_version', '1');
"""


def _v1_to_v2(con: sqlite3.Connection) -> None:
    con.execute("ALTER TABLE versions ADD COLUMN checksum TEXT")
    con.execute("ALTER TABLE versions ADD COLUMN dtype TEXT NOT NULL DEFAULT 'uint8'")
    con.execute("ALTER TABLE items ADD COLUMN geometry TEXT")
    con.execute("CREATE INDEX IF NOT EXISTS versions_by_item ON versions (item_id, version)")
    con.execute("CREATE INDEX IF NOT EXISTS items_by_status ON items (status)")


# MIGRATIONS[k] upgrades a database from version k + 1 to version k + 2.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1_to_v2,)
CURRENT_VERSION = len(MIGRATIONS) + 1


def read_version(con: sqlite3.Connection, path: Path) -> int:
    """The schema version recorded in ``meta``.

    Raises :class:`ProjectReadError` when the database has no ``meta`` table (not a project) and
    :class:`SchemaVersionError` when the version is absent or unreadable.
    """
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.Error as err:
        raise ProjectReadError(f"not a Maskwright project database ({err})", path) from err
    if row is None:
        raise SchemaVersionError("the database has no schema version", path)
    try:
        return int(row[0])
    except ValueError as err:
        raise SchemaVersionError(f"unreadable schema version {row[0]!r}", path) from err


def check_supported(version: int, path: Path) -> None:
    """Raise :class:`SchemaVersionError` for a project written by a newer Maskwright."""
    if version > CURRENT_VERSION:
        raise SchemaVersionError(
            f"this project uses schema version {version}, written by a newer Maskwright; this one "
            f"reads versions up to {CURRENT_VERSION}. Update Maskwright to open it (nothing was changed)",
            path,
        )
    if version < 1:
        raise SchemaVersionError(f"invalid schema version {version}", path)


def migrate(con: sqlite3.Connection, path: Path) -> tuple[int, int]:
    """Bring the database up to :data:`CURRENT_VERSION` in one transaction.

    Returns ``(old_version, new_version)``. The connection must be in autocommit mode
    (``isolation_level=None``); this function issues ``BEGIN IMMEDIATE`` / ``COMMIT`` itself.
    """
    con.execute("BEGIN IMMEDIATE")
    try:
        old = read_version(con, path)
        check_supported(old, path)
        for number, step in enumerate(MIGRATIONS[old - 1:], start=old):
            try:
                step(con)
            except sqlite3.Error as err:
                raise SchemaVersionError(f"could not upgrade the project from schema {number} to {number + 1} "
                                         f"({err}); nothing was changed", path) from err
        if old != CURRENT_VERSION:
            con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(CURRENT_VERSION),))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return old, CURRENT_VERSION


def create_schema(con: sqlite3.Connection) -> None:
    """Write schema 1 into an empty database (the caller then runs :func:`migrate`)."""
    con.executescript("BEGIN;" + SCHEMA_V1 + "COMMIT;")
