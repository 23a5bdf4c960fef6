"""Schema versions: a hand-built version-1 project migrates with its data; newer ones are refused."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from engine.errors import SchemaVersionError
from engine.io.masks import write_mask_png
from engine.store import CURRENT_VERSION, Project, Provenance, schema


def _make_v1_project(folder: Path) -> np.ndarray:
    """A project exactly as schema 1 stored it: SQL of version 1, one photo, one version."""
    (folder / "masks").mkdir(parents=True)
    data = np.zeros((20, 30), np.uint8)
    data[2:8, 3:12] = 1
    data[10:18, 5:25] = 2
    write_mask_png(folder / "masks" / "item000001-v0001-0123456789abcdef.png", data)
    con = sqlite3.connect(folder / "project.sqlite")
    con.executescript(schema.SCHEMA_V1)
    con.executescript("""
        PRAGMA journal_mode = WAL;
        INSERT INTO meta VALUES ('app_version', '0.0.9'), ('name', 'old'), ('created', '2025-01-01T00:00:00Z'),
                                ('next_class_id', '4');
        INSERT INTO classes VALUES (1, 'cat', 'cat; kitten', '#1f77b4', 0), (2, 'dog', 'dog', '#ff7f0e', 0),
                                   (3, 'gone', 'gone', '#2ca02c', 1);
        INSERT INTO items (id, kind, source_path, source_relpath, shape, name, added, status)
            VALUES (1, 'photo', '/data/a.png', NULL, '[20,30]', 'a.png', '2025-01-01T00:00:00Z', 'corrected');
        INSERT INTO versions VALUES (1, 1, 'item000001-v0001-0123456789abcdef.png', 'person', '', '', 'ana',
                                     '2025-01-01T00:00:00Z', NULL, 'corrected');
        INSERT INTO training_runs (recipe, settings, status, started) VALUES ('cascade', '{"lr":0.001}', 'finished', 'x');
        INSERT INTO checkpoints (run_id, model, path, created) VALUES (1, 'm', 'ckpt/1.pt', 'x');
    """)
    con.commit()
    con.close()
    return data


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_version_1_project_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    data = _make_v1_project(folder)
    with Project.open(folder) as project:
        assert project.meta()["schema_version"] == str(CURRENT_VERSION) == "2"
        assert project.meta()["app_version"] != "0.0.9" and project.name == "old"
        assert [c.name for c in project.labels()] == ["cat", "dog"] and project.labels().next_id == 4
        (item,) = project.items()
        assert item.status == "corrected" and item.shape == (20, 30) and item.geometry is None
        (version,) = project.versions(item.id)
        assert version.checksum is None and version.dtype == "uint8" and version.provenance.user == "ana"
        np.testing.assert_array_equal(project.load_annotation(item.id).data, data)  # no checksum to check
        assert project.checkpoints()[0].path == folder / "ckpt" / "1.pt"
        assert project.training_runs()[0].settings == {"lr": 0.001}
        new = project.save_annotation(item.id, data, provenance=Provenance.from_person("bo"))
        assert new.version == 2 and new.checksum is not None
    with Project.open(folder, readonly=True) as project:
        assert len(project.versions(1)) == 2


def test_a_read_only_open_of_an_old_project_asks_for_an_upgrade(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    _make_v1_project(folder)
    before = _digest(folder / "project.sqlite")
    with pytest.raises(SchemaVersionError, match="open it once for writing"):
        Project.open(folder, readonly=True)
    assert _digest(folder / "project.sqlite") == before


@pytest.mark.parametrize("readonly", [False, True])
def test_a_project_from_a_newer_version_is_refused_unchanged(tmp_path: Path, readonly: bool) -> None:
    folder = tmp_path / "new"
    Project.create(folder).close()
    con = sqlite3.connect(folder / "project.sqlite")
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(CURRENT_VERSION + 1),))
    con.commit()
    con.close()
    before = _digest(folder / "project.sqlite")
    with pytest.raises(SchemaVersionError, match="newer Maskwright") as info:
        Project.open(folder, readonly=readonly)
    assert "project.sqlite" in str(info.value)
    assert _digest(folder / "project.sqlite") == before
    assert not (folder / "project.sqlite-wal").exists() or (folder / "project.sqlite-wal").stat().st_size == 0


def test_a_failing_migration_leaves_the_old_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "old"
    _make_v1_project(folder)

    def broken(con: sqlite3.Connection) -> None:
        con.execute("ALTER TABLE versions ADD COLUMN checksum TEXT")
        raise sqlite3.OperationalError("simulated failure half-way")

    monkeypatch.setattr(schema, "MIGRATIONS", (broken,))
    with pytest.raises(SchemaVersionError, match="could not upgrade the project from schema 1 to 2"):
        Project.open(folder)
    monkeypatch.undo()
    con = sqlite3.connect(folder / "project.sqlite")
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "1"
    assert "checksum" not in [r[1] for r in con.execute("PRAGMA table_info(versions)")]
    con.close()
    with Project.open(folder) as project:  # and the real migration still works afterwards
        assert project.meta()["schema_version"] == str(CURRENT_VERSION)


def test_a_new_project_is_built_by_the_same_migrations(tmp_path: Path) -> None:
    with Project.create(tmp_path / "p") as project:
        assert project.meta()["schema_version"] == str(schema.CURRENT_VERSION)
    con = sqlite3.connect(tmp_path / "p" / "project.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"checksum", "dtype"} <= {r[1] for r in con.execute("PRAGMA table_info(versions)")}
    con.close()
