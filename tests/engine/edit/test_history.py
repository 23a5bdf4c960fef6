"""History: strokes, bounded depth, replay of atoms with integer keys."""

from __future__ import annotations

import numpy as np
import pytest

from engine.edit.history import Atom, History, apply_atom, revert_atom


def test_nested_strokes_make_one_step_and_unbalanced_commit_raises() -> None:
    h = History(5)
    atom = Atom((slice(0, 1), slice(0, 1)), None, np.zeros((1, 1), np.uint8), np.asarray(1, np.uint8))
    h.begin("outer")
    h.begin("inner")
    h.record(atom)
    assert h.commit() is None  # the inner commit only closes the inner stroke
    h.record(atom)
    step = h.commit()
    assert step is not None and len(step.atoms) == 2 and step.label == "outer"
    h.begin()
    assert h.commit() is None  # empty stroke records nothing
    with pytest.raises(RuntimeError):
        h.commit()
    with pytest.raises(ValueError):
        History(0)


def test_undo_disabled_while_a_stroke_is_open() -> None:
    h = History(5)
    h.record(Atom((slice(0, 1), slice(0, 1)), None, np.zeros((1, 1), np.uint8), np.asarray(1, np.uint8)))
    h.begin()
    assert not h.can_undo and h.pop_undo() is None
    h.abort()
    assert h.can_undo


def test_atom_replay_with_plane_key() -> None:
    vol = np.zeros((4, 5, 6), np.uint8)
    mask = np.zeros((5, 6), bool)
    mask[1, 2] = True
    atom = Atom((2, slice(0, 5), slice(0, 6)), mask, np.zeros(1, np.uint8), np.asarray(9, np.uint8))
    apply_atom(vol, atom)
    assert vol[2, 1, 2] == 9 and vol.sum() == 9
    revert_atom(vol, atom)
    assert not vol.any()
