"""Write synthetic DICOM series with pydicom, for tests and benchmarks.

``write_series`` writes one single-frame file per slice (classic CT/MR storage), with the
geometry given in Maskwright's convention (see :mod:`engine.items`): ``spacing`` is
``(sx, sy, sz)``, ``origin`` is the LPS centre of voxel ``(0, 0, 0)``, ``direction`` has the x, y
and z index axes as its columns. ``write_multiframe`` writes the same volume as one enhanced
multi-frame file with per-frame functional groups. Both return a :class:`SynthSeries` holding
the stored pixel values, so a test can compare what a reader gives back.

Usage::

    from tests.engine.io.dicom_synth import write_series
    s = write_series(tmp_path / "ct", shape=(10, 32, 48), spacing=(0.7, 0.7, 2.5), shuffle=True)
    s.paths, s.stored, s.series_uid
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    UID,
    generate_uid,
)

__all__ = ["SynthSeries", "write_series", "write_multiframe", "ramp_volume", "oblique_direction"]

_CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
_ENHANCED_CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"
_ENHANCED_MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"


@dataclass(frozen=True)
class SynthSeries:
    """What :func:`write_series` / :func:`write_multiframe` wrote.

    Attributes
    ----------
    folder
        The folder the files are in.
    paths
        The files in slice order (index ``k`` holds slice ``k``; a multi-frame series has one path).
    stored
        ``(z, y, x)`` stored pixel values (before rescale) of the slices that were written, in
        slice order, int16 or uint16.
    positions
        ``(z, 3)`` float64 LPS ImagePositionPatient of the written slices, in slice order.
    series_uid, study_uid, frame_of_reference_uid
        The identifiers written.
    spacing, origin, direction
        The geometry asked for (of the full grid, before slices were dropped).
    """

    folder: Path
    paths: tuple[Path, ...]
    stored: np.ndarray
    positions: np.ndarray
    series_uid: str
    study_uid: str
    frame_of_reference_uid: str
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray


def ramp_volume(shape: tuple[int, int, int], *, dtype: type = np.int16, seed: int = 0) -> np.ndarray:
    """A ``(z, y, x)`` test pattern whose every slice differs: ``100 * z + y + x`` plus small noise."""
    z, y, x = np.indices(shape, dtype=np.int32)
    noise = np.random.default_rng(seed).integers(0, 5, size=shape, dtype=np.int32)
    return (100 * z + y + x + noise).astype(dtype)


def oblique_direction(angle_x_deg: float = 20.0, angle_y_deg: float = 12.0) -> np.ndarray:
    """A double-oblique rotation (columns = index axes in LPS) for geometry tests."""
    ax, ay = np.radians(angle_x_deg), np.radians(angle_y_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    return ry @ rx


def _ds(v: float) -> str:
    """A DICOM DS string (at most 16 characters)."""
    text = f"{v:.10g}"
    return text if len(text) <= 16 else f"{v:.8g}"


def _base_dataset(sop_class: str, sop_uid: str, *, modality: str, series_uid: str, study_uid: str,
                  frame_of_reference_uid: str, description: str, series_number: int,
                  transfer_syntax: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = UID(transfer_syntax)
    meta.ImplementationClassUID = generate_uid(prefix="1.2.826.0.1.3680043.8.498.")
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.PatientName = "Synthetic^Maskwright"
    ds.PatientID = "MW0001"
    ds.StudyDate = "20260101"
    ds.Modality = modality
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.SeriesDescription = description
    ds.SeriesNumber = series_number
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    return ds


def _set_pixels(ds: Dataset, arr: np.ndarray, transfer_syntax: str) -> None:
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if arr.dtype == np.int16 else 0
    ds.PixelData = np.ascontiguousarray(arr).tobytes()
    if UID(transfer_syntax).is_compressed:
        ds.compress(transfer_syntax, arr)


def write_series(
    folder: str | Path,
    *,
    shape: tuple[int, int, int] = (8, 32, 40),
    spacing: tuple[float, float, float] = (0.8, 0.8, 2.0),
    origin: tuple[float, float, float] = (-12.0, -20.0, 30.0),
    direction: np.ndarray | Sequence[Sequence[float]] | None = None,
    stored: np.ndarray | None = None,
    modality: str = "CT",
    rescale_slope: float = 1.0,
    rescale_intercept: float = -1024.0,
    window: tuple[float, float, str] | None = (40.0, 400.0, "SOFT TISSUE"),
    drop: Sequence[int] = (),
    shuffle: bool = False,
    prefix: str = "IM",
    series_uid: str | None = None,
    study_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    description: str = "synthetic",
    series_number: int = 1,
    transfer_syntax: str = ExplicitVRLittleEndian,
    extra: dict[str, object] | None = None,
    seed: int = 0,
) -> SynthSeries:
    """Write one single-frame DICOM file per slice.

    Parameters
    ----------
    folder
        Where to write (created if absent). Several series may share a folder (use ``prefix``).
    shape
        ``(z, y, x)``: slices, rows, columns of the full grid.
    spacing, origin, direction
        The grid's geometry (Maskwright convention, LPS mm); ``direction`` defaults to identity.
    stored
        ``(z, y, x)`` int16/uint16 stored values; defaults to :func:`ramp_volume`.
    rescale_slope, rescale_intercept
        Written as RescaleSlope/RescaleIntercept.
    window
        ``(center, width, explanation)`` or ``None`` for no window tags.
    drop
        Slice indices not to write (a "missing slice").
    shuffle
        Name the files in a random order (file names then say nothing about slice order), and
        give InstanceNumbers in that random order too.
    transfer_syntax
        e.g. ``pydicom.uid.RLELossless`` to compress with pydicom's encoder, or
        ``ImplicitVRLittleEndian`` for an uncompressed implicit-VR file.
    extra
        Further keyword -> value pairs set on every dataset (``{"EchoNumbers": 2}``).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    direction = np.eye(3) if direction is None else np.asarray(direction, dtype=np.float64)
    stored = ramp_volume(shape, seed=seed) if stored is None else np.asarray(stored)
    if stored.shape != tuple(shape):
        raise ValueError(f"stored has shape {stored.shape}, expected {shape}")
    series_uid = series_uid or generate_uid()
    study_uid = study_uid or generate_uid()
    frame_of_reference_uid = frame_of_reference_uid or generate_uid()
    keep = [k for k in range(shape[0]) if k not in set(drop)]
    order = list(range(len(keep)))
    if shuffle:
        random.Random(seed).shuffle(order)
    sop_class = _CT_STORAGE if modality == "CT" else _MR_STORAGE
    paths: list[Path] = []
    positions = []
    for i, k in enumerate(keep):
        sop_uid = generate_uid()
        ds = _base_dataset(sop_class, sop_uid, modality=modality, series_uid=series_uid, study_uid=study_uid,
                           frame_of_reference_uid=frame_of_reference_uid, description=description,
                           series_number=series_number, transfer_syntax=transfer_syntax)
        position = np.asarray(origin, dtype=np.float64) + k * spacing[2] * direction[:, 2]
        positions.append(position)
        ds.InstanceNumber = order[i] + 1
        ds.ImagePositionPatient = [_ds(v) for v in position]
        ds.ImageOrientationPatient = [_ds(v) for v in (*direction[:, 0], *direction[:, 1])]
        ds.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]
        ds.SliceThickness = _ds(spacing[2])
        ds.Rows, ds.Columns = int(shape[1]), int(shape[2])
        ds.RescaleSlope = _ds(rescale_slope)
        ds.RescaleIntercept = _ds(rescale_intercept)
        if window is not None:
            ds.WindowCenter = _ds(window[0])
            ds.WindowWidth = _ds(window[1])
            ds.WindowCenterWidthExplanation = window[2]
        for key, value in (extra or {}).items():
            setattr(ds, key, value)
        _set_pixels(ds, stored[k], transfer_syntax)
        path = folder / f"{prefix}{order[i] + 1:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return SynthSeries(folder, tuple(paths), stored[keep], np.array(positions).reshape(-1, 3), series_uid,
                       study_uid, frame_of_reference_uid, tuple(map(float, spacing)),
                       tuple(map(float, origin)), direction)


def write_multiframe(
    path: str | Path,
    *,
    shape: tuple[int, int, int] = (6, 24, 28),
    spacing: tuple[float, float, float] = (0.9, 0.9, 3.0),
    origin: tuple[float, float, float] = (5.0, -30.0, -40.0),
    direction: np.ndarray | Sequence[Sequence[float]] | None = None,
    stored: np.ndarray | None = None,
    modality: str = "MR",
    rescale: Sequence[tuple[float, float]] | None = None,
    frame_order: Sequence[int] | None = None,
    series_uid: str | None = None,
    description: str = "synthetic enhanced",
    transfer_syntax: str = ExplicitVRLittleEndian,
    seed: int = 0,
) -> SynthSeries:
    """Write the volume as one enhanced multi-frame file (per-frame functional groups).

    Parameters
    ----------
    rescale
        Per-frame ``(slope, intercept)`` (PixelValueTransformationSequence in each frame's
        group); ``None`` writes no rescale at all (stored values are the values).
    frame_order
        The slice index stored in each frame (default ``0..z-1``); lets a test write frames in
        an order that is not the spatial order.
    Other parameters as :func:`write_series`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    direction = np.eye(3) if direction is None else np.asarray(direction, dtype=np.float64)
    stored = ramp_volume(shape, seed=seed) if stored is None else np.asarray(stored)
    frame_order = list(range(shape[0])) if frame_order is None else list(frame_order)
    series_uid = series_uid or generate_uid()
    study_uid, for_uid = generate_uid(), generate_uid()
    sop_class = _ENHANCED_CT_STORAGE if modality == "CT" else _ENHANCED_MR_STORAGE
    ds = _base_dataset(sop_class, generate_uid(), modality=modality, series_uid=series_uid, study_uid=study_uid,
                       frame_of_reference_uid=for_uid, description=description, series_number=1,
                       transfer_syntax=transfer_syntax)
    ds.InstanceNumber = 1
    ds.Rows, ds.Columns = int(shape[1]), int(shape[2])
    ds.NumberOfFrames = len(frame_order)
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]
    measures.SliceThickness = _ds(spacing[2])
    shared.PixelMeasuresSequence = [measures]
    orient = Dataset()
    orient.ImageOrientationPatient = [_ds(v) for v in (*direction[:, 0], *direction[:, 1])]
    shared.PlaneOrientationSequence = [orient]
    ds.SharedFunctionalGroupsSequence = [shared]
    per_frame = []
    positions = []
    for f, k in enumerate(frame_order):
        item = Dataset()
        pos = Dataset()
        position = np.asarray(origin, dtype=np.float64) + k * spacing[2] * direction[:, 2]
        pos.ImagePositionPatient = [_ds(v) for v in position]
        item.PlanePositionSequence = [pos]
        content = Dataset()
        content.InStackPositionNumber = k + 1
        content.StackID = "1"
        content.DimensionIndexValues = [1, k + 1]
        item.FrameContentSequence = [content]
        if rescale is not None:
            tr = Dataset()
            tr.RescaleSlope = _ds(rescale[f][0])
            tr.RescaleIntercept = _ds(rescale[f][1])
            tr.RescaleType = "US"
            item.PixelValueTransformationSequence = [tr]
        per_frame.append(item)
        positions.append(position)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    frames = stored[frame_order]
    _set_pixels(ds, frames, transfer_syntax)
    ds.save_as(path, enforce_file_format=True)
    return SynthSeries(path.parent, (path,), frames, np.array(positions), series_uid, study_uid, for_uid,
                       tuple(map(float, spacing)), tuple(map(float, origin)), direction)
