"""Shape-based interpolation between annotated slices."""

from __future__ import annotations

import numpy as np
import pytest

from engine.edit import LabelEditor, annotated_slices, interpolate_slices, signed_distance


def _disc(shape: tuple[int, int], c: tuple[int, int], r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - c[0]) ** 2 + (xx - c[1]) ** 2 <= r * r


def test_signed_distance_sign() -> None:
    m = _disc((21, 21), (10, 10), 5)
    sd = signed_distance(m)
    assert sd[10, 10] < 0 and sd[0, 0] > 0
    assert np.isinf(signed_distance(np.zeros((3, 3), bool))).all()


def test_interpolating_two_discs_gives_growing_discs_in_one_step() -> None:
    vol = np.zeros((11, 64, 64), np.uint8)
    vol[0][_disc((64, 64), (32, 32), 5)] = 1
    vol[10][_disc((64, 64), (32, 32), 15)] = 1
    ed = LabelEditor(vol)
    assert interpolate_slices(ed, 1) == 9
    areas = [int(vol[k].sum()) for k in range(11)]
    assert all(a < b for a, b in zip(areas, areas[1:]))
    r_mid = np.sqrt(areas[5] / np.pi)
    assert abs(r_mid - 10) < 1.0
    assert annotated_slices(vol, 1) == list(range(11))
    assert len(ed.history.undo_steps) == 1
    ed.undo()
    assert annotated_slices(vol, 1) == [0, 10]


def test_interpolation_moves_a_shape_and_keeps_other_classes() -> None:
    vol = np.zeros((5, 40, 40), np.uint8)
    vol[0][_disc((40, 40), (10, 10), 4)] = 1
    vol[4][_disc((40, 40), (30, 30), 4)] = 1
    vol[2, 20, 20] = 2  # another class in the path
    ed = LabelEditor(vol)
    interpolate_slices(ed, 1)
    ys, xs = np.nonzero(vol[2] == 1)
    assert abs(ys.mean() - 20) < 1.5 and abs(xs.mean() - 20) < 1.5
    assert vol[2, 20, 20] == 2


def test_interpolation_along_another_axis_and_errors() -> None:
    vol = np.zeros((20, 9, 20), np.uint8)
    vol[5:10, 0, 5:10] = 1
    vol[5:10, 8, 5:10] = 1
    ed = LabelEditor(vol)
    assert interpolate_slices(ed, 1, axis=1) == 7
    assert (vol[5:10, :, 5:10] == 1).all()
    assert interpolate_slices(ed, 3) == 0  # nothing annotated: nothing happens, nothing recorded
    with pytest.raises(ValueError):
        interpolate_slices(LabelEditor(np.zeros((4, 4), np.uint8)), 1)
