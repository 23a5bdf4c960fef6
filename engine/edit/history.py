"""Sparse undo/redo history for label-map edits (after napari's Labels layer).

An edit is recorded as *atoms*: ``(key, mask, old, new)`` where ``key`` is a tuple of slices and
integers selecting a bounding box of the label map, ``mask`` is a boolean array over that box
(``None`` when the whole box changed), ``old`` are the previous values of the changed elements
and ``new`` the values written (a 0-d array when one value was written everywhere). Memory grows
with the size of the edit, never with the size of the map. One *step* (a list of atoms) is one
undo: a whole brush stroke is one step.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Key", "Atom", "Step", "History", "apply_atom", "revert_atom"]

_logger = logging.getLogger(__name__)

Key = tuple[slice | int, ...]


@dataclass(frozen=True)
class Atom:
    """One sparse change of a label map.

    Attributes
    ----------
    key
        Index into the map selecting a box: one ``slice`` or ``int`` per axis (``int`` picks a
        plane of a volume). ``data[key]`` is the box.
    mask
        ``bool`` array of the box's shape marking the changed elements, or ``None`` when every
        element of the box changed.
    old
        The previous values of the changed elements, 1-D (``mask`` given) or the box's shape
        (``mask`` is ``None``), the map's dtype.
    new
        The values written: same shape as ``old``, or a 0-d array (one value everywhere).
    """

    key: Key
    mask: np.ndarray | None
    old: np.ndarray
    new: np.ndarray

    @property
    def nbytes(self) -> int:
        """Bytes held by this atom's arrays."""
        return int(self.old.nbytes + self.new.nbytes + (self.mask.nbytes if self.mask is not None else 0))


def _write(data: np.ndarray, atom: Atom, values: np.ndarray) -> None:
    """Write ``values`` into the elements of ``data`` that ``atom`` covers.

    Only basic slicing is used: read the box, modify it in numpy, write it back. A numpy map is
    changed through the view directly; other array-likes (zarr, memory maps wrapped in objects)
    get the box written back.
    """
    in_place = isinstance(data, np.ndarray)
    region = data[atom.key] if in_place else np.array(data[atom.key])
    if atom.mask is None:
        region[...] = values
    else:
        region[atom.mask] = values
    if not in_place:
        data[atom.key] = region


def apply_atom(data: np.ndarray, atom: Atom) -> None:
    """Redo ``atom`` on ``data`` in place."""
    _write(data, atom, atom.new)


def revert_atom(data: np.ndarray, atom: Atom) -> None:
    """Undo ``atom`` on ``data`` in place."""
    _write(data, atom, atom.old)


@dataclass(frozen=True)
class Step:
    """One undo step: the atoms of one stroke or one command, in the order they were applied."""

    atoms: tuple[Atom, ...]
    label: str = ""

    @property
    def nbytes(self) -> int:
        """Bytes held by the step's atoms."""
        return sum(a.nbytes for a in self.atoms)

    def boxes(self) -> list[Key]:
        """The keys touched by the step (for repainting caches)."""
        return [a.key for a in self.atoms]


class History:
    """Bounded undo and redo stacks of :class:`Step` with stroke grouping.

    Parameters
    ----------
    limit
        The most steps kept for undo; the oldest is dropped beyond it.
    """

    def __init__(self, limit: int = 100) -> None:
        if limit < 1:
            raise ValueError("the history limit must be at least 1")
        self.limit = limit
        self._undo: deque[Step] = deque(maxlen=limit)
        self._redo: deque[Step] = deque(maxlen=limit)
        self._staged: list[Atom] | None = None
        self._staged_label = ""
        self._depth = 0  # strokes nest: only the outermost commit records a step

    # -- recording ---------------------------------------------------------------------------
    @property
    def in_stroke(self) -> bool:
        """Whether atoms are being staged into an open stroke."""
        return self._staged is not None

    def begin(self, label: str = "") -> None:
        """Open a stroke: following atoms are staged and committed as one step.

        Strokes nest (a tool that opens its own stroke inside a caller's): the atoms of inner
        strokes join the outermost one, which alone becomes a step.
        """
        self._depth += 1
        if self._staged is None:
            self._staged = []
            self._staged_label = label

    def record(self, atom: Atom) -> None:
        """Record an applied atom: staged in an open stroke, else committed as its own step."""
        if self._staged is not None:
            self._staged.append(atom)
        else:
            self._push(Step((atom,), ""))

    def commit(self) -> Step | None:
        """Close the open stroke; returns its step, or ``None`` when it changed nothing."""
        if self._staged is None:
            raise RuntimeError("no stroke is open")
        self._depth -= 1
        if self._depth > 0:
            return None
        atoms, self._staged = self._staged, None
        if not atoms:
            return None
        step = Step(tuple(atoms), self._staged_label)
        self._push(step)
        return step

    def abort(self) -> list[Atom]:
        """Close the open stroke without recording it; returns its atoms (the caller reverts them).

        Aborting an inner stroke returns nothing: the outermost abort reverts everything.
        """
        if self._staged is None:
            raise RuntimeError("no stroke is open")
        self._depth -= 1
        if self._depth > 0:
            return []
        atoms, self._staged = self._staged, None
        return atoms

    def _push(self, step: Step) -> None:
        if len(self._undo) == self.limit:
            _logger.debug("history full (%d steps): dropping the oldest", self.limit)
        self._undo.append(step)
        self._redo.clear()

    # -- replay ------------------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return bool(self._undo) and self._staged is None

    @property
    def can_redo(self) -> bool:
        return bool(self._redo) and self._staged is None

    def pop_undo(self) -> Step | None:
        """Move the newest step to the redo stack and return it (the caller reverts it)."""
        if not self.can_undo:
            return None
        step = self._undo.pop()
        self._redo.append(step)
        return step

    def pop_redo(self) -> Step | None:
        """Move the newest undone step back to the undo stack and return it (the caller reapplies it)."""
        if not self.can_redo:
            return None
        step = self._redo.pop()
        self._undo.append(step)
        return step

    def clear(self) -> None:
        """Forget every step (e.g. after loading another map)."""
        self._undo.clear()
        self._redo.clear()
        self._staged = None
        self._depth = 0

    @property
    def undo_steps(self) -> Sequence[Step]:
        return tuple(self._undo)

    @property
    def redo_steps(self) -> Sequence[Step]:
        return tuple(self._redo)

    @property
    def nbytes(self) -> int:
        """Bytes held by every recorded step (undo and redo)."""
        staged = sum(a.nbytes for a in self._staged) if self._staged else 0
        return sum(s.nbytes for s in self._undo) + sum(s.nbytes for s in self._redo) + staged
