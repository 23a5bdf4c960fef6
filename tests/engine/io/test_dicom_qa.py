"""Real scanner cases (../shared/data/dicom_qa) against dcm2niix's reference NIfTI.

The reference is read with SimpleITK (LPS, like Maskwright); dcm2niix may flip the row order, so
geometry is compared through the physical positions of the eight corner voxels, and values by
resampling the reference (nearest neighbour, identity transform) onto our grid: a wrong axis,
flip or slice order would show up in both.

Scaling: Maskwright applies the standard DICOM rescale (RescaleSlope/Intercept). Where the
reference's JSON says ``UsePhilipsFloatNotDisplayScaling``, dcm2niix stored Philips' "precise"
values ``(PV * RS + RI) / (RS * SS)``, so ours must equal ``ref * RS * SS`` (RS, SS from the JSON,
rounded there to 6 digits: hence a relative tolerance).
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from engine.errors import AmbiguousSeriesError
from engine.io.dicom import SeriesInfo, load_series, read_dicom_folder, scan_folder
from engine.io.masks import volume_to_sitk
from engine.items import Volume

Pick = Callable[[list[SeriesInfo]], SeriesInfo]


@functools.lru_cache(maxsize=None)
def _scan(folder: Path) -> list[SeriesInfo]:
    """Scan each case once per test session (headers only; the load is what each test checks)."""
    return list(scan_folder(folder).series)


def _only(ss: list[SeriesInfo]) -> SeriesInfo:
    assert len(ss) == 1, [s.summary() for s in ss]
    return ss[0]


def _by(text: str) -> Pick:
    def pick(ss: list[SeriesInfo]) -> SeriesInfo:
        [s] = [s for s in ss if text in s.description]
        return s
    return pick


def _nth(k: int) -> Pick:
    return lambda ss: ss[k]


CASES = [
    ("ct_axial_philips", "*.nii.gz", None, _only),
    ("mr_sag_2d_siemens", "*.nii", None, _only),
    ("mr_oblique_philips", "*.nii.gz", None, _only),
    ("enh_philips_pcasl", "*.nii.gz", None, _only),
    ("enh_philips_fieldmap", "*_e1.nii", None, _by("T1\\M)")),
    ("enh_philips_fieldmap", "*_e2_fieldmaphz.nii", None, _by("FIELD_MAP")),
    ("mixed_philips_classic", "1901_*.nii.gz", None, _by("3DpCASL")),
    ("mixed_philips_classic", "*_e1.nii.gz", None, _by("echo 1, image type M_FFE")),
    ("mixed_philips_classic", "*_e1_ph.nii.gz", None, _by("echo 1, image type PHASE")),
    ("mixed_philips_classic", "*_e2.nii.gz", None, _by("echo 2, image type M_FFE")),
    ("mixed_philips_classic", "*_e2_ph.nii.gz", None, _by("echo 2, image type PHASE")),
    *[("enh_siemens_xa10_4d", "*.nii", t, _nth(t)) for t in range(4)],
    *[("mr_4d_ge_epi", "*.nii", t, _nth(t)) for t in (0, 4, 9)],
]


def _corners(shape_xyz: tuple[int, ...]) -> np.ndarray:
    return np.array(list(itertools.product(*[(0, n - 1) for n in shape_xyz])), dtype=np.float64)


def _reference(case_dir: Path, pattern: str, t: int | None) -> tuple[sitk.Image, dict]:
    [nii] = [p for p in case_dir.glob(f"ref/{pattern}") if ".nii" in p.name]
    image = sitk.ReadImage(str(nii))
    if image.GetDimension() == 4:
        size = list(image.GetSize())
        assert t is not None and t < size[3]
        image = sitk.Extract(image, size[:3] + [0], [0, 0, 0, t])
    sidecar = json.loads(nii.with_name(nii.name.split(".nii")[0] + ".json").read_text())
    return image, sidecar


@pytest.mark.parametrize("case, pattern, t, pick", CASES,
                         ids=[f"{c[0]}-{c[1].strip('*.').replace('.nii', '').replace('.gz', '')}-{c[2]}" for c in CASES])
def test_matches_dcm2niix(dicom_qa: Path, case: str, pattern: str, t: int | None, pick: Pick) -> None:
    info = pick(_scan(dicom_qa / case / "dicom"))
    assert info.problems == ()
    volume = load_series(info)
    ref, sidecar = _reference(dicom_qa / case, pattern, t)
    # shape (as a set of axis lengths: dcm2niix may permute nothing here, but may flip rows)
    assert volume.shape[::-1] == ref.GetSize()
    np.testing.assert_allclose(volume.spacing, ref.GetSpacing(), atol=1e-3)
    ours = volume.index_to_lps(_corners(volume.shape[::-1]))
    theirs = np.array([ref.TransformContinuousIndexToPhysicalPoint(tuple(c)) for c in _corners(ref.GetSize())])
    distance = np.linalg.norm(ours[:, None, :] - theirs[None, :, :], axis=2).min(axis=1)
    assert distance.max() < 1e-2, distance  # every corner of ours is a corner of theirs (mm)
    # the same directions up to the sign of each axis (a flip moves the origin to another corner)
    ref_dir = np.asarray(ref.GetDirection()).reshape(3, 3)
    np.testing.assert_allclose(np.abs(np.sum(volume.direction * ref_dir, axis=0)), 1.0, atol=1e-4)
    _assert_same_values(volume, ref, sidecar)


def _assert_same_values(volume: Volume, ref: sitk.Image, sidecar: dict) -> None:
    grid = volume_to_sitk(np.zeros(volume.shape, np.float32), volume)
    resampled = sitk.Resample(sitk.Cast(ref, sitk.sitkFloat64), grid, sitk.Transform(), sitk.sitkNearestNeighbor,
                              float("nan"))
    theirs = sitk.GetArrayFromImage(resampled)
    assert not np.isnan(theirs).any()  # the two grids cover each other
    if sidecar.get("UsePhilipsFloatNotDisplayScaling"):
        theirs = theirs * sidecar.get("PhilipsRescaleSlope", 1.0) * sidecar.get("PhilipsScaleSlope", 1.0)
    scale = max(float(np.abs(volume.array).max()), 1.0)
    assert float(np.abs(theirs - volume.array).max()) <= 5e-4 * scale


def test_mixed_folder_lists_its_series(dicom_qa: Path) -> None:
    folder = dicom_qa / "mixed_philips_classic" / "dicom"
    with pytest.raises(AmbiguousSeriesError) as err:
        read_dicom_folder(folder)
    message = str(err.value)
    assert "5 series" in message and "3DpCASL" in message and message.count("fcMRI Field Mapping") == 4


def test_ge_stray_file_is_skipped_and_4d_split(dicom_qa: Path) -> None:
    scan = scan_folder(dicom_qa / "mr_4d_ge_epi" / "dicom")
    assert [p.name for p, _ in scan.skipped] == ["README-Series.txt"]
    assert len(scan.series) == 10
    assert all(s.num_slices == 15 and s.problems == () for s in scan.series)
    assert scan.series[0].stack == "time point 1/10"


def test_ct_values_in_hounsfield(dicom_qa: Path) -> None:
    volume = read_dicom_folder(dicom_qa / "ct_axial_philips" / "dicom")
    assert volume.array.dtype == np.int16 and volume.modality == "CT"
    assert volume.array.min() == -1024  # air outside the field of view after intercept -1024
    assert volume.spacing[2] == pytest.approx(5.0)
