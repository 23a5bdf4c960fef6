"""read_volume / is_volume_source: NIfTI, NRRD, MHA/MHD geometry, DICOM dispatch, bad files."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from engine.errors import AmbiguousSeriesError, DicomError, ItemReadError, UnsupportedFormatError
from engine.io.volumes import is_volume_source, read_volume
from tests.engine.io.dicom_synth import oblique_direction, write_multiframe, write_series


def _image(array: np.ndarray, *, spacing=(0.7, 0.8, 2.5), origin=(-5.0, 12.0, 30.0), direction=None) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    d = oblique_direction() if direction is None else direction
    image.SetDirection(tuple(float(v) for v in np.asarray(d).ravel()))
    return image


@pytest.mark.parametrize("name", ["v.nii", "v.nii.gz", "v.nrrd", "v.nhdr", "v.mha", "v.mhd"])
def test_itk_formats_keep_geometry(tmp_path: Path, name: str) -> None:
    array = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    sitk.WriteImage(_image(array), str(tmp_path / name))
    v = read_volume(tmp_path / name)
    np.testing.assert_array_equal(v.array, array)
    np.testing.assert_allclose(v.spacing, (0.7, 0.8, 2.5), atol=1e-5)
    np.testing.assert_allclose(v.origin, (-5.0, 12.0, 30.0), atol=1e-4)
    np.testing.assert_allclose(v.direction, oblique_direction(), atol=1e-5)
    assert v.source == tmp_path / name and v.description == "v"


def test_nifti_ras_affine_becomes_lps(tmp_path: Path) -> None:
    affine = np.diag([2.0, 3.0, 4.0, 1.0])
    affine[:3, 3] = (10.0, 20.0, 30.0)
    array_xyz = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    nib.save(nib.Nifti1Image(array_xyz, affine), str(tmp_path / "ras.nii.gz"))
    v = read_volume(tmp_path / "ras.nii.gz")
    assert v.shape == (5, 4, 3)
    np.testing.assert_allclose(v.origin, (-10.0, -20.0, 30.0))
    np.testing.assert_allclose(v.direction, np.diag([-1.0, -1.0, 1.0]))
    np.testing.assert_allclose(v.spacing, (2.0, 3.0, 4.0))
    np.testing.assert_array_equal(v.array, array_xyz.transpose(2, 1, 0))


def test_nan_is_reported_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    array = np.ones((3, 4, 4), np.float32)
    array[1, 2, 2] = np.nan
    sitk.WriteImage(_image(array), str(tmp_path / "nan.nii.gz"))
    with caplog.at_level(logging.WARNING, logger="engine.io.volumes"):
        v = read_volume(tmp_path / "nan.nii.gz")
    assert np.isnan(v.array).sum() == 1
    assert "1 NaN voxel" in caplog.text


def test_4d_with_several_volumes_is_refused(tmp_path: Path) -> None:
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 3, 2), np.int16), np.eye(4)), str(tmp_path / "4d.nii"))
    with pytest.raises(UnsupportedFormatError, match="4D"):
        read_volume(tmp_path / "4d.nii")
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 3, 1), np.int16), np.eye(4)), str(tmp_path / "4d1.nii"))
    assert read_volume(tmp_path / "4d1.nii").shape == (3, 4, 4)


def test_damaged_volume_files_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "zero.nii.gz").write_bytes(b"")
    with pytest.raises(ItemReadError, match="empty") as err:
        read_volume(tmp_path / "zero.nii.gz")
    assert str(tmp_path / "zero.nii.gz") in str(err.value)
    noise = np.random.default_rng(0).integers(-1000, 1000, size=(8, 16, 16)).astype(np.int16)
    sitk.WriteImage(_image(noise), str(tmp_path / "full.nii"))
    data = (tmp_path / "full.nii").read_bytes()
    (tmp_path / "cut.nii").write_bytes(data[: len(data) // 2])
    with pytest.raises(ItemReadError) as err:
        read_volume(tmp_path / "cut.nii")
    assert "cut.nii" in str(err.value)
    (tmp_path / "cut.nii.gz").write_bytes(gzip.compress(data)[:300])
    with pytest.raises(ItemReadError, match="cut.nii.gz"):
        read_volume(tmp_path / "cut.nii.gz")
    (tmp_path / "text.nrrd").write_text("hello, not a volume")
    with pytest.raises(ItemReadError, match="text.nrrd"):
        read_volume(tmp_path / "text.nrrd")
    with pytest.raises(ItemReadError, match="no such"):
        read_volume(tmp_path / "missing.mha")


def test_dicom_folder_and_file_dispatch(tmp_path: Path) -> None:
    a = write_series(tmp_path / "two", prefix="A", shape=(4, 8, 8))
    write_series(tmp_path / "two", prefix="B", shape=(3, 8, 8))
    with pytest.raises(AmbiguousSeriesError):
        read_volume(tmp_path / "two")
    assert read_volume(tmp_path / "two", series=a.series_uid).shape == (4, 8, 8)
    m = write_multiframe(tmp_path / "mf" / "enhanced.dcm", shape=(5, 8, 8))
    v = read_volume(m.paths[0])
    assert v.shape == (5, 8, 8) and v.source == m.paths[0]


def test_bad_dicom_files(tmp_path: Path) -> None:
    (tmp_path / "zero.dcm").write_bytes(b"")
    with pytest.raises(DicomError, match="empty") as err:
        read_volume(tmp_path / "zero.dcm")
    assert str(tmp_path / "zero.dcm") in str(err.value)
    (tmp_path / "wrong.dcm").write_bytes(b"this is not DICOM at all" * 10)
    with pytest.raises(DicomError, match="not a DICOM file"):
        read_volume(tmp_path / "wrong.dcm")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    with pytest.raises(UnsupportedFormatError):
        read_volume(tmp_path / "photo.png")


def test_is_volume_source(tmp_path: Path) -> None:
    s = write_series(tmp_path / "dicom" / "nested", shape=(2, 8, 8))
    Image.new("RGB", (8, 8)).save(tmp_path / "photo.png")
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "photos" / "a.jpg")
    (tmp_path / "photos" / "notes.txt").write_text("x")
    sitk.WriteImage(_image(np.zeros((2, 3, 4), np.int16)), str(tmp_path / "v.nii.gz"))
    assert is_volume_source(tmp_path / "dicom")
    assert is_volume_source(s.paths[0])
    assert is_volume_source(tmp_path / "v.nii.gz")
    assert not is_volume_source(tmp_path / "photo.png")
    assert not is_volume_source(tmp_path / "photos")


def test_irregular_dicom_needs_allow_irregular(tmp_path: Path) -> None:
    from engine.errors import SeriesGeometryError

    write_series(tmp_path, shape=(5, 8, 8), drop=[2])
    with pytest.raises(SeriesGeometryError, match="missing"):
        read_volume(tmp_path)
    assert read_volume(tmp_path, allow_irregular=True).shape == (4, 8, 8)


def test_dicomdir_opens_its_folder(tmp_path: Path) -> None:
    from pydicom.data import get_testdata_file

    s = write_series(tmp_path, shape=(3, 8, 8))
    (tmp_path / "DICOMDIR").write_bytes(Path(get_testdata_file("DICOMDIR")).read_bytes())
    v = read_volume(tmp_path / "DICOMDIR")
    assert v.shape == (3, 8, 8) and v.series_uid == s.series_uid
