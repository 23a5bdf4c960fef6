"""Saving runs in a worker: the snapshot is the map at the moment of saving, editing goes on,
"modified" clears only when nothing changed since, and closing waits for a running save."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from tests.desktop.conftest import drag, wait_for, wait_idle
from tests.desktop.test_volume_flow import _open_ct


def _hold_saves(project) -> tuple[threading.Event, list[int]]:  # noqa: ANN001 - engine Project
    """Make ``project.save_annotation`` wait for an event; record the threads it ran on."""
    release = threading.Event()
    threads: list[int] = []
    original = project.save_annotation

    def held(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        threads.append(threading.get_ident())
        release.wait(20)  # on the GUI thread (the old, blocking save) this would stall the test
        return original(*args, **kwargs)

    project.save_annotation = held
    return release, threads


def test_save_runs_in_a_worker_and_editing_goes_on(qtbot, window, tmp_path: Path) -> None:
    w = window
    _open_ct(qtbot, w, tmp_path)
    d = w.document
    project, item_id = d.project, d.record.id
    axial = w.volume_view.views[0]
    drag(axial.canvas, [(24, 24), (24, 30)])
    snapshot = d.editor.data.copy()
    release, threads = _hold_saves(project)

    w.actions_by_id["maskwright.file.save"].trigger()  # returns while the write is held
    wait_for(qtbot, lambda: threads, timeout=10000)
    assert threads[0] != threading.get_ident()
    assert d.pending_save is not None and d.modified
    rows = list(w.job_panel.rows.values())
    assert [r.label.text().startswith("Saving") for r in rows] == [True]
    assert rows[0].cancel.isHidden()  # a save cannot be cancelled half-way
    assert not w.jobs.jobs[0].cancellable

    axial.slider.setValue(3)  # edit on while the save runs
    drag(axial.canvas, [(10, 10), (10, 16)])
    after = d.editor.data.copy()
    assert (after != snapshot).any()
    w.actions_by_id["maskwright.file.save"].trigger()  # asked again meanwhile: runs after the first
    release.set()
    wait_for(qtbot, lambda: len(project.versions(item_id)) == 2)
    wait_idle(qtbot, w)
    first, second = (project.load_annotation(item_id, v.version).data for v in project.versions(item_id))
    np.testing.assert_array_equal(first, snapshot)  # the map at the moment of saving, not later edits
    np.testing.assert_array_equal(second, after)
    assert not d.modified and d.pending_save is None
    assert d.base_version == 2 and project.versions(item_id)[1].parent == 1
    assert ("info", "Saved.") in w.notifier.history


def test_modified_stays_when_the_map_changed_during_the_save(qtbot, window, tmp_path: Path) -> None:
    w = window
    _open_ct(qtbot, w, tmp_path)
    d = w.document
    release, _threads = _hold_saves(d.project)
    axial = w.volume_view.views[0]
    drag(axial.canvas, [(24, 24), (24, 30)])
    w.save()
    drag(axial.canvas, [(5, 5), (5, 9)])
    release.set()
    wait_idle(qtbot, w)
    assert len(d.project.versions(d.record.id)) == 1
    assert d.modified  # the later stroke is not in the store yet
    assert d.journal is not None
    w.autosave_now()
    assert d.journal.entries()  # ... and the recovery journal keeps it


def test_closing_waits_for_a_running_save_and_loses_nothing(qtbot, window, tmp_path: Path) -> None:
    from engine.store import Project

    w = window
    _open_ct(qtbot, w, tmp_path)
    d = w.document
    item_id = d.record.id
    release, _threads = _hold_saves(d.project)
    axial = w.volume_view.views[0]
    drag(axial.canvas, [(24, 24), (24, 30)])
    w.save()
    drag(axial.canvas, [(5, 5), (5, 9)])
    final = d.editor.data.copy()
    threading.Timer(0.3, release.set).start()
    w.close()
    assert ("info", "Finishing the save before closing…") in w.notifier.history
    with Project.open(tmp_path / "proj", readonly=True) as project:
        assert len(project.versions(item_id)) == 2
        np.testing.assert_array_equal(project.load_annotation(item_id).data, final)


def test_marking_with_unsaved_edits_saves_in_a_worker(qtbot, window, tmp_path: Path) -> None:
    w = window
    _open_ct(qtbot, w, tmp_path)
    d = w.document
    release, threads = _hold_saves(d.project)
    drag(w.volume_view.views[0].canvas, [(24, 24), (24, 30)])
    w.actions_by_id["maskwright.edit.mark_approved"].trigger()
    wait_for(qtbot, lambda: threads, timeout=10000)
    assert threads[0] != threading.get_ident() and d.pending_save is not None
    release.set()
    wait_idle(qtbot, w)
    assert d.project.item(d.record.id).status == "approved" and not d.modified
    np.testing.assert_array_equal(d.project.load_annotation(d.record.id).data, d.editor.data)
