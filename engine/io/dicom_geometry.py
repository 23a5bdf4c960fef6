"""The grid of a stack of DICOM slices, from their headers, with the checks that protect it.

Slices are sorted along the slice normal (``row x column`` of ImageOrientationPatient) by the
projection of ImagePositionPatient on it, never by file name or InstanceNumber. The z spacing is
the measured distance between slice centres along the normal (SliceThickness and
SpacingBetweenSlices are only used for a single slice). Anything that makes a regular grid a lie
is reported as a problem in words: a missing slice, uneven spacing, repeated positions, slices
shifted in-plane (gantry tilt), or headers without position/orientation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.io.dicom_headers import SliceHeader

__all__ = ["StackGeometry", "stack_geometry", "slice_normal", "position_tolerance"]

_logger = logging.getLogger(__name__)

_REPEAT_MM = 0.01  # positions closer than this along the normal are "the same position"


def position_tolerance(step: float) -> float:
    """How far (mm) a slice may sit from the regular grid before it counts as irregular.

    DS values are often written with two decimals, so a few hundredths of a mm of noise are
    normal; 1% of the step or 0.03 mm, whichever is larger.
    """
    return max(0.03, 0.01 * abs(step))


def slice_normal(orientation: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit ``(row, column, normal)`` LPS vectors of an ImageOrientationPatient (6 values)."""
    o = np.asarray(orientation, dtype=np.float64)
    row = o[:3] / (np.linalg.norm(o[:3]) or 1.0)
    col = o[3:6] / (np.linalg.norm(o[3:6]) or 1.0)
    normal = np.cross(row, col)
    return row, col, normal / (np.linalg.norm(normal) or 1.0)


@dataclass(frozen=True, eq=False)
class StackGeometry:
    """Where a stack of slices sits in patient space.

    Attributes
    ----------
    order
        Indices into the input slices in z order (ascending along the normal).
    spacing
        ``(sx, sy, sz)`` mm; ``sz`` is the measured step (the median step when irregular).
    origin
        LPS mm of the centre of the first pixel of the first slice in z order.
    direction
        ``(3, 3)`` float64, columns: row direction, column direction, slice normal (LPS).
    offsets
        ``(z,)`` float64 true position of each slice (z order) along the normal, mm from the first.
    problems
        What makes this stack irregular, in words; empty for a clean regular grid.
    """

    order: tuple[int, ...]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    offsets: np.ndarray
    problems: tuple[str, ...] = field(default=())


def _unknown_geometry(slices: Sequence[SliceHeader]) -> StackGeometry:
    order = sorted(range(len(slices)), key=lambda i: (slices[i].instance_number or 0, slices[i].frame or 0))
    first = slices[order[0]]
    sy, sx = first.pixel_spacing or (1.0, 1.0)
    sz = abs(first.spacing_between or first.thickness or 1.0)
    return StackGeometry(tuple(order), (sx, sy, sz), (0.0, 0.0, 0.0), np.eye(3),
                         np.arange(len(slices), dtype=np.float64) * sz,
                         ("no ImagePositionPatient/ImageOrientationPatient in the headers: the patient "
                          "geometry is unknown (identity assumed, slices in InstanceNumber order)",))


def stack_geometry(slices: Sequence[SliceHeader]) -> StackGeometry:
    """Sort ``slices`` along their normal and measure the grid (see the module docstring).

    ``slices`` are assumed to share orientation, size and pixel spacing (the scanner groups
    them so); a stack where some slices lack geometry is reported as such.
    """
    if not slices:
        raise ValueError("an empty stack has no geometry")
    have = [s.position is not None and s.orientation is not None for s in slices]
    if not all(have):
        geometry = _unknown_geometry(slices)
        if any(have):
            missing = sum(not h for h in have)
            problems = (f"{missing} of {len(slices)} slices have no position/orientation",)
            return StackGeometry(geometry.order, geometry.spacing, geometry.origin, geometry.direction,
                                 geometry.offsets, problems)
        return geometry
    problems: list[str] = []
    first = slices[0]
    row, col, normal = slice_normal(first.orientation)  # type: ignore[arg-type]
    if abs(float(np.dot(row, col))) > 1e-3:
        problems.append("ImageOrientationPatient row and column directions are not perpendicular")
    positions = np.array([s.position for s in slices], dtype=np.float64)
    along = positions @ normal
    order = sorted(range(len(slices)), key=lambda i: (along[i], slices[i].order))
    along = along[order]
    positions = positions[order]
    offsets = along - along[0]
    sy, sx = first.pixel_spacing or (1.0, 1.0)
    if first.pixel_spacing is None:
        problems.append("no PixelSpacing in the headers (1 mm assumed)")
    n = len(slices)
    if n == 1:
        sz = abs(first.spacing_between or first.thickness or 1.0)
    else:
        steps = np.diff(along)
        repeated = int(np.sum(steps < _REPEAT_MM))
        if repeated:
            problems.append(f"repeated slice positions: {repeated} slice(s) share a position with another")
        real = steps[steps >= _REPEAT_MM]
        step = float(np.median(real)) if real.size else 1.0
        tol = position_tolerance(step)
        problems.extend(_spacing_problems(real, along, step, tol))
        in_plane = np.diff(positions @ np.stack([row, col], axis=1), axis=0)
        shift = float(np.abs(in_plane).max()) if in_plane.size else 0.0
        if shift > max(0.1, 0.02 * step):
            problems.append(f"slices are shifted in-plane by up to {shift:.3g} mm from one to the next "
                            "(gantry tilt or sheared stack)")
        regular = not any(p.startswith(("missing", "uneven", "repeated")) for p in problems)
        sz = float((along[-1] - along[0]) / (n - 1)) if regular else step
    origin = tuple(float(v) for v in positions[0])
    direction = np.stack([row, col, normal], axis=1)
    return StackGeometry(tuple(order), (float(sx), float(sy), float(sz)), origin, direction,  # type: ignore[arg-type]
                         offsets, tuple(problems))


def _spacing_problems(steps: np.ndarray, along: np.ndarray, step: float, tol: float) -> list[str]:
    """Words for gaps that are whole multiples of ``step`` (missing slices) and for other unevenness."""
    problems = []
    missing_at = []
    uneven = []
    positions = along[:-1][np.diff(along) >= _REPEAT_MM]
    for d, at in zip(steps, positions):
        if abs(d - step) <= tol:
            continue
        m = int(round(d / step))
        if m >= 2 and abs(d - m * step) <= tol * m:
            missing_at.append((m - 1, at))
        else:
            uneven.append(d)
    if missing_at:
        count = sum(m for m, _ in missing_at)
        where = ", ".join(f"after {at:.2f} mm" for _, at in missing_at[:5])
        problems.append(f"missing slice(s): {count} slice(s) missing in a stack spaced {step:.4g} mm "
                        f"(gap {where} along the normal)")
    if uneven:
        problems.append(f"uneven spacing: steps of {min(uneven + [step]):.4g} to {max(uneven + [step]):.4g} mm "
                        f"between slices (typical step {step:.4g} mm)")
    return problems
