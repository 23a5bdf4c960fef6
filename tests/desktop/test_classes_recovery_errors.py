"""Class editing (rename, recolour, merge, delete with stable ids), crash recovery, shortcuts, error paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.desktop.conftest import drag, sample_photo, screenshot, wait_for, wait_idle


def _photo_project(qtbot, w, tmp_path: Path, classes: str = "cat, dog, sky") -> None:
    w.open_project(tmp_path / "proj", create=True)
    w.document.add_classes(classes)
    w.open_paths([sample_photo(tmp_path)])
    wait_for(qtbot, lambda: w.document.editor is not None)
    wait_idle(qtbot, w)


def test_rename_recolour_merge_delete_keep_ids(qtbot, window, tmp_path: Path, monkeypatch) -> None:
    from PySide6.QtWidgets import QColorDialog, QInputDialog

    w = window
    _photo_project(qtbot, w, tmp_path)
    data = w.document.editor.data
    w.class_panel.select_index(1)  # dog
    drag(w.photo_view.canvas, [(50, 50), (50, 80)])
    w.class_panel.select_index(2)  # sky
    drag(w.photo_view.canvas, [(150, 50), (150, 80)])
    dog_pixels = data == 2

    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("puppy", True))
    w.class_panel.select_index(1)
    w.class_panel.buttons["Rename"].click()
    assert w.document.labels[2].name == "puppy"
    monkeypatch.setattr(QColorDialog, "getColor", lambda *a, **k: __import__("PySide6.QtGui").QtGui.QColor(1, 2, 3))
    w.class_panel.buttons["Colour"].click()
    assert w.document.labels[2].color == (1, 2, 3)
    assert w.photo_view.canvas.overlay.lut[2] == (0xFF << 24) | (1 << 16) | (2 << 8) | 3

    # merge puppy into cat (with confirmation): pixels change class, id 2 is gone for good
    monkeypatch.setattr(QInputDialog, "getItem", lambda *a, **k: ("cat", True))
    asked = []
    w.class_panel.confirm = lambda text: asked.append(text) or True  # type: ignore[method-assign]
    w.class_panel.buttons["Merge"].click()
    assert asked and "Merge" in asked[0]
    assert 2 not in w.document.labels and (w.document.editor.data[dog_pixels] == 1).all()

    # delete sky, but say no first: nothing happens
    w.class_panel.confirm = lambda text: False  # type: ignore[method-assign]
    w.class_panel.select_index(1)
    w.class_panel.buttons["Delete"].click()
    assert 3 in w.document.labels
    w.class_panel.confirm = lambda text: True  # type: ignore[method-assign]
    w.class_panel.buttons["Delete"].click()
    assert 3 not in w.document.labels and not (w.document.editor.data == 3).any()
    added = w.document.add_classes("tree")
    assert added == [4]  # ids are never reused
    screenshot(w, "04-classes-edited")


def test_crash_recovery_offers_unsaved_edits(qtbot, tmp_path: Path) -> None:
    from desktop.main_window import MainWindow
    from desktop.settings import Settings

    cfg = tmp_path / "config"
    w1 = MainWindow(Settings.load(cfg))
    qtbot.addWidget(w1)
    w1.ask = lambda text: True  # type: ignore[method-assign]
    _photo_project(qtbot, w1, tmp_path, "cat")
    drag(w1.photo_view.canvas, [(40, 40), (60, 90)])
    painted = w1.document.editor.data.copy()
    assert w1.document.modified
    w1.autosave_now()
    # simulate a crash: no save, the project lock released as a dead process would leave it
    w1.autosave.stop()
    w1.document.project.close()
    w1.document.project = None
    w1.document.undo_stack.blockSignals(True)
    w1.document.blockSignals(True)

    w2 = MainWindow(Settings.load(cfg))
    qtbot.addWidget(w2)
    questions = []
    w2.ask = lambda text: questions.append(text) or True  # type: ignore[method-assign]
    w2.open_project(tmp_path / "proj")
    wait_for(qtbot, lambda: w2.document.editor is not None)
    wait_idle(qtbot, w2)
    assert questions and "unsaved" in questions[0]
    np.testing.assert_array_equal(w2.document.editor.data, painted)
    assert w2.document.journal.entries() == []
    w2.close()


def test_shortcuts_are_editable_and_remembered(qtbot, window, tmp_path: Path) -> None:
    from desktop.settings import Settings
    from desktop.shortcuts_dialog import ShortcutsDialog

    w = window
    dialog = ShortcutsDialog(w)
    dialog.set_shortcut("maskwright.tools.brush", "Ctrl+Shift+B")
    dialog.apply()
    assert w.actions_by_id["maskwright.tools.brush"].shortcut().toString() == "Ctrl+Shift+B"
    again = Settings.load(w.settings.folder)
    assert again.shortcuts == {"maskwright.tools.brush": "Ctrl+Shift+B"}
    from desktop.main_window import MainWindow

    w2 = MainWindow(again)
    qtbot.addWidget(w2)
    assert w2.actions_by_id["maskwright.tools.brush"].shortcut().toString() == "Ctrl+Shift+B"
    w2.close()


def test_every_action_has_a_namespaced_id_and_tools_have_keys() -> None:
    from desktop.actions import all_actions

    actions = all_actions()
    assert all(a.id.startswith("maskwright.") and a.id.count(".") >= 2 for a in actions)
    tools = [a for a in actions if a.group == "tools"]
    assert len(tools) == 6 and all(a.shortcut for a in tools)


def test_errors_show_a_message_not_a_traceback(qtbot, window, tmp_path: Path) -> None:
    w = window
    # no project yet
    w.run_action(lambda win: win.open_paths([tmp_path]))
    assert "project" in w.notifier.last_error
    w.open_project(tmp_path / "proj", create=True)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    w.open_paths([bad, notes])
    wait_idle(qtbot, w)
    errors = [t for level, t in w.notifier.history if level == "error"]
    assert any("broken.png" in e for e in errors), errors
    assert any("notes.txt" in e for e in errors), errors
    assert not any("Traceback" in e for e in errors)
    assert w.notifier.box is not None and w.notifier.box.isVisible()
    assert w.notifier.box.text() == errors[-1]
    # a damaged DICOM folder
    dcm = tmp_path / "dcm"
    dcm.mkdir()
    (dcm / "x.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"garbage" * 20)
    w.open_paths([dcm])
    wait_idle(qtbot, w)
    assert w.notifier.last_error and "Traceback" not in w.notifier.last_error
    # opening a project that is not one
    w.run_action(lambda win: win.open_project(tmp_path / "nowhere"))
    assert "nowhere" in w.notifier.last_error
    # pre-annotation and interpolation without what they need
    w.run_action(lambda win: win.interpolate())
    assert "volume" in w.notifier.last_error
    # a worker that fails with an unexpected error is reported too
    w.jobs.submit("Boom", lambda p, c: 1 / 0)
    wait_idle(qtbot, w)
    assert "ZeroDivisionError" in w.notifier.last_error and "Boom" in w.notifier.last_error
    screenshot(w, "05-error-message")


def test_cancel_a_job_from_the_job_panel(qtbot, window) -> None:
    import threading

    w = window
    started = threading.Event()

    def slow(progress, cancel):
        started.set()
        for k in range(500):
            cancel.raise_if_cancelled()
            progress(k, 500, "working")
            threading.Event().wait(0.01)
        return "finished"

    results = []
    job = w.jobs.submit("Slow job", slow, on_done=results.append)
    assert started.wait(10)
    row = w.job_panel.rows[job.id]
    qtbot.waitUntil(lambda: row.bar.maximum() == 500)
    row.cancel.click()
    wait_idle(qtbot, w)
    assert results == [] and "cancelled" in w.notifier.history[-1][1]
    assert not w.job_panel.rows


def test_an_edit_error_is_a_message_and_the_tools_keep_working(qtbot, window, tmp_path: Path) -> None:
    w = window
    _photo_project(qtbot, w, tmp_path, "cat")
    data = w.document.editor.data
    w.document.active_class = 1
    original = w.tools._dab  # simulate an edit that fails half-way through a stroke

    def broken(*args):
        raise ValueError("brush radius must be positive")

    w.tools._dab = broken  # type: ignore[method-assign]
    drag(w.photo_view.canvas, [(40, 40), (60, 90)])
    assert "brush radius" in w.notifier.last_error and "Editing" in w.notifier.last_error
    assert not data.any() and not w.document.editor.history.in_stroke
    w.tools._dab = original  # type: ignore[method-assign]
    w.tools.options.radius = 4.0
    drag(w.photo_view.canvas, [(40, 40), (60, 90)])
    assert data.any() and w.document.undo_stack.count() == 1
