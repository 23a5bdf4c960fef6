"""Read the headers of one DICOM file into per-slice records (no pixel data).

A classic single-frame file gives one :class:`SliceHeader`; a multi-frame file gives one per
frame, with the per-frame functional groups of enhanced files (PlanePositionSequence,
PlaneOrientationSequence, PixelMeasuresSequence, PixelValueTransformationSequence,
FrameContentSequence, MREchoSequence, frame type, FrameVOILUTSequence) merged over the shared
groups. Everything later (grouping into series, geometry checks, loading) works on these records.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from engine.errors import DicomError
from engine.io.dicom_quick import QuickHeader, read_quick
from engine.io.dicom_values import (
    HEADER_TAGS,
    TAG_LIST,
    FastHeader,
    as_float,
    as_floats,
    as_int,
    as_text,
    as_time,
)
from engine.items import WindowPreset

__all__ = ["SliceHeader", "read_headers", "HEADER_TAGS"]

_logger = logging.getLogger(__name__)

_NATIVE_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}  # implicit / explicit VR little endian
_PIXEL_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010) little endian

# SOP classes that are never image series: DICOMDIR, segmentations, structured reports, RT structs...
_NOT_IMAGES = {
    "1.2.840.10008.1.3.10": "a DICOMDIR index",
    "1.2.840.10008.5.1.4.1.1.66.4": "a segmentation object",
    "1.2.840.10008.5.1.4.1.1.481.3": "an RT structure set",
    "1.2.840.10008.5.1.4.1.1.11.1": "a presentation state",
}


@dataclass(frozen=True)
class SliceHeader:
    """One 2D slice (a file, or one frame of a multi-frame file) as its header describes it.

    Attributes
    ----------
    path
        The file.
    frame
        1-based frame number in a multi-frame file, else ``None``.
    position
        ImagePositionPatient, LPS mm of the centre of the first pixel, or ``None`` if absent.
    orientation
        ImageOrientationPatient ``(rx, ry, rz, cx, cy, cz)`` or ``None``.
    pixel_spacing
        ``(row spacing, column spacing)`` in mm (DICOM order: between rows first), or ``None``.
    slope, intercept
        The modality rescale (1, 0 when absent).
    echo, image_type, temporal, stack_id
        What tells stacks of one series apart (echo number or time; ImageType value 3 plus any
        magnitude/phase/real/imaginary marker, or the enhanced FrameType values after the first
        two; temporal position; enhanced StackID), as strings, "" when absent.
    order
        Sort key giving acquisition order (acquisition number, temporal position, trigger time,
        acquisition time, instance number, frame); used to split repeated positions into stacks.
    pixel_offset, pixel_dtype, bits_stored
        For uncompressed little-endian pixel data: the byte offset of this slice's pixels in the
        file, their numpy dtype ("<i2", "<u2"...) and BitsStored, so a loader can read them
        straight into its array; ``None``/""/0 otherwise (compressed, big endian, colour...).
    """

    path: Path
    frame: int | None
    sop_uid: str
    sop_class: str
    series_uid: str
    study_uid: str
    frame_of_reference_uid: str
    modality: str
    description: str
    series_number: int | None
    rows: int
    cols: int
    samples: int
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    thickness: float | None
    spacing_between: float | None
    slope: float
    intercept: float
    windows: tuple[WindowPreset, ...]
    echo: str
    image_type: str
    temporal: str
    stack_id: str
    instance_number: int | None
    order: tuple[float, ...]
    pixel_offset: int | None = None
    pixel_dtype: str = ""
    bits_stored: int = 0


def _windows(ds: Dataset | FastHeader | QuickHeader) -> tuple[WindowPreset, ...]:
    centers = as_floats(ds.get("WindowCenter"), 1)
    widths = as_floats(ds.get("WindowWidth"), 1)
    if centers is None or widths is None:
        return ()
    centers_all = as_floats(ds.get("WindowCenter"), 0) or ()
    widths_all = as_floats(ds.get("WindowWidth"), 0) or ()
    names = as_text(ds.get("WindowCenterWidthExplanation")).split("\\")
    out = []
    for i, (c, w) in enumerate(zip(centers_all, widths_all)):
        name = names[i].strip() if i < len(names) and names[i].strip() else f"window {i + 1}"
        if w > 0 and all((p.center, p.width) != (c, w) for p in out):
            out.append(WindowPreset(name, c, w))
    return tuple(out)


_GROUP_SEQS = ("PlanePositionSequence", "PlaneOrientationSequence", "PixelMeasuresSequence",
               "PixelValueTransformationSequence", "FrameVOILUTSequence", "FrameContentSequence",
               "MREchoSequence", "MRImageFrameTypeSequence", "CTImageFrameTypeSequence")
_SEQ_TAGS = {k: tag_for_keyword(k) for k in _GROUP_SEQS}


def _item(ds: Dataset | FastHeader | QuickHeader | None, seq: str) -> Dataset | None:
    """The first item of sequence ``seq`` in ``ds``, or ``None``."""
    if ds is None:
        return None
    value = ds.get(seq)
    return value[0] if value else None


def _group_items(item: Dataset | None) -> dict[str, FastHeader]:
    """The functional-group macros present in one per-frame (or the shared) item, by keyword."""
    if item is None:
        return {}
    out = {}
    for keyword, tag in _SEQ_TAGS.items():
        if tag in item:
            value = item[tag].value
            if value:
                out[keyword] = FastHeader(value[0])
    return out


def _open(path: Path) -> tuple[Dataset, tuple[int, int] | None]:
    """Read the header tags of ``path``, raising :class:`DicomError` with the reason.

    Also returns ``(value offset, value length)`` of a defined-length Pixel Data element that
    directly follows the header (``None`` when there is none or it is encapsulated).
    """
    try:
        size = path.stat().st_size
    except OSError as err:
        raise DicomError(f"cannot read the file: {err.strerror or err}", path) from err
    if size == 0:
        raise DicomError("empty file (0 bytes)", path)
    try:
        with open(path, "rb") as fh:
            ds = pydicom.dcmread(fh, stop_before_pixels=True, specific_tags=TAG_LIST)
            return ds, _pixel_position(fh, ds)
    except InvalidDicomError as err:
        # Files without the 128-byte preamble (ACR-NEMA style) start with a group 0008 tag.
        with open(path, "rb") as fh:
            head = fh.read(4)
        if head[:2] in (b"\x08\x00", b"\x02\x00"):
            try:
                return pydicom.dcmread(path, stop_before_pixels=True, specific_tags=TAG_LIST, force=True), None
            except Exception as err2:  # noqa: BLE001 - any parse failure means "not readable DICOM"
                raise DicomError(f"not a readable DICOM file ({err2})", path) from err2
        raise DicomError("not a DICOM file (no 'DICM' marker)", path) from err
    except Exception as err:  # noqa: BLE001 - pydicom raises many types on damaged files
        raise DicomError(f"damaged DICOM header ({type(err).__name__}: {err})", path) from err


def _meta_uid(ds: Dataset, tag: int) -> str:
    """A file meta UID (transfer syntax, SOP class) from its raw bytes, "" when absent."""
    meta = getattr(ds, "file_meta", None)
    elem = dict(meta.items()).get(tag) if meta is not None else None
    if elem is None or elem.value is None:
        return ""
    value = elem.value
    return (value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)).strip(" \x00")


def _pixel_position(fh: object, ds: Dataset) -> tuple[int, int] | None:
    """Where the Pixel Data value starts, when pydicom stopped right before it (native syntaxes)."""
    ts = _meta_uid(ds, 0x00020010)
    if ts not in _NATIVE_SYNTAXES:
        return None
    start = fh.tell()  # type: ignore[attr-defined]
    head = fh.read(12)  # type: ignore[attr-defined]
    if head[:4] != _PIXEL_TAG:
        return None
    if ts == "1.2.840.10008.1.2.1":  # explicit VR: tag, VR, 2 reserved, 4-byte length
        length, offset = int.from_bytes(head[8:12], "little"), start + 12
    else:
        length, offset = int.from_bytes(head[4:8], "little"), start + 8
    return None if length == 0xFFFFFFFF else (offset, length)


def read_headers(path: str | Path, *, quick: bool = True) -> list[SliceHeader]:
    """The slices one DICOM file holds, from its header only.

    Parameters
    ----------
    path
        The file.
    quick
        Try :func:`engine.io.dicom_quick.read_quick` first (classic files, several times faster
        than building a pydicom Dataset); ``False`` always reads with pydicom. Both give the
        same result.

    Raises
    ------
    DicomError
        The file is empty, not DICOM, damaged, or not an image (DICOMDIR, SEG, SR...), with the
        path and the reason.
    """
    path = Path(path)
    found = read_quick(path) if quick else None
    fast: FastHeader | QuickHeader
    if found is not None:
        fast, pixels, _syntax, meta_sop_class = found
        sop_class = str(fast.get("SOPClassUID") or meta_sop_class)
    else:
        ds, pixels = _open(path)
        fast = FastHeader(ds)
        sop_class = str(fast.get("SOPClassUID") or _meta_uid(ds, 0x00020002))
    if sop_class in _NOT_IMAGES:
        raise DicomError(f"{_NOT_IMAGES[sop_class]}, not an image", path)
    rows, cols = as_int(fast.get("Rows")), as_int(fast.get("Columns"))
    if not rows or not cols:
        raise DicomError("no image in this DICOM file (no Rows/Columns)", path)
    try:
        return _slices(path, fast, sop_class, rows, cols, pixels)
    except DicomError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError) as err:  # malformed values
        raise DicomError(f"damaged DICOM header ({type(err).__name__}: {err})", path) from err


_COMPLEX_PARTS = {"M", "P", "R", "I", "MAGNITUDE", "PHASE", "REAL", "IMAGINARY", "PHASE MAP"}


def _image_kind(values: list[str]) -> str:
    """What of a classic ImageType tells stacks apart: value 3 and any magnitude/phase marker.

    Later values vary within one volume on some scanners (a CT adding "HELIX" to some slices),
    so they are not used, except the complex-part markers that separate magnitude from phase.
    """
    values = [v.strip().upper() for v in values]
    parts = values[2:3] + [v for v in values[3:] if v in _COMPLEX_PARTS]
    return "\\".join(parts)


def _native_layout(ds: FastHeader | QuickHeader, pixels: tuple[int, int] | None, n_frames: int, rows: int,
                   cols: int) -> tuple[int | None, str, int]:
    """``(offset of frame 1, dtype, bits stored)`` when pixels can be read straight from the file."""
    allocated, signed = as_int(ds.get("BitsAllocated")), as_int(ds.get("PixelRepresentation")) or 0
    samples = as_int(ds.get("SamplesPerPixel")) or 1
    if pixels is None or samples != 1 or allocated not in (8, 16, 32):
        return None, "", 0
    dtype = f"<{'i' if signed else 'u'}{allocated // 8}"
    if pixels[1] < n_frames * rows * cols * (allocated // 8):
        return None, "", 0  # short pixel data: the loader's careful path reports it
    return pixels[0], dtype, as_int(ds.get("BitsStored")) or allocated


def _slices(path: Path, ds: FastHeader | QuickHeader, sop_class: str, rows: int, cols: int,
            pixels: tuple[int, int] | None) -> list[SliceHeader]:
    n_frames = as_int(ds.get("NumberOfFrames")) or 1
    offset0, pixel_dtype, bits_stored = _native_layout(ds, pixels, n_frames, rows, cols)
    frame_bytes = rows * cols * (int(pixel_dtype[2:]) if pixel_dtype else 0)
    shared = _item(ds, "SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    if per_frame and len(per_frame) != n_frames:
        raise DicomError(f"{len(per_frame)} per-frame groups for {n_frames} frames", path)
    base_position = as_floats(ds.get("ImagePositionPatient"), 3)
    base_orient = as_floats(ds.get("ImageOrientationPatient"), 6)
    offsets = as_floats(ds.get("GridFrameOffsetVector"), n_frames) if n_frames > 1 else None
    common = dict(
        path=path, sop_uid=str(ds.get("SOPInstanceUID", "")), sop_class=sop_class,
        series_uid=str(ds.get("SeriesInstanceUID", "")) or f"no-series-uid:{path}",
        study_uid=str(ds.get("StudyInstanceUID", "")),
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
        modality=as_text(ds.get("Modality")), description=as_text(ds.get("SeriesDescription")),
        series_number=as_int(ds.get("SeriesNumber")), rows=rows, cols=cols,
        samples=as_int(ds.get("SamplesPerPixel")) or 1,
        instance_number=as_int(ds.get("InstanceNumber")),
    )
    image_type = _image_kind(as_text(ds.get("ImageType")).split("\\"))
    acq = float(as_int(ds.get("AcquisitionNumber")) or 0)
    base_order = (acq, float(as_int(ds.get("TemporalPositionIdentifier")) or 0), as_float(ds.get("TriggerTime"), 0.0) or 0.0,
                  as_time(ds.get("AcquisitionTime")) or as_time(ds.get("ContentTime")),
                  float(common["instance_number"] or 0))
    out = []
    shared_groups = _group_items(shared)
    for f in range(n_frames):
        frame = per_frame[f] if per_frame else None
        position = base_position
        orientation = base_orient
        spacing = as_floats(ds.get("PixelSpacing"), 2)
        thickness = as_float(ds.get("SliceThickness"))
        spacing_between = as_float(ds.get("SpacingBetweenSlices"))
        slope = as_float(ds.get("RescaleSlope")) or as_float(ds.get("DoseGridScaling"), 1.0)  # RT dose: Gy
        intercept = as_float(ds.get("RescaleIntercept"), 0.0)
        windows = _windows(ds)
        echo = as_text(ds.get("EchoNumbers"))
        temporal = as_text(ds.get("TemporalPositionIdentifier"))
        frame_type = image_type
        stack_id = ""
        order = base_order
        if frame is not None or shared is not None:
            frame_groups = _group_items(frame)
            groups = {**shared_groups, **frame_groups}  # per-frame wins over shared
            pos = groups.get("PlanePositionSequence")
            ori = groups.get("PlaneOrientationSequence")
            meas = groups.get("PixelMeasuresSequence")
            pvt = groups.get("PixelValueTransformationSequence")
            voi = groups.get("FrameVOILUTSequence")
            content = frame_groups.get("FrameContentSequence")
            mr_echo = groups.get("MREchoSequence")
            ftype = groups.get("MRImageFrameTypeSequence") or groups.get("CTImageFrameTypeSequence")
            if pos is not None:
                position = as_floats(pos.get("ImagePositionPatient"), 3) or position
            if ori is not None:
                orientation = as_floats(ori.get("ImageOrientationPatient"), 6) or orientation
            if meas is not None:
                spacing = as_floats(meas.get("PixelSpacing"), 2) or spacing
                thickness = as_float(meas.get("SliceThickness"), thickness)
                spacing_between = as_float(meas.get("SpacingBetweenSlices"), spacing_between)
            if pvt is not None:
                slope = as_float(pvt.get("RescaleSlope"), slope) or slope
                intercept = as_float(pvt.get("RescaleIntercept"), intercept)
            if voi is not None and _windows(voi):
                windows = _windows(voi)
            if mr_echo is not None and mr_echo.get("EffectiveEchoTime") is not None:
                echo = f"TE {as_float(mr_echo.get('EffectiveEchoTime'), 0.0):g}"
            if ftype is not None and ftype.get("FrameType"):
                frame_type = "\\".join(str(v) for v in list(ftype.get("FrameType"))[2:])  # type: ignore[arg-type]
            if content is not None:
                stack_id = as_text(content.get("StackID"))
                temporal = as_text(content.get("TemporalPositionIndex")) or temporal
                order = (*base_order[:1], float(as_int(content.get("TemporalPositionIndex")) or 0), *base_order[2:])
        elif offsets is not None and position is not None and orientation is not None:
            normal = np.cross(orientation[:3], orientation[3:6])
            position = tuple(float(v) for v in np.asarray(position) + offsets[f] * normal)
        out.append(SliceHeader(
            frame=f + 1 if n_frames > 1 else None, position=position, orientation=orientation,
            pixel_spacing=spacing, thickness=thickness,
            spacing_between=spacing_between,
            slope=slope if slope else 1.0, intercept=intercept or 0.0, windows=windows, echo=echo,
            image_type=frame_type, temporal=temporal, stack_id=stack_id, order=(*order, float(f)),
            pixel_offset=None if offset0 is None else offset0 + f * frame_bytes, pixel_dtype=pixel_dtype,
            bits_stored=bits_stored,
            **common,  # type: ignore[arg-type]
        ))
    return out
