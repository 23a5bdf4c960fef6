"""Pre-annotation with a tiny random-weight CLIP through the window; review; uncertainty ranking."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.desktop.conftest import sample_photo, screenshot, wait_for, wait_idle
from tests.engine.openvocab._tiny import TINY_CONFIG, TINY_SEED

TINY_PHOTO_MODEL = {"model": "tiny-test-vit", "clip_config": TINY_CONFIG, "seed": TINY_SEED,
                    "segment": {"short_side": 64, "window": 32, "stride": 16, "templates": ["a photo of a {}."],
                                "background": False}}


def test_preannotate_review_and_next_to_correct(qtbot, window, tmp_path: Path) -> None:
    w = window
    w.settings.set("model.photo", TINY_PHOTO_MODEL)
    w.settings.set("device", "cpu")
    w.open_project(tmp_path / "proj", create=True)
    w.open_paths([sample_photo(tmp_path, "chelsea"), sample_photo(tmp_path, "coffee")])
    wait_for(qtbot, lambda: len(w.document.items()) == 2 and w.document.editor is not None)
    wait_idle(qtbot, w)
    w.document.add_classes("cat, cup, table")
    w.actions_by_id["maskwright.model.preannotate_all"].trigger()
    wait_for(qtbot, lambda: all(r.status == "predicted" for r in w.document.items()), timeout=240000)
    wait_idle(qtbot, w)
    project = w.document.project
    for r in project.items():
        v = project.latest_version(r.id)
        assert v.provenance.source == "model" and v.provenance.model == "tiny-test-vit"
        assert set(np.unique(project.load_annotation(r.id).data)) <= {1, 2, 3}
    shown = w.document.record.id
    data = w.document.editor.data
    np.testing.assert_array_equal(data, project.load_annotation(shown).data)
    assert set(w.document.scores) == {r.id for r in project.items()}
    assert w.photo_view.canvas._heat is not None  # the uncertainty overlay is on
    screenshot(w, "03-photo-preannotated")

    # reject the prediction for the active class: its pixels become unlabelled, one undo step
    cid = int(np.bincount(data.ravel()).argmax())
    w.document.active_class = cid
    w.actions_by_id["maskwright.edit.reject_class"].trigger()
    assert not (data == cid).any() and w.document.undo_stack.count() == 1
    w.actions_by_id["maskwright.edit.accept_class"].trigger()
    np.testing.assert_array_equal(data, project.load_annotation(shown).data)
    w.actions_by_id["maskwright.edit.mark_approved"].trigger()
    wait_idle(qtbot, w)  # unsaved edits are saved (with the status) in a worker
    assert project.item(shown).status == "approved"

    # next to correct: the other item (the most uncertain one not approved)
    w.actions_by_id["maskwright.edit.next_to_correct"].trigger()
    wait_for(qtbot, lambda: w.document.record is not None and w.document.record.id != shown)
    wait_idle(qtbot, w)
    w.actions_by_id["maskwright.edit.mark_corrected"].trigger()
    w.actions_by_id["maskwright.edit.next_to_correct"].trigger()
    assert "every item" in w.notifier.history[-1][1].lower()

    # the ranking and the overlay survive a restart (kept beside the settings, per prediction version)
    scores = dict(w.document.scores)
    w.close_project()
    w.open_project(tmp_path / "proj")
    wait_for(qtbot, lambda: w.document.editor is not None)
    wait_idle(qtbot, w)
    assert w.document.scores.keys() == scores.keys()
    assert all(abs(w.document.scores[k] - scores[k]) < 1 / 255 for k in scores)
    assert w.photo_view.canvas._heat is not None


def test_an_activated_photo_checkpoint_is_in_the_next_model_config(qtbot, window, tmp_path: Path) -> None:
    """The config is read at each run, so a checkpoint made active applies without a restart."""
    w = window
    w.settings.set("model.photo", TINY_PHOTO_MODEL)
    w.activate_checkpoint("photo", tmp_path / "head.safetensors", "tiny-test-vit")
    cfg = w.model_config("photo")
    assert cfg["checkpoint"].endswith("head.safetensors") and cfg["clip_config"] == TINY_CONFIG


def test_whole_photo_flow_preannotate_paint_undo_redo_save_reopen(qtbot, window, tmp_path: Path) -> None:
    """The issue's flow in one go: new project, sample photo, classes, tiny-model pre-annotation,
    paint, undo, redo, save, reopen, same masks."""
    from PySide6.QtCore import Qt

    from tests.desktop.conftest import drag

    w = window
    w.settings.set("model.photo", TINY_PHOTO_MODEL)
    w.settings.set("device", "cpu")
    w.open_project(tmp_path / "proj", create=True)
    w.open_paths([sample_photo(tmp_path, "astronaut")])
    wait_for(qtbot, lambda: w.document.editor is not None)
    wait_idle(qtbot, w)
    qtbot.keyClicks(w.class_panel.entry, "person; astronaut, flag, sky")
    qtbot.keyClick(w.class_panel.entry, Qt.Key.Key_Return)
    w.actions_by_id["maskwright.model.preannotate"].trigger()
    item_id = w.document.record.id
    wait_for(qtbot, lambda: w.document.project.item(item_id).status == "predicted", timeout=240000)
    wait_idle(qtbot, w)
    predicted = w.document.editor.data.copy()
    w.class_panel.select_index(2)  # sky
    w.options_panel.size.setValue(12)
    drag(w.photo_view.canvas, [(30, 30), (40, 200), (50, 400)])
    painted = w.document.editor.data.copy()
    assert (painted != predicted).any()
    w.actions_by_id["maskwright.edit.undo"].trigger()
    np.testing.assert_array_equal(w.document.editor.data, predicted)
    w.actions_by_id["maskwright.edit.redo"].trigger()
    np.testing.assert_array_equal(w.document.editor.data, painted)
    w.actions_by_id["maskwright.file.save"].trigger()
    wait_idle(qtbot, w)  # the save runs in a worker
    versions = w.document.project.versions(item_id)
    assert [v.provenance.source for v in versions] == ["model", "person"] and versions[1].parent == 1
    w.close_project()
    w.open_project(tmp_path / "proj")
    wait_for(qtbot, lambda: w.document.editor is not None)
    wait_idle(qtbot, w)
    np.testing.assert_array_equal(w.document.editor.data, painted)
    assert w.document.project.item(item_id).status == "corrected"
