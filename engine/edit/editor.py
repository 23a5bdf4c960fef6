"""The editing model: a label map changed only through recorded sparse atoms (Qt-free).

Every tool (brush, eraser, polygon, flood fill, magic wand, interpolation, accept/reject) ends
in :meth:`LabelEditor.apply_mask`, which keeps only the elements that really change, writes them
and records one :class:`~engine.edit.history.Atom`. Listeners are told which box changed so a
view can repaint just that box.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

import numpy as np

from engine.edit.history import Atom, History, Key, Step, apply_atom, revert_atom
from engine.errors import LabelError

__all__ = ["LabelEditor", "ChangeListener", "plane_key", "plane_box", "bbox_of"]

_logger = logging.getLogger(__name__)

ChangeListener = Callable[[tuple[Key, ...]], None]


def plane_key(ndim: int, axis: int | None, index: int, box2d: tuple[slice, slice]) -> Key:
    """Lift a 2D box on a plane to a key into an ``ndim``-D map.

    Parameters
    ----------
    ndim
        2 (photo) or 3 (volume, ``(z, y, x)``).
    axis, index
        For volumes: the axis the plane is normal to (0 axial, 1 coronal, 2 sagittal) and the
        slice index on it. Ignored for 2D maps.
    box2d
        ``(rows, cols)`` slices on the plane, in the plane's own row/column order.
    """
    if ndim == 2:
        return box2d
    if axis is None:
        raise ValueError("a 3D map needs the plane's axis")
    key: list[slice | int] = list(box2d)
    key.insert(axis, int(index))
    return tuple(key)


def bbox_of(mask: np.ndarray) -> tuple[slice, ...] | None:
    """The tight box (one slice per axis) around the true elements of ``mask``, or ``None``."""
    out = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other) if other else mask)
        if hit.size == 0:
            return None
        out.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(out)


class LabelEditor:
    """Edits one label raster with sparse undo/redo.

    Parameters
    ----------
    data
        ``(H, W)`` or ``(z, y, x)`` uint8/uint16 class ids; edited in place.
    history_limit
        The most undo steps kept.
    """

    def __init__(self, data: np.ndarray, *, history_limit: int = 100) -> None:
        if data.dtype not in (np.uint8, np.uint16) or data.ndim not in (2, 3):
            raise ValueError(f"a label map must be 2D/3D uint8/uint16, got {data.shape} {data.dtype}")
        self.data = data
        self.history = History(history_limit)
        self._listeners: list[ChangeListener] = []
        self.preserve_labels = False  # when True, painting only writes over 0 (and the eraser only its class)
        self.revision = 0  # bumps on every change (autosave compares it)

    # -- listeners ---------------------------------------------------------------------------
    def connect(self, listener: ChangeListener) -> None:
        """Call ``listener(keys)`` after every change with the boxes that changed."""
        self._listeners.append(listener)

    def disconnect(self, listener: ChangeListener) -> None:
        """Stop calling ``listener``."""
        self._listeners.remove(listener)

    def _changed(self, keys: tuple[Key, ...]) -> None:
        self.revision += 1
        for listener in list(self._listeners):
            listener(keys)

    # -- strokes -----------------------------------------------------------------------------
    def begin_stroke(self, label: str = "") -> None:
        """Start a stroke: every edit until :meth:`end_stroke` is one undo step."""
        self.history.begin(label)

    def end_stroke(self) -> Step | None:
        """Finish the stroke; returns its step, or ``None`` when nothing changed."""
        return self.history.commit()

    def abort_stroke(self) -> None:
        """Cancel the open stroke and put back what it changed."""
        atoms = self.history.abort()
        for atom in reversed(atoms):
            revert_atom(self.data, atom)
        if atoms:
            self._changed(tuple(a.key for a in atoms))

    @contextlib.contextmanager
    def stroke(self, label: str = "") -> Iterator[None]:
        """Context manager: the edits inside are one undo step (aborted on an exception)."""
        self.begin_stroke(label)
        try:
            yield
        except BaseException:
            self.abort_stroke()
            raise
        self.end_stroke()

    # -- the one write path ------------------------------------------------------------------
    def apply_mask(self, key: Key, mask: np.ndarray | None, value: int | np.ndarray, *,
                   only: int | None = None) -> Atom | None:
        """Write ``value`` into the elements of box ``key`` selected by ``mask``; record the change.

        Parameters
        ----------
        key
            One slice or int per axis; ``data[key]`` is the box (2D or 3D).
        mask
            ``bool`` array of the box's shape, or ``None`` for the whole box.
        value
            A class id, or an array of the box's shape with one id per element.
        only
            Write only where the current value equals ``only`` (e.g. ``0`` to keep other labels,
            or the erased class for a class-restricted eraser).

        Returns
        -------
        The recorded atom, or ``None`` when nothing changed (nothing is recorded then).
        """
        clipped = self._clip_key(key)
        if clipped is None:
            return None
        key, inner = clipped
        region = self.data[key]
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)[inner]
            if mask.shape != region.shape:
                raise ValueError(f"mask shape {mask.shape} differs from the box {region.shape}")
        scalar = np.ndim(value) == 0
        if scalar:
            vmax = np.iinfo(self.data.dtype).max
            if not 0 <= int(value) <= vmax:
                raise LabelError(f"class id {int(value)} does not fit this {self.data.dtype} label map")
            value = np.asarray(value, dtype=self.data.dtype)
        else:
            value = np.asarray(value)[inner]
            if value.shape != region.shape:
                raise ValueError(f"value shape {value.shape} differs from the box {region.shape}")
        change = region != value
        if mask is not None:
            change &= mask
        if only is not None:
            change &= region == only
        if self.preserve_labels and scalar and int(value) != 0:
            change &= region == 0
        if not change.any():
            return None
        # shrink the box to the changed elements, so the atom never outgrows the edit
        sub = bbox_of(change)
        assert sub is not None
        key = _compose(key, sub)
        change, region = change[sub], region[sub]
        if not scalar:
            value = value[sub]
        if change.all():
            new = value if scalar else value.astype(self.data.dtype, copy=True)
            atom = Atom(key, None, region.copy(), new)
        else:
            new = value if scalar else value[change].astype(self.data.dtype)
            atom = Atom(key, change, region[change], new)
        apply_atom(self.data, atom)
        self.history.record(atom)
        self._changed((atom.key,))
        return atom

    def set_where(self, where: np.ndarray, value: int | np.ndarray, *, only: int | None = None) -> Atom | None:
        """Write ``value`` where the full-size boolean ``where`` is true (``value`` scalar or full-size)."""
        if where.shape != self.data.shape:
            raise ValueError(f"mask shape {where.shape} differs from the map {self.data.shape}")
        box = bbox_of(where)
        if box is None:
            return None
        val = value if np.ndim(value) == 0 else np.asarray(value)[box]
        return self.apply_mask(box, where[box], val, only=only)

    def _clip_key(self, key: Key) -> tuple[Key, tuple[slice, ...]] | None:
        """Clip ``key`` to the map.

        Returns the clipped key and, for its slice axes, the slices that cut a box-shaped
        mask/value of the unclipped key down to the clipped box; ``None`` when nothing is left.
        """
        if len(key) != self.data.ndim:
            raise ValueError(f"key {key} has {len(key)} axes, the map has {self.data.ndim}")
        out: list[slice | int] = []
        inner: list[slice] = []
        for k, n in zip(key, self.data.shape):
            if isinstance(k, slice):
                start0 = 0 if k.start is None else int(k.start)
                stop0 = n if k.stop is None else int(k.stop)
                start, stop = max(0, start0), min(n, stop0)
                if stop <= start:
                    return None
                out.append(slice(start, stop))
                inner.append(slice(start - start0, stop - start0))
            else:
                if not 0 <= int(k) < n:
                    return None
                out.append(int(k))
        return tuple(out), tuple(inner)

    # -- undo / redo -------------------------------------------------------------------------
    def undo(self) -> Step | None:
        """Revert the newest step; returns it, or ``None`` when there is nothing to undo."""
        step = self.history.pop_undo()
        if step is not None:
            for atom in reversed(step.atoms):
                revert_atom(self.data, atom)
            self._changed(tuple(step.boxes()))
        return step

    def redo(self) -> Step | None:
        """Reapply the newest undone step; returns it, or ``None`` when there is nothing to redo."""
        step = self.history.pop_redo()
        if step is not None:
            for atom in step.atoms:
                apply_atom(self.data, atom)
            self._changed(tuple(step.boxes()))
        return step

    def replace_data(self, data: np.ndarray) -> None:
        """Load another map of the same shape (a new version): history is cleared."""
        if data.shape != self.data.shape:
            raise ValueError(f"shape {data.shape} differs from {self.data.shape}")
        self.data[...] = data.astype(self.data.dtype, copy=False)
        self.history.clear()
        self._changed((tuple(slice(0, n) for n in self.data.shape),))


def _compose(key: Key, sub: tuple[slice, ...]) -> Key:
    """The key of box ``sub`` (relative to the region ``data[key]``) in map coordinates."""
    out: list[slice | int] = []
    it = iter(sub)
    for k in key:
        if isinstance(k, slice):
            s = next(it)
            out.append(slice(k.start + s.start, k.start + s.stop))
        else:
            out.append(k)
    return tuple(out)


def plane_box(key: Key, axis: int | None, index: int) -> tuple[slice, slice] | None:
    """The part of a changed box ``key`` that lies on one plane, as ``(rows, cols)`` slices.

    The inverse of :func:`plane_key`: ``axis`` ``None`` (2D maps) returns ``key`` itself; for
    volumes ``None`` means the box does not touch slice ``index`` of ``axis``.
    """
    if axis is None or len(key) == 2:
        return tuple(k if isinstance(k, slice) else slice(k, k + 1) for k in key)  # type: ignore[return-value]
    k = key[axis]
    if isinstance(k, slice):
        if not (k.start or 0) <= index < (k.stop if k.stop is not None else index + 1):
            return None
    elif k != index:
        return None
    rest = [key[a] for a in range(len(key)) if a != axis]
    return tuple(r if isinstance(r, slice) else slice(r, r + 1) for r in rest)  # type: ignore[return-value]
