"""Paint tools: brush/eraser, hardness, polygon, flood fill, magic wand, threshold."""

from __future__ import annotations

import numpy as np

from engine.edit import (LabelEditor, Plane, brush_dab, erase, fill_polygon, flood_fill, magic_wand, paint,
                         polygon_mask, threshold_fill)


def test_brush_disc_area() -> None:
    _, mask = brush_dab((50.0, 50.0), 10.0)
    assert abs(int(mask.sum()) - np.pi * 100) < 0.08 * np.pi * 100


def test_soft_brush_is_a_dithered_subset_of_the_hard_one() -> None:
    box_h, hard = brush_dab((50.0, 50.0), 12.0, 1.0)
    box_s, soft = brush_dab((50.0, 50.0), 12.0, 0.3)
    assert box_h == box_s
    assert (soft <= hard).all() and soft.sum() < hard.sum()
    solid = LabelEditor(np.zeros((100, 100), np.uint8))
    paint(solid, Plane(), (50.0, 50.0), None, radius=12.0 * 0.3, value=1)
    feathered = LabelEditor(np.zeros((100, 100), np.uint8))
    paint(feathered, Plane(), (50.0, 50.0), None, radius=12.0, hardness=0.3, value=1)
    assert feathered.data[solid.data == 1].all()  # the inner disc is solid


def test_tiny_brush_paints_one_pixel() -> None:
    ed = LabelEditor(np.zeros((10, 10), np.uint8))
    paint(ed, Plane(), (3.4, 6.6), None, radius=0.2, value=1)
    assert ed.data.sum() == 1 and ed.data[3, 7] == 1


def test_long_fast_drag_is_continuous_and_small_atoms() -> None:
    ed = LabelEditor(np.zeros((300, 300), np.uint8))
    with ed.stroke():
        n = paint(ed, Plane(), (10, 10), (290, 290), radius=2, value=1)
    assert n > 5
    assert all(ed.data[i, i] == 1 for i in range(10, 291))
    step = ed.history.undo_steps[0]
    assert max(a.old.size + (a.mask.size if a.mask is not None else 0) for a in step.atoms) < 300 * 20


def test_eraser_only_one_class() -> None:
    data = np.zeros((20, 20), np.uint8)
    data[:, :10] = 1
    data[:, 10:] = 2
    ed = LabelEditor(data)
    erase(ed, Plane(), (10, 10), None, radius=5, only=2)
    assert (data[:, :10] == 1).all() and data[10, 12] == 0
    erase(ed, Plane(), (10, 10), None, radius=5)
    assert data[10, 8] == 0


def test_polygon_fill() -> None:
    ed = LabelEditor(np.zeros((50, 50), np.uint8))
    assert fill_polygon(ed, Plane(), [(10, 10), (10, 30), (30, 30), (30, 10)], value=3)
    assert (ed.data[10:31, 10:31] == 3).all() and ed.data.sum() == 3 * 21 * 21
    assert polygon_mask([(0, 0), (1, 1)]) is None
    assert not fill_polygon(ed, Plane(), [(10, 10), (10, 30), (30, 30), (30, 10)], value=3)  # no-op


def test_flood_fill_stays_inside_the_boundary() -> None:
    data = np.zeros((40, 40), np.uint8)
    data[10, :] = 1  # a wall
    ed = LabelEditor(data)
    assert flood_fill(ed, Plane(), (30, 5), value=2)
    assert (data[11:] == 2).all() and (data[:10] == 0).all()
    assert not flood_fill(ed, Plane(), (100, 5), value=2)
    ed.undo()
    assert (data[11:] == 0).all()


def test_flood_fill_connectivity() -> None:
    data = np.zeros((5, 5), np.uint8)
    data[0, 0] = data[1, 1] = 1
    ed = LabelEditor(data.copy())
    flood_fill(ed, Plane(), (0, 0), value=3, connectivity=1)
    assert ed.data[1, 1] == 1
    ed = LabelEditor(data.copy())
    flood_fill(ed, Plane(), (0, 0), value=3, connectivity=2)
    assert ed.data[1, 1] == 3


def test_magic_wand_hu_range_on_a_ct_slice() -> None:
    ct = np.full((3, 30, 30), -1000.0, np.float32)
    ct[1, 5:10, 5:10] = 400  # bone
    ct[1, 20:25, 20:25] = 500  # other bone, not connected
    ct[1, 15, 15] = 40  # soft tissue
    ed = LabelEditor(np.zeros(ct.shape, np.uint8))
    assert magic_wand(ed, Plane(0, 1), ct, (7, 7), low=300, high=3000, value=1)
    assert ed.data[1].sum() == 25 and ed.data[0].sum() == 0
    assert magic_wand(ed, Plane(0, 1), ct, None, low=300, high=3000, value=1)
    assert ed.data[1].sum() == 50
    assert not magic_wand(ed, Plane(0, 1), ct, (0, 0), low=300, high=3000, value=1)


def test_magic_wand_on_rgb_and_threshold_3d() -> None:
    rgb = np.zeros((20, 20, 3), np.uint8)
    rgb[5:10, 5:10] = 200
    ed = LabelEditor(np.zeros((20, 20), np.uint8))
    magic_wand(ed, Plane(), rgb, (6, 6), low=100, high=255, value=4)
    assert ed.data.sum() == 4 * 25
    vol = np.zeros((5, 8, 8), np.float32)
    vol[1:4, 2:5, 2:5] = 100
    vol[0, 7, 7] = 100
    ed = LabelEditor(np.zeros(vol.shape, np.uint8))
    assert threshold_fill(ed, vol, low=50, high=150, value=1, seed=(2, 3, 3))
    assert ed.data.sum() == 27
    assert threshold_fill(ed, vol, low=50, high=150, value=2)
    assert ed.data[0, 7, 7] == 2 and ed.data[2, 3, 3] == 1  # only unlabelled voxels
