"""A minimal reader of the top-level header elements of classic DICOM files, for fast scans.

Scanning a folder reads a few dozen plain values from each of thousands of files; building a
full pydicom Dataset for each costs several times more than the reading itself. This module walks
the element stream of a Part-10 file (explicit or implicit VR little endian, which covers the
datasets of every compressed transfer syntax too) and keeps the raw bytes of the wanted tags,
skipping everything else (sequences included) until the pixel data.

It answers ``None`` for anything it does not handle, and the caller then reads the file with
pydicom: no preamble, big endian or deflated syntaxes, enhanced files whose functional-group
sequences must be parsed, non-ASCII text in a wanted value, damaged or truncated headers.
Tests check that both paths give identical slice headers on real and synthetic files.
"""

from __future__ import annotations

import struct
from pathlib import Path

from pydicom.datadict import dictionary_VR, tag_for_keyword

from engine.io.dicom_values import HEADER_TAGS

__all__ = ["QuickHeader", "read_quick"]

_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_IMPLICIT_LE = "1.2.840.10008.1.2"
_BIG_OR_DEFLATED = {"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"}
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}
_NEEDS_PYDICOM = {tag_for_keyword("SharedFunctionalGroupsSequence"), tag_for_keyword("PerFrameFunctionalGroupsSequence")}
_KEYWORD_TAGS = {k: tag_for_keyword(k) for k in HEADER_TAGS}
_WANTED = set(_KEYWORD_TAGS.values())
_VR = {tag: dictionary_VR(tag) for tag in _WANTED}
_TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI", "LO", "SH"}
_HEAD = struct.Struct("<HH")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


class _Incomplete(Exception):
    """The buffer ended inside an element: read more of the file, or give up at its end."""


class QuickHeader:
    """``get(keyword)`` over the raw values :func:`read_quick` kept: text, or an int for US."""

    def __init__(self, elements: dict[int, bytes]) -> None:
        self.elements = elements

    def get(self, keyword: str, default: object = None) -> object:
        """The value of a :data:`~engine.io.dicom_values.HEADER_TAGS` keyword, else ``default``."""
        tag = _KEYWORD_TAGS.get(keyword)
        raw = self.elements.get(tag) if tag is not None else None
        if not raw:
            return default
        if _VR[tag] == "US":
            return _U16.unpack_from(raw)[0] if len(raw) >= 2 else default
        text = raw.decode("ascii").strip(" \x00")
        return text if text else default


def read_quick(path: str | Path) -> tuple[QuickHeader, tuple[int, int] | None, str, str] | None:
    """Read the wanted header values of a classic DICOM file without pydicom.

    Returns
    -------
    (header, pixels, transfer syntax, media storage SOP class) or None
        ``pixels`` is ``(value offset, value length)`` of a defined-length Pixel Data element
        (``None`` when encapsulated or absent). ``None`` overall: use pydicom (see the module
        docstring).
    """
    try:
        with open(path, "rb") as fh:
            buf = fh.read(16384)
            while True:
                try:
                    return _parse(buf)
                except _Incomplete:
                    more = fh.read(3 * len(buf))
                    if not more:  # the whole file is in the buffer: its header is truncated
                        return None
                    buf += more
    except (OSError, struct.error, UnicodeDecodeError, ValueError):
        return None


def _parse(buf: bytes) -> tuple[QuickHeader, tuple[int, int] | None, str, str] | None:
    if len(buf) < 132:
        raise _Incomplete
    if buf[128:132] != b"DICM":
        return None
    pos, meta = 132, {}
    while pos + 8 <= len(buf) and _HEAD.unpack_from(buf, pos)[0] == 0x0002:
        group, elem = _HEAD.unpack_from(buf, pos)
        vr = buf[pos + 4:pos + 6]
        if vr in _LONG_VRS:
            length, header = _U32.unpack_from(buf, pos + 8)[0], 12
        else:
            length, header = _U16.unpack_from(buf, pos + 6)[0], 8
        if length == _UNDEFINED or pos + header + length > len(buf):
            raise _Incomplete if length != _UNDEFINED else ValueError("undefined length in file meta")
        meta[elem] = buf[pos + header:pos + header + length]
        pos += header + length
    syntax = meta.get(0x0010, b"").decode("ascii").strip(" \x00")
    sop_class = meta.get(0x0002, b"").decode("ascii").strip(" \x00")
    if not syntax or syntax in _BIG_OR_DEFLATED:
        return None
    explicit = syntax != _IMPLICIT_LE
    elements: dict[int, bytes] = {}
    while True:
        if pos + 8 > len(buf):
            if pos == len(buf):  # the dataset ends without pixel data
                return QuickHeader(elements), None, syntax, sop_class
            raise _Incomplete
        tag, vr, length, header = _element(buf, pos, explicit)
        if tag in _PIXEL_TAGS:
            native = syntax in (_EXPLICIT_LE, _IMPLICIT_LE) and tag == 0x7FE00010 and length != _UNDEFINED
            return QuickHeader(elements), ((pos + header, length) if native else None), syntax, sop_class
        if tag in _NEEDS_PYDICOM:
            return None
        if length == _UNDEFINED:
            pos = _skip_sequence(buf, pos + header, explicit and vr != b"UN")
            continue
        end = pos + header + length
        if end > len(buf):
            raise _Incomplete
        if tag in _WANTED:
            value = buf[pos + header:end]
            if _VR[tag] in _TEXT_VRS and not value.isascii():
                return None  # text in a character set: let pydicom decode it
            elements[tag] = value
        pos = end


def _element(buf: bytes, pos: int, explicit: bool) -> tuple[int, bytes, int, int]:
    """``(tag, VR bytes or b"", value length, header size)`` of the element at ``pos``."""
    group, elem = _HEAD.unpack_from(buf, pos)
    tag = (group << 16) | elem
    if group == 0xFFFE:  # item / delimiters: no VR in either encoding
        return tag, b"", _U32.unpack_from(buf, pos + 4)[0], 8
    if not explicit:
        return tag, b"", _U32.unpack_from(buf, pos + 4)[0], 8
    vr = buf[pos + 4:pos + 6]
    if not (len(vr) == 2 and 65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
        raise ValueError(f"bad VR at byte {pos}")
    if vr in _LONG_VRS:
        if pos + 12 > len(buf):
            raise _Incomplete
        return tag, vr, _U32.unpack_from(buf, pos + 8)[0], 12
    return tag, vr, _U16.unpack_from(buf, pos + 6)[0], 8


def _skip_sequence(buf: bytes, pos: int, explicit: bool) -> int:
    """Skip an undefined-length sequence's items; returns the position after its delimiter."""
    while True:
        if pos + 8 > len(buf):
            raise _Incomplete
        tag, _vr, length, header = _element(buf, pos, explicit)
        pos += header
        if tag == _SEQ_END:
            return pos
        if tag != _ITEM:
            raise ValueError(f"expected an item at byte {pos - header}")
        if length != _UNDEFINED:
            pos += length
            continue
        while True:  # an undefined-length item: nested elements until the item delimiter
            if pos + 8 > len(buf):
                raise _Incomplete
            tag, vr, length, header = _element(buf, pos, explicit)
            if tag == _ITEM_END:
                pos += header
                break
            if length == _UNDEFINED:
                pos = _skip_sequence(buf, pos + header, explicit and vr != b"UN")
            else:
                pos += header + length
