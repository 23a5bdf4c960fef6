"""The project store's API: items, classes, versions, provenance, training records, failures."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from engine.errors import LabelError, ProjectError, ProjectReadError, ProjectWriteError
from engine.items import LabelSet, Photo, Volume
from engine.store import CURRENT_VERSION, Project, Provenance

PERSON = Provenance.from_person("ana")
MODEL = Provenance.from_model("naclip-b16", "ckpt-3")


def _photo(path: Path, shape: tuple[int, int] = (30, 40)) -> Photo:
    return Photo(np.zeros((*shape, 3), np.uint8), source=path)


def _blobs(shape: tuple[int, ...], ids: list[int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    out = np.zeros(shape, np.uint8 if max(ids, default=0) < 256 else np.uint16)
    for class_id in ids:
        inside = sum(((g - rng.uniform(0, n)) / (n / 4)) ** 2 for g, n in zip(grids, shape)) <= 1
        out[inside] = class_id
    return out


@pytest.fixture
def project(tmp_path: Path) -> Project:
    with Project.create(tmp_path / "p", name="Pets", labels=LabelSet.from_text("cat; kitten, dog, sky")) as p:
        yield p


def test_create_then_open_keeps_everything(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    with Project.create(folder, name="Pets", labels=LabelSet.from_text("cat; kitten, dog")) as p:
        item = p.add_photo(_photo(folder / "img" / "a.png"))
        data = _blobs(item.shape, [1, 2])
        v1 = p.save_annotation(item.id, data, provenance=MODEL)
        v2 = p.save_annotation(item.id, np.where(data == 2, 0, data).astype(np.uint8), provenance=PERSON)
    with Project.open(folder) as p:
        assert p.name == "Pets"
        assert p.meta()["schema_version"] == str(CURRENT_VERSION)
        assert [c.name for c in p.labels()] == ["cat", "dog"] and p.labels()[1].prompt == "cat; kitten"
        (item,) = p.items()
        assert item.kind == "photo" and item.shape == (30, 40) and item.status == "corrected"
        assert item.source == folder / "img" / "a.png" and item.source_relative == Path("img/a.png")
        versions = p.versions(item.id)
        assert [v.version for v in versions] == [1, 2] and versions[1].parent == 1 and versions[0].parent is None
        assert versions[0].provenance == MODEL and versions[0].status == "predicted"
        assert versions[1].provenance == PERSON and versions[1].mask_file != v1.mask_file
        assert v2.mask_file.is_file() and v2.mask_file.parent == folder / "masks"
        np.testing.assert_array_equal(p.load_annotation(item.id, 1).data, data)
        latest = p.load_annotation(item.id)
        assert latest.data.dtype == np.uint8 and latest.labels == p.labels() and set(latest.present_ids()) == {1}


def test_create_refuses_an_existing_project(project: Project) -> None:
    with pytest.raises(ProjectError, match="already holds"):
        Project.create(project.folder)


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_open_a_folder_that_is_no_project(tmp_path: Path, make: str) -> None:
    folder = tmp_path / "nothing"
    if make == "empty":
        folder.mkdir()
    with pytest.raises(ProjectReadError, match="nothing"):
        Project.open(folder)


def test_relative_sources_follow_a_moved_project(tmp_path: Path) -> None:
    with Project.create(tmp_path / "p") as p:
        inside = p.add_photo(_photo(tmp_path / "p" / "a.png"))
        outside = p.add_photo(_photo(tmp_path / "b.png"))
        assert outside.source_relative is None
    shutil.move(tmp_path / "p", tmp_path / "moved")
    with Project.open(tmp_path / "moved") as p:
        assert p.item(inside.id).source == tmp_path / "moved" / "a.png"
        assert p.item(outside.id).source == tmp_path / "b.png"


def test_adding_the_same_source_twice_gives_the_same_item(project: Project) -> None:
    a = project.add_photo(_photo(project.folder / "a.png"))
    assert project.add_photo(_photo(project.folder / "a.png")) == a
    assert project.find_item(project.folder / "a.png") == a and len(project.items()) == 1


def test_volume_masks_keep_the_geometry(project: Project, tmp_path: Path) -> None:
    import SimpleITK as sitk

    direction = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], float)
    vol = Volume(np.zeros((5, 12, 14), np.int16), spacing=(0.5, 0.7, 2.5), origin=(10, -4, 3), direction=direction,
                 source=tmp_path / "series", series_uid="1.2.3")
    item = project.add_volume(vol, series_key="1.2.3")
    assert item.kind == "volume" and item.shape == (5, 12, 14) and item.series_uid == "1.2.3"
    data = _blobs(item.shape, [2, 3])
    record = project.save_annotation(item.id, data, provenance=MODEL)
    assert record.mask_file.name.endswith(".nii.gz")
    np.testing.assert_array_equal(project.load_annotation(item.id).data, data)
    image = sitk.ReadImage(str(record.mask_file))
    np.testing.assert_allclose(image.GetSpacing(), vol.spacing)
    np.testing.assert_allclose(image.GetOrigin(), vol.origin)
    np.testing.assert_allclose(np.reshape(image.GetDirection(), (3, 3)), direction)


def test_uint16_label_maps_round_trip(tmp_path: Path) -> None:
    labels = LabelSet()
    labels.add("a", id=300)
    with Project.create(tmp_path / "p", labels=labels) as p:
        item = p.add_photo(_photo(tmp_path / "a.png"))
        data = _blobs(item.shape, [300])
        p.save_annotation(item.id, data, provenance=PERSON)
        back = p.load_annotation(item.id).data
        assert back.dtype == np.uint16 and np.array_equal(back, data)


def test_bad_label_maps_are_refused_and_nothing_is_written(project: Project) -> None:
    item = project.add_photo(_photo(project.folder / "a.png"))
    with pytest.raises(LabelError, match="differs from item"):
        project.save_annotation(item.id, np.zeros((3, 3), np.uint8), provenance=PERSON)
    with pytest.raises(LabelError, match=r"\[9\]"):
        project.save_annotation(item.id, np.full(item.shape, 9, np.uint8), provenance=PERSON)
    with pytest.raises(LabelError, match="uint8 or uint16"):
        project.save_annotation(item.id, np.zeros(item.shape, np.float32), provenance=PERSON)
    assert project.versions(item.id) == [] and list(project.masks_dir.iterdir()) == []
    with pytest.raises(ProjectError, match="no saved annotation"):
        project.load_annotation(item.id)


def test_statuses(project: Project) -> None:
    a = project.add_photo(_photo(project.folder / "a.png"))
    b = project.add_photo(_photo(project.folder / "b.png"))
    project.save_annotation(a.id, np.zeros(a.shape, np.uint8), provenance=MODEL)
    project.set_status(b.id, "approved")
    assert [i.id for i in project.items(status="predicted")] == [a.id]
    assert [i.id for i in project.items(status=["predicted", "approved"])] == [a.id, b.id]
    project.save_annotation(a.id, np.zeros(a.shape, np.uint8), provenance=PERSON, status="approved")
    assert project.item(a.id).status == "approved"
    with pytest.raises(ProjectError, match="unknown status"):
        project.set_status(a.id, "done")


def test_class_ids_are_stable_and_never_reused(project: Project) -> None:
    assert project.labels().ids == [1, 2, 3]
    project.update_class(2, name="hound", color=(1, 2, 3))
    assert project.labels()[2].name == "hound" and project.labels()[2].color == (1, 2, 3)
    project.delete_class(3)
    new = project.add_class("tree", prompt="tree; bush")
    assert new.id == 4 and project.labels().ids == [1, 2, 4]
    assert [c.id for c in project.classes() if c.deleted] == [3]
    with pytest.raises(LabelError, match="used twice"):
        project.add_class("Cat")
    revived = project.labels()
    revived.add("sky again", id=3)
    with pytest.raises(LabelError, match="never reused"):
        project.set_labels(revived)


def test_merging_classes_remaps_masks_in_a_new_version(project: Project) -> None:
    a = project.add_photo(_photo(project.folder / "a.png"))
    b = project.add_photo(_photo(project.folder / "b.png"))
    data = _blobs(a.shape, [1, 2, 3])
    project.save_annotation(a.id, data, provenance=MODEL)
    project.save_annotation(b.id, np.where(data == 2, 0, data).astype(np.uint8), provenance=MODEL)
    new = project.delete_class(2, merge_into=1, provenance=PERSON)
    assert [(v.item_id, v.version, v.parent) for v in new] == [(a.id, 2, 1)]  # b never used class 2
    merged = project.load_annotation(a.id).data
    np.testing.assert_array_equal(merged, np.where(data == 2, 1, data))
    np.testing.assert_array_equal(project.load_annotation(a.id, 1).data, data)  # history kept
    assert project.item(a.id).status == "predicted"  # a remap does not change the status
    with pytest.raises(LabelError):
        project.delete_class(1, merge_into=1)


def test_set_labels_adds_updates_and_deletes(project: Project) -> None:
    item = project.add_photo(_photo(project.folder / "a.png"))
    project.save_annotation(item.id, _blobs(item.shape, [1, 3]), provenance=MODEL)
    labels = project.labels()
    labels.remove(3)
    labels.update(1, prompt="cat; kitten; tabby")
    labels.add("bird")
    created = project.set_labels(labels)
    assert project.labels() == labels and project.labels().ids == [1, 2, 4]
    assert len(created) == 1 and 3 not in project.load_annotation(item.id).present_ids()


def test_training_runs_and_checkpoint_lineage(project: Project) -> None:
    run = project.add_training_run("cascade", {"lr": 1e-4, "epochs": 3})
    assert run.status == "running" and run.settings == {"lr": 1e-4, "epochs": 3} and run.started
    first = project.add_checkpoint(project.folder / "ckpt" / "1.safetensors", model="m", run_id=run.id,
                                   metrics={"miou": 0.4}, active=True)
    second = project.add_checkpoint("/elsewhere/2.safetensors", model="m", parent_id=first.id, active=True)
    other = project.add_checkpoint(project.folder / "o.pt", model="other", active=True)
    assert project.active_checkpoint("m") == project.checkpoint(second.id)
    assert project.checkpoint(second.id).parent_id == first.id
    assert first.path == project.folder / "ckpt" / "1.safetensors"
    project.set_active_checkpoint(first.id)  # roll back
    assert project.active_checkpoint("m").id == first.id and project.active_checkpoint("other").id == other.id
    project.set_active_checkpoint(None, model="m")
    assert project.active_checkpoint("m") is None
    done = project.update_training_run(run.id, status="finished", metrics={"miou": 0.5})
    assert done.ended and done.metrics == {"miou": 0.5} and project.training_runs() == [done]
    with pytest.raises(ProjectError):
        project.update_training_run(run.id, status="exploded")
    recorded_after = project.add_training_run("mcanet", {}, status="failed")
    assert recorded_after.ended == recorded_after.started


def test_read_only_open_sees_commits_and_refuses_writes(project: Project) -> None:
    item = project.add_photo(_photo(project.folder / "a.png"))
    with Project.open(project.folder, readonly=True) as reader:
        assert reader.items() == [item]
        project.save_annotation(item.id, _blobs(item.shape, [1]), provenance=PERSON)
        assert len(reader.versions(item.id)) == 1  # sees the writer's commit
        with pytest.raises(ProjectError, match="read-only"):
            reader.set_status(item.id, "approved")
        with pytest.raises(ProjectError, match="read-only"):
            reader.save_annotation(item.id, _blobs(item.shape, [1]), provenance=PERSON)


def test_unreferenced_files_are_removed_on_the_next_writable_open(project: Project) -> None:
    item = project.add_photo(_photo(project.folder / "a.png"))
    kept = project.save_annotation(item.id, _blobs(item.shape, [1]), provenance=PERSON)
    project.close()
    stray = project.masks_dir / "item000001-v0002-deadbeefdeadbeef.png"
    tmp = project.masks_dir / ".item000001-v0002-0123456789abcdef.tmp-1a2b3c4d.nii.gz"
    foreign = project.masks_dir / "notes-someone-left.png"
    for path in (stray, tmp, foreign):
        path.write_bytes(b"half")
    with Project.open(project.folder, readonly=True):
        assert stray.exists()  # readers never delete
    with Project.open(project.folder):
        assert sorted(project.masks_dir.iterdir()) == sorted([kept.mask_file, foreign])  # ours only


def test_create_refuses_a_folder_whose_masks_folder_holds_files(tmp_path: Path) -> None:
    (tmp_path / "data" / "masks").mkdir(parents=True)
    (tmp_path / "data" / "masks" / "0001.png").write_bytes(b"someone's mask")
    with pytest.raises(ProjectError, match="non-empty masks/"):
        Project.create(tmp_path / "data")
    assert (tmp_path / "data" / "masks" / "0001.png").read_bytes() == b"someone's mask"
    assert not (tmp_path / "data" / "project.sqlite").exists()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_a_damaged_database_names_the_file(project: Project, damage: str) -> None:
    for k in range(30):
        project.add_photo(_photo(project.folder / f"{k}.png"))
    project.close()
    db = project.folder / "project.sqlite"
    raw = db.read_bytes()
    db.write_bytes({"garbage": b"this is not sqlite" * 100, "truncated": raw[: len(raw) // 2 + 7],
                    "empty": b""}[damage])
    with pytest.raises(ProjectReadError, match="project.sqlite"):
        with Project.open(project.folder) as p:
            p.items()


def test_a_missing_or_altered_mask_file_names_the_file(project: Project) -> None:
    item = project.add_photo(_photo(project.folder / "a.png"))
    v1 = project.save_annotation(item.id, _blobs(item.shape, [1]), provenance=PERSON)
    v2 = project.save_annotation(item.id, _blobs(item.shape, [2], seed=1), provenance=PERSON)
    v1.mask_file.unlink()
    with pytest.raises(ProjectReadError, match=v1.mask_file.name) as info:
        project.load_annotation(item.id, 1)
    assert "missing" in str(info.value)
    shutil.copy(v2.mask_file, v1.mask_file)  # a valid PNG with the wrong content
    with pytest.raises(ProjectReadError, match="checksum"):
        project.load_annotation(item.id, 1)
    unchecked = project.load_annotation(item.id, 1, verify=False).data  # what the file holds now
    np.testing.assert_array_equal(unchecked, project.load_annotation(item.id, 2).data)
    v2.mask_file.write_bytes(v2.mask_file.read_bytes()[:40])
    with pytest.raises(ProjectReadError, match=v2.mask_file.name):
        project.load_annotation(item.id)
    assert len(project.verify()) == 2


def test_a_missing_masks_folder_is_reported_on_open(project: Project) -> None:
    item = project.add_photo(_photo(project.folder / "a.png"))
    project.save_annotation(item.id, _blobs(item.shape, [1]), provenance=PERSON)
    project.close()
    shutil.rmtree(project.masks_dir)
    with pytest.raises(ProjectReadError, match="masks folder is missing"):
        Project.open(project.folder)


def test_a_full_disk_while_writing_the_mask_keeps_the_previous_version(project: Project,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    item = project.add_photo(_photo(project.folder / "a.png"))
    first = _blobs(item.shape, [1])
    project.save_annotation(item.id, first, provenance=PERSON)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ProjectWriteError, match="the disk is full"):
        project.save_annotation(item.id, _blobs(item.shape, [2]), provenance=PERSON)
    monkeypatch.undo()
    assert len(project.versions(item.id)) == 1 and len(list(project.masks_dir.iterdir())) == 1
    np.testing.assert_array_equal(project.load_annotation(item.id).data, first)


def test_a_full_database_keeps_the_previous_version_and_removes_the_new_file(project: Project) -> None:
    item = project.add_photo(_photo(project.folder / "a.png"))
    first = _blobs(item.shape, [1])
    project.save_annotation(item.id, first, provenance=PERSON)
    pages = project._db.scalar("PRAGMA page_count")
    project._db.con.execute(f"PRAGMA max_page_count = {pages}")  # SQLite now answers SQLITE_FULL
    with pytest.raises(ProjectWriteError, match="the disk is full"):
        for k in range(200):  # fill the last free page
            project.save_annotation(item.id, _blobs(item.shape, [2], seed=k), provenance=Provenance.from_person("x" * 500))
    count = len(project.versions(item.id))
    assert len(list(project.masks_dir.iterdir())) == count
    assert project.verify() == []
    with sqlite3.connect(project.folder / "project.sqlite") as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_threads_of_one_process_do_not_interleave_writes(project: Project) -> None:
    import threading

    item = project.add_photo(_photo(project.folder / "a.png"))
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for j in range(4):
                project.save_annotation(item.id, _blobs(item.shape, [1 + (k + j) % 3], seed=10 * k + j),
                                        provenance=PERSON)
                project.add_class(f"t{k}-{j}")
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [v.version for v in project.versions(item.id)] == list(range(1, 17))
    assert len(project.labels()) == 3 + 16 and project.labels().ids == list(range(1, 20))
    assert project.verify() == []


def test_an_interrupt_just_after_the_commit_keeps_the_committed_file(project: Project,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib

    item = project.add_photo(_photo(project.folder / "a.png"))
    real = project._db.transaction

    @contextlib.contextmanager
    def commit_then_interrupt(action: str):  # noqa: ANN202 - test double
        with real(action) as con:
            yield con
        raise KeyboardInterrupt

    monkeypatch.setattr(project._db, "transaction", commit_then_interrupt)
    data = _blobs(item.shape, [1])
    with pytest.raises(KeyboardInterrupt):
        project.save_annotation(item.id, data, provenance=PERSON)
    monkeypatch.undo()
    (version,) = project.versions(item.id)
    assert version.mask_file.is_file()
    np.testing.assert_array_equal(project.load_annotation(item.id).data, data)


def test_leftovers_of_a_killed_create_are_removed_on_open(project: Project) -> None:
    project.close()
    leftovers = [project.folder / ".project.sqlite.tmp-0badc0de", project.folder / ".project.sqlite.tmp-0badc0de-wal"]
    for path in leftovers:
        path.write_bytes(b"partial")
    with Project.open(project.folder):
        assert not any(p.exists() for p in leftovers)
