"""The quick header reader gives exactly what pydicom gives, and steps aside when it should."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian, JPEGLSLossless

from engine.errors import DicomError
from engine.io.dicom_headers import read_headers
from engine.io.dicom_quick import read_quick
from tests.engine.io.dicom_synth import write_multiframe, write_series


def _both(path: Path) -> tuple[object, object]:
    def read(quick: bool) -> object:
        try:
            return read_headers(path, quick=quick)
        except DicomError as err:
            return ("error", err.reason)
    return read(True), read(False)


def _pydicom_test_files() -> list[Path]:
    folder = Path(get_testdata_file("CT_small.dcm")).parent  # pydicom's own (local) test files
    return sorted(folder.glob("*.dcm"))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_same_headers_as_pydicom_on_pydicom_test_files() -> None:
    files = _pydicom_test_files()
    assert len(files) > 50
    used = 0
    for path in files:
        quick, slow = _both(path)
        assert quick == slow, path.name
        used += read_quick(path) is not None
    assert used > len(files) // 2  # the quick path really ran on most of them


def test_same_headers_as_pydicom_on_real_scanner_files(dicom_qa: Path) -> None:
    for path in sorted(dicom_qa.glob("*/dicom/*")):
        quick, slow = _both(path)
        assert quick == slow, path


def test_implicit_vr_compressed_and_nested_sequences(tmp_path: Path) -> None:
    implicit = write_series(tmp_path / "imp", shape=(2, 8, 8), transfer_syntax=ImplicitVRLittleEndian)
    jls = write_series(tmp_path / "jls", shape=(2, 8, 8), transfer_syntax=JPEGLSLossless)
    nested = write_series(tmp_path / "seq", shape=(2, 8, 8))
    for path in nested.paths:  # undefined-length sequences (one holding an UN element) before the pixels
        ds = pydicom.dcmread(path)
        inner = Dataset()
        inner.ReferencedSOPInstanceUID = "1.2.3"
        inner.add_new(0x00091010, "UN", b"\x01\x02\x03\x04")
        deeper = Dataset()
        deeper.CodeValue = "X"
        inner.add_new(0x00400260, "SQ", [deeper])
        ds.ReferencedImageSequence = [inner, Dataset()]
        ds["ReferencedImageSequence"].is_undefined_length = True
        for item in ds.ReferencedImageSequence:
            item.is_undefined_length_sequence_item = True
        ds.save_as(path)
    for series in (implicit, jls, nested):
        for path in series.paths:
            assert read_quick(path) is not None, path
            quick, slow = _both(path)
            assert quick == slow
    [native] = read_headers(implicit.paths[0])
    assert native.pixel_offset is not None and native.pixel_dtype == "<i2"
    assert read_headers(jls.paths[0])[0].pixel_offset is None  # encapsulated: decoded by pydicom


def test_steps_aside_for_what_it_does_not_read(tmp_path: Path) -> None:
    enhanced = write_multiframe(tmp_path / "mf.dcm", shape=(3, 8, 8))
    assert read_quick(enhanced.paths[0]) is None  # functional groups: pydicom parses them
    s = write_series(tmp_path / "a", shape=(1, 8, 8))
    ds = pydicom.dcmread(s.paths[0])
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SeriesDescription = "Lungen-Übersicht"
    ds.save_as(s.paths[0])
    assert read_quick(s.paths[0]) is None  # non-ASCII text: pydicom decodes the character set
    assert read_headers(s.paths[0])[0].description == "Lungen-Übersicht"
    assert read_quick(get_testdata_file("MR_small_bigendian.dcm")) is None
    assert read_headers(get_testdata_file("MR_small_bigendian.dcm"))[0].rows == 64
    data = s.paths[0].read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[:300])
    assert read_quick(tmp_path / "cut.dcm") is None
    (tmp_path / "text.dcm").write_bytes(b"hello" * 100)
    assert read_quick(tmp_path / "text.dcm") is None
