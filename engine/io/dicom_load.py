"""Load a scanned DICOM series (:class:`~engine.io.dicom_scan.SeriesInfo`) as a Volume.

Design: one preallocated ``(z, y, x)`` array of the stored type is filled slice by slice (no list
of slices, no stacking). Uncompressed little-endian pixels are read straight from each file into
their slice of the array (``readinto`` at the offset the header scan found: no parse, no copy);
compressed transfer syntaxes go through pydicom's decoders (GDCM, openjpeg, JPEG-LS, RLE)
one file and frame at a time. Then the
modality rescale is applied, in place when the result has the stored type's size:

* integer slope and intercept, result in int16 range -> int16 (uint8 kept when it fits);
  else int32;
* a non-integer slope or intercept (or float pixel data) -> float32.

The rescale is the standard DICOM modality LUT (RescaleSlope/RescaleIntercept, per frame for
enhanced files), i.e. the values a DICOM viewer displays (HU for CT). Philips' private "precise"
floating-point scaling (2005,100E) is deliberately not applied: it changes MR values by a
per-series factor that models and people do not expect, and no other reader applies it.

Peak memory is the output array plus at most one file's pixel bytes (plus one stored-type copy
when the output is wider than the stored type, e.g. int16 -> float32).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from engine.errors import DicomError, SeriesGeometryError
from engine.io.dicom_scan import SeriesInfo
from engine.items import SourceInstance, Volume
from engine.jobs import CancelToken, Progress, check_cancelled, report

__all__ = ["load_series"]

_logger = logging.getLogger(__name__)

_NATIVE = {ExplicitVRLittleEndian, ImplicitVRLittleEndian}
_INT_DTYPES = {(8, 0): np.uint8, (8, 1): np.int8, (16, 0): np.dtype("<u2"), (16, 1): np.dtype("<i2"),
               (32, 0): np.dtype("<u4"), (32, 1): np.dtype("<i4")}


def load_series(info: SeriesInfo, *, allow_irregular: bool = False, progress: Progress | None = None,
                cancel: CancelToken | None = None) -> Volume:
    """Read the pixels of a scanned series into a :class:`~engine.items.Volume`.

    Parameters
    ----------
    info
        A series from :func:`~engine.io.dicom_scan.scan_dicom`.
    allow_irregular
        Load a series whose headers show problems (missing slice, uneven spacing, repeated
        positions, gantry tilt, unknown geometry). The slices are stacked in their true order;
        ``spacing[2]`` is then the typical (median) step, not an average, and the true slice
        positions stay in ``info.geometry.offsets`` and are logged as a warning.
    progress, cancel
        See :mod:`engine.jobs`.

    Returns
    -------
    Volume
        ``array`` ``(z, y, x)`` with the rescale applied (int16/int32/float32, see the module
        docstring), z ascending along the slice normal; spacing, origin and direction in LPS;
        window presets from the first slice's header; one ``SourceInstance`` per slice.

    Raises
    ------
    SeriesGeometryError
        ``info.problems`` is not empty and ``allow_irregular`` is False; names the folder and
        the reasons.
    DicomError
        A file cannot be read or decoded (names the file and the reason), or the pixels do not
        match the header.
    """
    if info.geometry is None or not info.slices:
        raise DicomError("this series description carries no slices (scan it with scan_dicom)", info.folder)
    if info.slices[0].samples != 1:
        raise DicomError(f"series {info.key}: colour images ({info.slices[0].samples} samples per pixel) "
                         "cannot be loaded as a volume", info.folder)
    if info.problems and not allow_irregular:
        raise SeriesGeometryError(f"series {info.key} ({info.description!r}) is irregular: "
                                  + "; ".join(info.problems)
                                  + ". Load it anyway with allow_irregular=True.", info.folder)
    if info.problems:
        offsets = ", ".join(f"{o:.3f}" for o in info.geometry.offsets)
        _logger.warning("loading irregular series %s from %s (%s); z spacing %.4g mm is nominal, true slice "
                        "offsets along the normal (mm): %s", info.key, info.folder, "; ".join(info.problems),
                        info.geometry.spacing[2], offsets)
    stored, slopes, intercepts = _read_stored(info, progress, cancel)
    array = _rescale(stored, slopes, intercepts, info)
    first = info.slices[0]
    geometry = info.geometry
    source = info.files[0] if len(info.files) == 1 else info.folder
    return Volume(array=array, spacing=geometry.spacing, origin=geometry.origin, direction=geometry.direction,
                  modality=first.modality, windows=first.windows, source=source,
                  source_instances=tuple(SourceInstance(s.path, s.sop_uid, s.frame) for s in info.slices),
                  series_uid=info.series_uid, study_uid=first.study_uid,
                  frame_of_reference_uid=first.frame_of_reference_uid, description=info.description)


def _read_dataset(path: Path) -> Dataset:
    try:
        return pydicom.dcmread(path, force=True)
    except FileNotFoundError as err:
        raise DicomError("the file disappeared since the folder was scanned", path) from err
    except OSError as err:
        raise DicomError(f"cannot read the file: {err.strerror or err}", path) from err
    except Exception as err:  # noqa: BLE001 - pydicom raises many types on damaged files
        raise DicomError(f"damaged DICOM file ({type(err).__name__}: {err})", path) from err


def _native_frames(ds: Dataset, path: Path, rows: int, cols: int) -> np.ndarray | None:
    """``(frames, rows, cols)`` view of uncompressed pixel data, or ``None`` when not that simple."""
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if ts not in _NATIVE or "PixelData" not in ds or int(ds.get("SamplesPerPixel", 1)) != 1:
        return None
    dtype = _INT_DTYPES.get((int(ds.get("BitsAllocated", 0)), int(ds.get("PixelRepresentation", 0))))
    if dtype is None:
        return None
    n_frames = int(ds.get("NumberOfFrames") or 1)
    count = n_frames * rows * cols
    buf = ds.PixelData
    if len(buf) < count * np.dtype(dtype).itemsize:
        raise DicomError(f"pixel data is truncated: {len(buf)} bytes for {n_frames} frame(s) of {cols}x{rows} "
                         f"that need {count * np.dtype(dtype).itemsize}", path)
    return np.frombuffer(buf, dtype=dtype, count=count).reshape(n_frames, rows, cols)


def _fix_bits(plane: np.ndarray, allocated: int, stored: int) -> None:
    """Apply BitsStored to natively read integers in place: mask (unsigned) or sign-extend (signed)."""
    if stored >= allocated or plane.dtype.kind not in "iu":
        return
    if plane.dtype.kind == "u":
        np.bitwise_and(plane, (1 << stored) - 1, out=plane)
    else:
        shift = allocated - stored
        np.left_shift(plane, shift, out=plane)
        np.right_shift(plane, shift, out=plane)


def _decoded_frames(ds: Dataset, path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    """Decode the frames (1-based) in ``wanted`` through pydicom's decoders."""
    try:
        n_frames = int(ds.get("NumberOfFrames") or 1)
        if n_frames == 1:
            return {1: ds.pixel_array}
        from pydicom.pixels import get_decoder

        decoder = get_decoder(ds.file_meta.TransferSyntaxUID)
        out = {}
        for index, (arr, _meta) in enumerate(decoder.iter_array(ds), start=1):
            if index in wanted:
                out[index] = arr
        return out
    except DicomError:
        raise
    except Exception as err:  # noqa: BLE001 - missing plugin, damaged stream...
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(ts, "name", str(ts))
        raise DicomError(f"cannot decode the pixel data ({name}): {err}", path) from err


def _read_direct(info: SeriesInfo, progress: Progress | None, cancel: CancelToken | None) -> np.ndarray:
    """Read uncompressed pixels straight from the files into the array (offsets from the scan)."""
    first = info.slices[0]
    stored = np.empty((info.num_slices, info.rows, info.cols), dtype=np.dtype(first.pixel_dtype))
    nbytes = stored[0].nbytes
    allocated = stored.dtype.itemsize * 8
    fh = None
    try:
        for z, s in enumerate(info.slices):
            if z % 16 == 0:
                check_cancelled(cancel)
                report(progress, z, info.num_slices, "reading DICOM slices")
            plane = stored[z]
            try:
                if fh is None or fh.name != str(s.path):  # frames of one multi-frame file share a handle
                    if fh is not None:
                        fh.close()
                    fh = open(s.path, "rb")  # noqa: SIM115 - closed in finally or on the next file
                fh.seek(s.pixel_offset)  # type: ignore[arg-type]
                got = fh.readinto(memoryview(plane).cast("B"))
            except FileNotFoundError as err:
                raise DicomError("the file disappeared since the folder was scanned", s.path) from err
            except OSError as err:
                raise DicomError(f"cannot read the file: {err.strerror or err}", s.path) from err
            if got != nbytes:
                raise DicomError(f"pixel data is truncated: {got} of {nbytes} bytes for frame {s.frame or 1}",
                                 s.path)
            if s.bits_stored < allocated:
                _fix_bits(plane, allocated, s.bits_stored)
    finally:
        if fh is not None:
            fh.close()
    report(progress, info.num_slices, info.num_slices, "reading DICOM slices")
    return stored


def _read_stored(info: SeriesInfo, progress: Progress | None,
                 cancel: CancelToken | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stored values ``(z, rows, cols)`` and per-slice slope and intercept ``(z,)`` float64."""
    slopes = np.array([s.slope for s in info.slices], dtype=np.float64)
    intercepts = np.array([s.intercept for s in info.slices], dtype=np.float64)
    dtypes = {s.pixel_dtype if s.pixel_offset is not None else "" for s in info.slices}
    if len(dtypes) == 1 and "" not in dtypes:
        return _read_direct(info, progress, cancel), slopes, intercepts
    return _read_decoded(info, progress, cancel), slopes, intercepts


def _read_decoded(info: SeriesInfo, progress: Progress | None, cancel: CancelToken | None) -> np.ndarray:
    """Read through pydicom (compressed or unusual pixel data), one file at a time."""
    rows, cols, nz = info.rows, info.cols, info.num_slices
    by_file: dict[Path, list[int]] = defaultdict(list)
    for z, s in enumerate(info.slices):
        by_file[s.path].append(z)
    stored: np.ndarray | None = None
    done = 0
    for path in sorted(by_file):
        check_cancelled(cancel)
        ds = _read_dataset(path)
        zs = by_file[path]
        if int(ds.get("Rows", 0)) != rows or int(ds.get("Columns", 0)) != cols:
            raise DicomError(f"image is {ds.get('Columns')}x{ds.get('Rows')}, the series is {cols}x{rows}", path)
        if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
            raise DicomError("no pixel data in the file", path)
        native = _native_frames(ds, path, rows, cols)
        frames_of = {z: (info.slices[z].frame or 1) for z in zs}
        decoded = None if native is not None else _decoded_frames(ds, path, set(frames_of.values()))
        for z in zs:
            frame = frames_of[z]
            plane = native[frame - 1] if native is not None else decoded[frame]  # type: ignore[index]
            if plane.ndim != 2:
                raise DicomError(f"frame {frame} has shape {plane.shape}, expected one plane", path)
            if stored is None:
                stored = np.empty((nz, rows, cols), dtype=plane.dtype)
            elif plane.dtype != stored.dtype:
                if not np.can_cast(plane.dtype, stored.dtype, "safe"):
                    stored = stored.astype(np.promote_types(stored.dtype, plane.dtype))
            stored[z] = plane
            if native is not None:
                _fix_bits(stored[z], int(ds.get("BitsAllocated", 16)),
                          int(ds.get("BitsStored", ds.get("BitsAllocated", 16))))
            done += 1
        report(progress, done, nz, "reading DICOM slices")
        del ds, native, decoded
    assert stored is not None  # invariant: a series has at least one slice
    return stored


def _is_integer(values: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))


def _rescale(stored: np.ndarray, slopes: np.ndarray, intercepts: np.ndarray, info: SeriesInfo) -> np.ndarray:
    """Apply the per-slice modality rescale, choosing the output dtype (see the module docstring)."""
    identity = bool(np.all(slopes == 1.0) and np.all(intercepts == 0.0))
    if stored.dtype.kind == "f":
        out = stored.astype(np.float32, copy=False)
        if not identity:
            for z in range(out.shape[0]):
                out[z] *= np.float32(slopes[z])
                out[z] += np.float32(intercepts[z])
        _report_nan(out, info)
        return out
    if identity and stored.dtype in (np.uint8, np.int16, np.int32):
        return stored
    if _is_integer(slopes) and _is_integer(intercepts):
        lo = np.array([plane.min() for plane in stored], dtype=np.float64)
        hi = np.array([plane.max() for plane in stored], dtype=np.float64)
        ends = np.concatenate([lo * slopes + intercepts, hi * slopes + intercepts])
        vmin, vmax = float(ends.min()), float(ends.max())
        for target in (np.uint8, np.int16, np.int32):
            info_t = np.iinfo(target)
            if info_t.min <= vmin and vmax <= info_t.max and (target != np.uint8 or stored.dtype == np.uint8):
                return _apply(stored, slopes, intercepts, np.dtype(target))
    return _apply(stored, slopes, intercepts, np.dtype(np.float32))


def _apply(stored: np.ndarray, slopes: np.ndarray, intercepts: np.ndarray, target: np.dtype) -> np.ndarray:
    """``stored * slope + intercept`` per slice into ``target``: in place when the item sizes match."""
    out = stored.view(target) if target.itemsize == stored.dtype.itemsize else np.empty(stored.shape, target)
    work = np.float64 if target.kind == "f" or stored.dtype.itemsize >= 4 else np.int32
    for z in range(stored.shape[0]):
        plane = stored[z].astype(work)  # read the slice before its memory may be overwritten
        if slopes[z] != 1.0:
            plane *= slopes[z] if work is np.float64 else int(slopes[z])
        if intercepts[z] != 0.0:
            plane += intercepts[z] if work is np.float64 else int(intercepts[z])
        out[z] = plane
    return out


def _report_nan(array: np.ndarray, info: SeriesInfo) -> None:
    bad = int(np.count_nonzero(np.isnan(array)))
    if bad:
        _logger.warning("series %s in %s holds %d NaN voxel(s) of %d", info.key, info.folder, bad, array.size)
