"""Loading series: values, rescale and dtype, geometry (by hand and against SimpleITK),
multi-frame/enhanced files, compressed transfer syntaxes, pydicom-data's real files, damage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

from engine.errors import Cancelled, DicomError
from engine.io.dicom import load_series, read_dicom_folder, scan_dicom
from engine.jobs import CancelToken
from tests.engine.io.dicom_synth import oblique_direction, ramp_volume, write_multiframe, write_series


def test_ct_rescale_to_int16_with_windows_and_sources(tmp_path: Path) -> None:
    s = write_series(tmp_path, shape=(6, 10, 12), shuffle=True, rescale_intercept=-1024.0,
                     window=(40.0, 400.0, "SOFT TISSUE"))
    v = read_dicom_folder(tmp_path)
    assert v.array.dtype == np.int16
    np.testing.assert_array_equal(v.array, s.stored.astype(np.int32) - 1024)
    assert v.modality == "CT" and v.series_uid == s.series_uid and v.study_uid == s.study_uid
    assert v.frame_of_reference_uid == s.frame_of_reference_uid
    assert [(w.name, w.center, w.width) for w in v.windows] == [("SOFT TISSUE", 40.0, 400.0)]
    assert [i.path for i in v.source_instances] == list(s.paths)
    assert [i.sop_instance_uid for i in v.source_instances] == [pydicom.dcmread(p).SOPInstanceUID for p in s.paths]
    assert all(i.frame is None for i in v.source_instances)
    assert v.source == tmp_path


def test_non_integer_rescale_gives_float32(tmp_path: Path) -> None:
    s = write_series(tmp_path, shape=(4, 8, 8), modality="MR", rescale_slope=0.5, rescale_intercept=0.25)
    v = read_dicom_folder(tmp_path)
    assert v.array.dtype == np.float32
    np.testing.assert_allclose(v.array, s.stored * 0.5 + 0.25, rtol=0, atol=1e-4)


def test_unsigned_values_above_int16_go_to_int32(tmp_path: Path) -> None:
    stored = (ramp_volume((3, 8, 8)).astype(np.uint16) + 40000).astype(np.uint16)
    write_series(tmp_path, shape=(3, 8, 8), stored=stored, modality="MR", rescale_intercept=0.0)
    v = read_dicom_folder(tmp_path)
    assert v.array.dtype == np.int32
    np.testing.assert_array_equal(v.array, stored.astype(np.int32))


def test_bits_stored_sign_extension(tmp_path: Path) -> None:
    s = write_series(tmp_path, shape=(2, 4, 4), stored=np.full((2, 4, 4), -5, np.int16), rescale_intercept=0.0)
    for p in s.paths:  # 12-bit two's complement with the high nibble clear
        ds = pydicom.dcmread(p)
        ds.BitsStored, ds.HighBit = 12, 11
        ds.PixelData = np.full((4, 4), 0x0FFB, np.uint16).tobytes()
        ds.save_as(p)
    np.testing.assert_array_equal(read_dicom_folder(tmp_path).array, -5)


def test_oblique_geometry_by_hand_and_against_simpleitk(tmp_path: Path) -> None:
    direction = oblique_direction(25.0, -10.0)
    write_series(tmp_path, shape=(7, 12, 16), spacing=(0.6, 0.9, 3.0), origin=(10.0, -40.0, 25.0),
                 direction=direction, shuffle=True)
    v = read_dicom_folder(tmp_path)
    np.testing.assert_allclose(v.spacing, (0.6, 0.9, 3.0), atol=1e-6)
    np.testing.assert_allclose(v.origin, (10.0, -40.0, 25.0), atol=1e-6)
    np.testing.assert_allclose(v.direction, direction, atol=1e-6)
    # hand computation: voxel (x=3, y=5, z=6) sits at origin + 3*0.6*row + 5*0.9*col + 6*3*normal
    expected = np.array([10.0, -40.0, 25.0]) + 1.8 * direction[:, 0] + 4.5 * direction[:, 1] + 18 * direction[:, 2]
    np.testing.assert_allclose(v.index_to_lps(np.array([3, 5, 6])), expected, atol=1e-6)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path)))
    ref = reader.Execute()
    np.testing.assert_allclose(v.spacing, ref.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(v.origin, ref.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(v.direction.ravel(), ref.GetDirection(), atol=1e-5)
    np.testing.assert_array_equal(v.array, sitk.GetArrayFromImage(ref))


def test_slices_stacked_against_the_normal_are_reordered(tmp_path: Path) -> None:
    # positions decrease along the normal: z must still ascend along row x column
    flip = np.diag([1.0, 1.0, -1.0])
    s = write_series(tmp_path, shape=(5, 8, 8), direction=flip, origin=(0.0, 0.0, 0.0), spacing=(1, 1, 2))
    v = read_dicom_folder(tmp_path)
    np.testing.assert_allclose(v.direction, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(v.origin, (0.0, 0.0, -8.0))
    np.testing.assert_array_equal(v.array, (s.stored.astype(np.int32) - 1024)[::-1])


def test_enhanced_multiframe_with_per_frame_rescale(tmp_path: Path) -> None:
    order = [3, 0, 4, 1, 5, 2]
    rescale = [(0.5 + 0.25 * k, float(k)) for k in range(6)]
    m = write_multiframe(tmp_path / "mf.dcm", shape=(6, 10, 12), frame_order=order, rescale=rescale,
                         direction=oblique_direction())
    v = read_dicom_folder(tmp_path)
    assert v.shape == (6, 10, 12) and v.array.dtype == np.float32
    full = np.empty((6, 10, 12))
    for f, k in enumerate(order):
        full[k] = m.stored[f] * rescale[f][0] + rescale[f][1]
    np.testing.assert_allclose(v.array, full, atol=1e-4)
    assert [i.frame for i in v.source_instances] == [order.index(k) + 1 for k in range(6)]
    np.testing.assert_allclose(v.origin, m.origin, atol=1e-6)
    np.testing.assert_allclose(v.direction, m.direction, atol=1e-6)
    np.testing.assert_allclose(v.spacing, m.spacing, atol=1e-6)


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless], ids=["rle", "jpegls", "j2k"])
def test_compressed_series_equal_uncompressed(tmp_path: Path, syntax: str) -> None:
    s = write_series(tmp_path / "c", shape=(4, 32, 40), transfer_syntax=syntax)  # J2K needs >= 32 px
    assert pydicom.dcmread(s.paths[0]).file_meta.TransferSyntaxUID == syntax
    np.testing.assert_array_equal(read_dicom_folder(tmp_path / "c").array, s.stored.astype(np.int32) - 1024)


def test_compressed_enhanced_multiframe(tmp_path: Path) -> None:
    m = write_multiframe(tmp_path / "mf.dcm", shape=(5, 8, 8), transfer_syntax=RLELossless)
    np.testing.assert_array_equal(read_dicom_folder(tmp_path).array, m.stored)


def test_pydicom_data_real_ct_slice() -> None:
    path = Path(get_testdata_file("CT_small.dcm"))
    ds = pydicom.dcmread(path)
    [info] = scan_dicom(path)
    v = load_series(info)
    assert v.shape == (1, 128, 128) and v.modality == "CT"
    expected = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(v.array[0], expected)
    np.testing.assert_allclose(v.origin, [float(x) for x in ds.ImagePositionPatient])
    np.testing.assert_allclose(v.spacing[:2], [float(ds.PixelSpacing[1]), float(ds.PixelSpacing[0])])


@pytest.mark.parametrize("compressed, plain", [("693_J2KR.dcm", "693_UNCR.dcm"), ("MR2_J2KR.dcm", "MR2_UNCR.dcm"),
                                               ("emri_small_jpeg_ls_lossless.dcm", "emri_small.dcm"),
                                               ("emri_small_RLE.dcm", "emri_small.dcm")])
def test_pydicom_data_real_compressed_files(compressed: str, plain: str) -> None:
    a = load_series(scan_dicom(get_testdata_file(compressed))[0], allow_irregular=True)
    b = load_series(scan_dicom(get_testdata_file(plain))[0], allow_irregular=True)
    assert a.shape == b.shape
    np.testing.assert_array_equal(a.array, b.array)


def test_file_without_geometry_needs_allow_irregular() -> None:
    [info] = scan_dicom(get_testdata_file("emri_small.dcm"))  # enhanced MR stripped of its functional groups
    assert info.num_slices == 10
    assert any("geometry is unknown" in p for p in info.problems)
    with pytest.raises(DicomError, match="allow_irregular"):
        load_series(info)


def test_truncated_pixel_data_names_the_file(tmp_path: Path) -> None:
    s = write_series(tmp_path, shape=(3, 16, 16))
    data = s.paths[1].read_bytes()
    s.paths[1].write_bytes(data[: len(data) - 100])
    [info] = scan_dicom(tmp_path)  # the header is intact, so the scan still sees 3 slices
    with pytest.raises(DicomError) as err:
        load_series(info)
    assert str(s.paths[1]) in str(err.value) and "truncated" in str(err.value)


def test_file_deleted_after_scan(tmp_path: Path) -> None:
    s = write_series(tmp_path, shape=(3, 8, 8))
    [info] = scan_dicom(tmp_path)
    s.paths[2].unlink()
    with pytest.raises(DicomError, match="disappeared"):
        load_series(info)


def test_load_progress_and_cancel(tmp_path: Path) -> None:
    write_series(tmp_path, shape=(4, 8, 8))
    [info] = scan_dicom(tmp_path)
    calls = []
    load_series(info, progress=lambda d, t, m: calls.append((d, t)))
    assert calls[-1] == (4, 4)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        load_series(info, cancel=token)


def test_pydicom_data_rt_dose_grid_against_simpleitk() -> None:
    path = get_testdata_file("rtdose.dcm")  # multi-frame, frame positions from GridFrameOffsetVector
    v = read_dicom_folder(path)
    ref = sitk.ReadImage(path)
    np.testing.assert_allclose(v.spacing, ref.GetSpacing())
    np.testing.assert_allclose(v.origin, ref.GetOrigin())
    np.testing.assert_allclose(v.direction.ravel(), ref.GetDirection())
    scaling = float(pydicom.dcmread(path).DoseGridScaling)
    np.testing.assert_allclose(v.array, sitk.GetArrayFromImage(ref) * scaling, rtol=1e-6)  # Gy


def test_colour_images_are_listed_but_not_loaded() -> None:
    [info] = scan_dicom(get_testdata_file("SC_rgb.dcm"))
    assert any("colour" in p for p in info.problems)
    with pytest.raises(DicomError, match="colour"):
        load_series(info, allow_irregular=True)


@pytest.mark.parametrize("name", ["JPEG-LL.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm"])
def test_pydicom_data_jpeg_lossless_decode_like_pydicom(name: str) -> None:
    path = get_testdata_file(name)
    [info] = scan_dicom(path)
    v = load_series(info, allow_irregular=True)  # secondary captures: no patient geometry
    expected = pydicom.dcmread(path).pixel_array
    np.testing.assert_array_equal(v.array.reshape(expected.shape), expected)


def test_float_pixel_data_with_nan_is_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    s = write_series(tmp_path, shape=(2, 4, 4), modality="MR", rescale_intercept=0.0)
    values = np.arange(32, dtype=np.float32).reshape(2, 4, 4) / 4
    values[1, 2, 3] = np.nan
    for k, p in enumerate(s.paths):  # parametric-map style Float Pixel Data
        ds = pydicom.dcmread(p)
        del ds.PixelData
        del ds.PixelRepresentation
        ds.BitsAllocated = 32
        del ds.BitsStored, ds.HighBit
        ds.FloatPixelData = values[k].tobytes()
        ds.save_as(p)
    with caplog.at_level(logging.WARNING, logger="engine.io.dicom_load"):
        v = read_dicom_folder(tmp_path)
    assert v.array.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(v.array), np.isnan(values))
    np.testing.assert_array_equal(v.array[~np.isnan(values)], values[~np.isnan(values)])
    assert "1 NaN voxel" in caplog.text
