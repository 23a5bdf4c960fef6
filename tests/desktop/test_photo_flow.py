"""The photo flow through the real main window: project, photo, classes, paint, undo/redo, save, reopen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt

from tests.desktop.conftest import drag, sample_photo, screenshot, wait_for, wait_idle


def test_new_project_photo_classes_paint_undo_redo_save_reopen(qtbot, window, tmp_path: Path) -> None:
    w = window
    screenshot(w, "00-empty")
    w.open_project(tmp_path / "proj", create=True)
    photo = sample_photo(tmp_path)
    w.open_paths([photo])
    wait_for(qtbot, lambda: w.document.editor is not None)
    wait_idle(qtbot, w)
    assert w.stack.currentWidget() is w.photo_view
    assert w.browser.list.count() == 1 and w.browser.has_thumbnail(w.document.record.id)

    qtbot.keyClicks(w.class_panel.entry, "cat; kitten, dog, sky")
    qtbot.keyClick(w.class_panel.entry, Qt.Key.Key_Return)
    assert [c.name for c in w.document.labels] == ["cat", "dog", "sky"]
    assert w.document.labels.find("cat").prompt == "cat; kitten"
    assert w.class_panel.list.count() == 3

    canvas = w.photo_view.canvas
    w.tools.set_tool("brush")
    w.options_panel.size.setValue(10)
    drag(canvas, [(100, 100), (110, 150), (120, 200), (130, 250)])
    data = w.document.editor.data
    painted = data.copy()
    assert (painted == 1).sum() > 1000 and set(np.unique(painted)) == {0, 1}
    assert w.document.undo_stack.count() == 1  # the whole drag is one undo step
    assert w.document.modified and w.windowTitle().endswith("*")
    screenshot(w, "01-photo-painted")

    w.class_panel.select_index(1)  # dog
    assert w.document.active_class == 2
    drag(canvas, [(250, 300), (250, 380)])
    two = data.copy()
    assert (two == 2).sum() > 0
    w.actions_by_id["maskwright.edit.undo"].trigger()
    np.testing.assert_array_equal(data, painted)
    w.actions_by_id["maskwright.edit.undo"].trigger()
    assert not data.any()
    w.actions_by_id["maskwright.edit.redo"].trigger()
    w.actions_by_id["maskwright.edit.redo"].trigger()
    np.testing.assert_array_equal(data, two)

    w.actions_by_id["maskwright.file.save"].trigger()
    wait_idle(qtbot, w)  # the save runs in a worker
    assert not w.document.modified
    item_id = w.document.record.id
    assert w.document.project.item(item_id).status == "corrected"
    w.close_project()

    w.open_project(tmp_path / "proj")
    wait_for(qtbot, lambda: w.document.editor is not None)
    wait_idle(qtbot, w)
    np.testing.assert_array_equal(w.document.editor.data, two)
    assert [c.name for c in w.document.labels] == ["cat", "dog", "sky"]
    assert str((tmp_path / "proj").resolve()) in w.settings.recent


def test_overlay_cache_updates_only_the_painted_box(qtbot, window, tmp_path: Path) -> None:
    w = window
    w.open_project(tmp_path / "proj", create=True)
    w.document.add_classes("cat")
    w.open_paths([sample_photo(tmp_path)])
    wait_for(qtbot, lambda: w.document.editor is not None)
    overlay = w.photo_view.canvas.overlay
    before = overlay.buffer.copy()
    w.options_panel.size.setValue(5)
    drag(w.photo_view.canvas, [(50, 50), (50, 60)])
    changed = np.argwhere(overlay.buffer != before)
    assert changed.size and changed[:, 0].min() >= 44 and changed[:, 0].max() <= 56
    assert (overlay.buffer[w.document.editor.data == 1] != 0).all()
    # outline mode shows the boundary only; hiding the class makes it transparent
    w.options_panel.outline.setChecked(True)
    assert overlay.buffer[50, 55] == 0 and overlay.buffer[45, 55] != 0
    w.options_panel.outline.setChecked(False)
    w.class_panel.list.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert not overlay.buffer.any()


def test_tools_polygon_fill_and_eraser(qtbot, window, tmp_path: Path) -> None:
    from tests.desktop.conftest import click

    w = window
    w.open_project(tmp_path / "proj", create=True)
    w.document.add_classes("cat, dog")
    w.open_paths([sample_photo(tmp_path)])
    wait_for(qtbot, lambda: w.document.editor is not None)
    canvas = w.photo_view.canvas
    data = w.document.editor.data
    w.actions_by_id["maskwright.tools.polygon"].trigger()
    assert w.tools.tool == "polygon"
    for r, c in [(20, 20), (20, 80), (80, 80)]:
        click(canvas, r, c)
    click(canvas, 80, 20, double=True)
    assert (data == 1).sum() > 3000 and data[50, 50] == 1
    w.tools.set_tool("eraser")
    drag(canvas, [(50, 50), (50, 51)])
    assert data[50, 50] == 0
    w.class_panel.select_index(1)
    w.tools.set_tool("fill")
    click(canvas, 50, 50)  # fills the erased hole with class 2 (connected zeros inside the square)
    assert data[50, 50] == 2 and data[200, 300] == 0
    assert w.document.undo_stack.count() == 3
    w.tools.set_tool("wand")
    w.options_panel.low.setValue(0)
    w.options_panel.high.setValue(255)
    click(canvas, 250, 400)
    assert w.document.undo_stack.count() == 4


def test_painting_before_any_class_says_so(qtbot, window, tmp_path: Path) -> None:
    w = window
    w.open_project(tmp_path / "proj", create=True)
    w.open_paths([sample_photo(tmp_path)])
    wait_for(qtbot, lambda: w.document.editor is not None)
    drag(w.photo_view.canvas, [(10, 10), (20, 20)])
    assert not w.document.editor.data.any()
    assert "class" in w.notifier.history[-1][1].lower()


def test_zoom_with_the_wheel_fit_and_one_to_one(qtbot, window, tmp_path: Path) -> None:
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    w = window
    w.open_project(tmp_path / "proj", create=True)
    w.open_paths([sample_photo(tmp_path)])
    wait_for(qtbot, lambda: w.document.editor is not None)
    canvas = w.photo_view.canvas
    fitted = canvas.scale
    under = canvas.to_image(QPointF(200, 150))
    ev = QWheelEvent(QPointF(200, 150), QPointF(200, 150), QPoint(0, 0), QPoint(0, 240), Qt.MouseButton.NoButton,
                     Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas, ev)
    assert abs(canvas.scale - fitted * 1.5625) < 1e-6
    after = canvas.to_image(QPointF(200, 150))
    assert abs(after[0] - under[0]) < 1e-6 and abs(after[1] - under[1]) < 1e-6  # zoom keeps the point
    w.actions_by_id["maskwright.view.one_to_one"].trigger()
    assert canvas.scale == 1.0
    w.actions_by_id["maskwright.view.fit"].trigger()
    assert abs(canvas.scale - fitted) < 1e-9
    w.options_panel.opacity.setValue(20)
    assert abs(canvas.opacity - 0.2) < 1e-9
