"""Fast, tolerant reading of DICOM header values (shared by the header reader).

pydicom converts and validates every value it is asked for, which costs more than reading the
file when a scan only needs a few dozen plain values from each of thousands of files.
:class:`FastHeader` reads the raw bytes of the plain ASCII value types directly; the ``as_*``
helpers turn raw text or pydicom values into Python numbers and strings, returning ``None`` (or
"") for absent or malformed values instead of raising: a damaged optional tag must not make a
whole file unreadable.
"""

from __future__ import annotations

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.tag import Tag

__all__ = ["HEADER_TAGS", "TAG_LIST", "FastHeader", "as_floats", "as_float", "as_int", "as_text", "as_time"]

HEADER_TAGS = [
    "SOPClassUID", "SOPInstanceUID", "Modality", "SeriesInstanceUID", "StudyInstanceUID",
    "FrameOfReferenceUID", "SeriesDescription", "SeriesNumber", "Rows", "Columns", "NumberOfFrames",
    "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
    "SpacingBetweenSlices", "RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth",
    "WindowCenterWidthExplanation", "InstanceNumber", "AcquisitionNumber", "EchoNumbers", "ImageType",
    "TemporalPositionIdentifier", "TriggerTime", "AcquisitionTime", "ContentTime", "SamplesPerPixel",
    "SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence", "GridFrameOffsetVector",
    "BitsAllocated", "BitsStored", "PixelRepresentation", "DoseGridScaling",
]
_TAGS = {k: tag_for_keyword(k) for k in HEADER_TAGS}
TAG_LIST = [Tag(k) for k in HEADER_TAGS]  # converted once, not on every dcmread
_TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI"}  # ASCII only: no character set issue
_CHARSET_VRS = {"LO", "SH"}  # read raw only when every byte is ASCII (same in every character set)


class FastHeader:
    """``get(keyword)`` on a freshly read dataset without pydicom's value conversion.

    pydicom converts and validates every value it is asked for, which costs more than reading
    the file. For the plain ASCII value types this reads the raw bytes as text (multi-values
    keep their backslashes); everything else (sequences, person names, free text in a
    character set) goes through pydicom as usual.
    """

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self.elements = dict(ds.items())  # tag -> element as read (no conversion)
        encoding = getattr(ds, "original_encoding", (False, True))
        self.byteorder = "little" if encoding[1] is not False else "big"

    def get(self, keyword: str, default: object = None) -> object:
        """The value of ``keyword``: raw text for ASCII value types, else pydicom's value."""
        tag = _TAGS.get(keyword)
        if tag is None:
            return self.ds.get(keyword, default)
        elem = self.elements.get(tag)
        if elem is None:
            return default
        if isinstance(elem, RawDataElement):
            vr = elem.VR or dictionary_VR(tag)
            raw = elem.value
            if raw is None or raw == b"":
                return default
            if vr == "US":
                return int.from_bytes(raw[:2], self.byteorder)  # type: ignore[arg-type]
            if vr in _TEXT_VRS or (vr in _CHARSET_VRS and raw.isascii()):
                text = raw.decode("ascii" if vr in _CHARSET_VRS else "latin-1").strip(" \x00")
                return text if text else default
            return self.ds.get(keyword, default)
        value = elem.value
        return default if value is None or value == "" else value


def as_floats(value: object, n: int) -> tuple[float, ...] | None:
    """The first ``n`` floats (all when ``n`` is 0) of a multi-valued DS, ``None`` when absent or malformed."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = value.split("\\")
    try:
        vals = tuple(float(v) for v in (value if isinstance(value, (list, tuple, pydicom.multival.MultiValue))
                                        else [value]))
    except (TypeError, ValueError):
        return None
    vals = vals[:n] if n else vals
    if len(vals) < n or not all(np.isfinite(vals)):
        return None
    return vals


def as_float(value: object, default: float | None = None) -> float | None:
    vals = as_floats(value, 1)
    return vals[0] if vals else default


def as_int(value: object) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        try:
            return int(float(str(value).split("\\")[0]))
        except ValueError:
            return None


def as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def as_time(value: object) -> float:
    """HHMMSS.frac as seconds (0 when absent)."""
    text = as_text(value)
    try:
        return float(text[:2] or 0) * 3600 + float(text[2:4] or 0) * 60 + float(text[4:] or 0)
    except ValueError:
        return 0.0
