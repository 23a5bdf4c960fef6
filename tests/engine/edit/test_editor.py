"""LabelEditor: the one write path, sparse atoms, strokes, undo/redo exactness."""

from __future__ import annotations

import numpy as np
import pytest

from engine.edit import LabelEditor, Plane, paint
from engine.errors import LabelError


def test_apply_mask_records_only_changed_pixels() -> None:
    data = np.zeros((50, 60), np.uint8)
    data[10:20, 10:20] = 1
    ed = LabelEditor(data)
    mask = np.ones((30, 30), bool)
    atom = ed.apply_mask((slice(5, 35), slice(5, 35)), mask, 1)
    assert atom is not None
    assert atom.old.size == 30 * 30 - 100  # the 100 already-1 pixels are not recorded
    assert (data[5:35, 5:35] == 1).all()


def test_noop_edit_records_nothing() -> None:
    data = np.ones((20, 20), np.uint8)
    ed = LabelEditor(data)
    assert ed.apply_mask((slice(0, 10), slice(0, 10)), None, 1) is None
    with ed.stroke():
        paint(ed, Plane(), (5, 5), (5, 15), radius=3, value=1)
    assert not ed.history.can_undo
    assert ed.history.nbytes == 0


def test_whole_box_change_drops_the_mask() -> None:
    ed = LabelEditor(np.zeros((20, 20), np.uint8))
    atom = ed.apply_mask((slice(2, 6), slice(3, 9)), None, 4)
    assert atom is not None and atom.mask is None and atom.old.shape == (4, 6)


def test_atom_box_shrinks_to_the_change() -> None:
    ed = LabelEditor(np.zeros((100, 100), np.uint8))
    mask = np.zeros((100, 100), bool)
    mask[40:42, 50:53] = True
    atom = ed.apply_mask((slice(0, 100), slice(0, 100)), mask, 2)
    assert atom is not None and atom.key == (slice(40, 42), slice(50, 53)) and atom.mask is None


def test_stroke_is_one_step_and_undo_redo_exact() -> None:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 4, (200, 300)).astype(np.uint8)
    before = data.copy()
    ed = LabelEditor(data)
    with ed.stroke("brush"):
        pts = rng.uniform(0, 200, (20, 2))
        for a, b in zip(pts, pts[1:]):
            paint(ed, Plane(), tuple(a), tuple(b), radius=7, value=3)
    after = data.copy()
    assert len(ed.history.undo_steps) == 1
    ed.undo()
    np.testing.assert_array_equal(data, before)
    ed.redo()
    np.testing.assert_array_equal(data, after)
    ed.undo()
    np.testing.assert_array_equal(data, before)


def test_memory_is_proportional_to_the_edit_not_the_map() -> None:
    data = np.zeros((3000, 4000), np.uint8)  # 12 MB
    ed = LabelEditor(data)
    with ed.stroke():
        paint(ed, Plane(), (100, 100), (100, 3900), radius=5, value=1)  # a long thin line
    changed = int(np.count_nonzero(data))
    assert ed.history.nbytes < 4 * changed  # mask + old values, a few bytes per changed pixel
    assert ed.history.nbytes < data.nbytes / 100


def test_abort_stroke_restores() -> None:
    data = np.zeros((40, 40), np.uint8)
    ed = LabelEditor(data)
    with pytest.raises(RuntimeError):
        with ed.stroke():
            paint(ed, Plane(), (10, 10), (30, 30), radius=3, value=2)
            raise RuntimeError("boom")
    assert not data.any() and not ed.history.can_undo


def test_new_edit_clears_redo_and_depth_is_bounded() -> None:
    ed = LabelEditor(np.zeros((10, 10), np.uint8), history_limit=3)
    for i in range(5):
        ed.apply_mask((slice(i, i + 1), slice(0, 10)), None, 1)
    assert len(ed.history.undo_steps) == 3
    ed.undo()
    assert ed.history.can_redo
    ed.apply_mask((slice(9, 10), slice(0, 10)), None, 2)
    assert not ed.history.can_redo
    for _ in range(10):
        ed.undo()
    # the two oldest rows were dropped from history and stay painted
    assert ed.data[0].all() and ed.data[1].all() and not ed.data[2:].any()


def test_listeners_get_the_changed_boxes() -> None:
    ed = LabelEditor(np.zeros((30, 30), np.uint8))
    seen: list = []
    ed.connect(seen.append)
    paint(ed, Plane(), (15, 15), None, radius=2, value=1)
    assert seen and seen[0][0] == (slice(13, 18), slice(13, 18))
    ed.undo()
    assert len(seen) == 2


def test_box_is_clipped_at_the_edges() -> None:
    ed = LabelEditor(np.zeros((20, 20), np.uint8))
    paint(ed, Plane(), (0, 0), None, radius=4, value=1)
    assert ed.data[0, 0] == 1 and ed.data[4, 0] == 1 and ed.data[5, 0] == 0
    assert ed.apply_mask((slice(30, 40), slice(0, 5)), None, 1) is None


def test_volume_plane_edits() -> None:
    vol = np.zeros((10, 32, 32), np.uint16)
    ed = LabelEditor(vol)
    paint(ed, Plane(0, 4), (16, 16), None, radius=3, value=300)
    paint(ed, Plane(2, 20), (2, 16), None, radius=1, value=7)  # sagittal: rows z, cols y
    assert vol[4, 16, 16] == 300 and vol[4].astype(bool).sum() == 29  # a radius-3 disc on slice 4
    assert vol[2, 16, 20] == 7 and (vol == 7).sum() == 5 and (vol[..., 20] == 7).sum() == 5
    ed.undo()
    ed.undo()
    assert not vol.any()


def test_class_id_out_of_range() -> None:
    ed = LabelEditor(np.zeros((5, 5), np.uint8))
    with pytest.raises(LabelError):
        ed.apply_mask((slice(0, 2), slice(0, 2)), None, 256)


def test_preserve_labels() -> None:
    data = np.zeros((20, 20), np.uint8)
    data[:, :10] = 2
    ed = LabelEditor(data)
    ed.preserve_labels = True
    ed.apply_mask((slice(0, 20), slice(0, 20)), None, 1)
    assert (data[:, :10] == 2).all() and (data[:, 10:] == 1).all()


def test_array_values_and_replace_data() -> None:
    data = np.zeros((8, 8), np.uint8)
    ed = LabelEditor(data)
    values = np.arange(64, dtype=np.uint8).reshape(8, 8)
    ed.apply_mask((slice(0, 8), slice(0, 8)), values % 2 == 0, values)
    assert data[0, 2] == 2 and data[0, 1] == 0
    ed.undo()
    assert not data.any()
    ed.replace_data(np.full((8, 8), 5, np.uint8))
    assert (data == 5).all() and not ed.history.can_undo and not ed.history.can_redo


def test_plane_box_maps_changed_boxes_onto_views() -> None:
    from engine.edit import plane_box

    assert plane_box((slice(1, 3), slice(4, 6)), None, 0) == (slice(1, 3), slice(4, 6))
    key = (5, slice(10, 20), slice(30, 40))  # an axial edit on slice 5
    assert plane_box(key, 0, 5) == (slice(10, 20), slice(30, 40))
    assert plane_box(key, 0, 6) is None
    assert plane_box(key, 1, 12) == (slice(5, 6), slice(30, 40))  # seen in the coronal view
    assert plane_box(key, 2, 50) is None
