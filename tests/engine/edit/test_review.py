"""Accept/reject a prediction per class; uncertainty ranking."""

from __future__ import annotations

import numpy as np

from engine.edit import LabelEditor, accept_class, entropy_map, rank_by_uncertainty, reject_class, uncertainty_score


def test_accept_and_reject_per_class() -> None:
    pred = np.zeros((10, 10), np.uint8)
    pred[:5] = 1
    pred[5:, :5] = 2
    data = pred.copy()
    data[0, 0] = 0  # corrected away
    data[9, 9] = 2  # added by hand
    ed = LabelEditor(data)
    assert reject_class(ed, pred, 2)
    assert (data[5:, :5] == 0).all() and data[9, 9] == 2  # manual pixel stays
    ed.undo()
    assert (data[5:, :5] == 2).all()
    assert accept_class(ed, pred, 1)
    assert data[0, 0] == 1
    assert accept_class(ed, pred, 2)
    assert data[9, 9] == 0
    assert len(ed.history.undo_steps) == 2
    assert not accept_class(ed, pred, 2)  # already equal: no-op


def test_entropy_and_ranking() -> None:
    certain = np.zeros((3, 4, 4), np.float32)
    certain[0] = 1
    uniform = np.full((3, 4, 4), 1 / 3, np.float32)
    assert entropy_map(certain).max() < 1e-3
    assert np.allclose(entropy_map(uniform), 1.0, atol=1e-5)
    scores = {1: uncertainty_score(entropy_map(certain)), 2: uncertainty_score(entropy_map(uniform)), 3: 0.5}
    assert rank_by_uncertainty(scores) == [2, 3, 1]
    assert rank_by_uncertainty(scores, skip={2}) == [3, 1]
