"""Header scan: grouping into series, geometry and stack splits, problems, stray and broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from engine.errors import AmbiguousSeriesError, Cancelled, DicomError, SeriesGeometryError
from engine.io.dicom import load_series, read_dicom_folder, scan_dicom, scan_folder
from engine.jobs import CancelToken
from tests.engine.io.dicom_synth import oblique_direction, write_series


def test_shuffled_names_are_sorted_by_position(tmp_path: Path) -> None:
    s = write_series(tmp_path, shape=(9, 16, 20), shuffle=True)
    [info] = scan_dicom(tmp_path)
    assert (info.num_slices, info.rows, info.cols) == (9, 16, 20)
    assert info.key == info.series_uid == s.series_uid
    assert info.problems == ()
    # z order is the spatial order, not the (shuffled) file-name or InstanceNumber order
    assert info.files == s.paths
    assert sorted(info.files) != list(info.files)
    np.testing.assert_allclose([sl.position for sl in info.slices], s.positions)


def test_two_series_in_one_folder_are_never_silently_picked(tmp_path: Path) -> None:
    a = write_series(tmp_path, prefix="A", shape=(4, 8, 8), description="first", series_number=1)
    b = write_series(tmp_path, prefix="B", shape=(5, 8, 8), description="second", series_number=2)
    series = scan_dicom(tmp_path)
    assert [s.series_uid for s in series] == [a.series_uid, b.series_uid]
    with pytest.raises(AmbiguousSeriesError) as err:
        read_dicom_folder(tmp_path)
    message = str(err.value)
    assert a.series_uid in message and b.series_uid in message and str(tmp_path) in message
    volume = read_dicom_folder(tmp_path, b.series_uid)
    assert volume.shape == (5, 8, 8) and volume.series_uid == b.series_uid
    with pytest.raises(DicomError, match="no series"):
        read_dicom_folder(tmp_path, "1.2.3.4")


def test_missing_slice_is_reported_and_refused(tmp_path: Path) -> None:
    write_series(tmp_path, shape=(8, 8, 8), spacing=(1.0, 1.0, 2.5), drop=[4])
    [info] = scan_dicom(tmp_path)
    assert info.num_slices == 7
    assert any(p.startswith("missing slice") for p in info.problems), info.problems
    with pytest.raises(SeriesGeometryError) as err:
        load_series(info)
    assert str(tmp_path) in str(err.value) and "missing" in str(err.value)
    volume = load_series(info, allow_irregular=True)
    assert volume.shape == (7, 8, 8)
    assert volume.spacing[2] == pytest.approx(2.5)  # the true step, not 17.5 / 6 averaged
    np.testing.assert_allclose(info.geometry.offsets, [0, 2.5, 5, 7.5, 12.5, 15, 17.5])


def test_uneven_spacing_is_reported(tmp_path: Path) -> None:
    s = write_series(tmp_path, shape=(6, 8, 8), spacing=(1.0, 1.0, 2.0))
    ds = pydicom.dcmread(s.paths[3])
    ds.ImagePositionPatient = [s.positions[3][0], s.positions[3][1], s.positions[3][2] + 0.7]
    ds.save_as(s.paths[3])
    [info] = scan_dicom(tmp_path)
    assert any(p.startswith("uneven spacing") for p in info.problems), info.problems
    with pytest.raises(SeriesGeometryError, match="uneven"):
        read_dicom_folder(tmp_path)


def test_mixed_orientations_and_sizes_split_one_series(tmp_path: Path) -> None:
    uid = pydicom.uid.generate_uid()
    write_series(tmp_path, prefix="AX", shape=(5, 8, 8), series_uid=uid)
    write_series(tmp_path, prefix="OB", shape=(4, 8, 8), series_uid=uid, direction=oblique_direction())
    write_series(tmp_path, prefix="SM", shape=(3, 6, 10), series_uid=uid, origin=(0.0, 0.0, 200.0))
    series = scan_dicom(tmp_path)
    assert sorted(s.num_slices for s in series) == [3, 4, 5]
    assert {s.key for s in series} == {f"{uid}#1", f"{uid}#2", f"{uid}#3"}
    assert all(s.series_uid == uid and s.problems == () for s in series)
    with pytest.raises(AmbiguousSeriesError):
        read_dicom_folder(tmp_path, uid)
    key = next(s.key for s in series if s.num_slices == 3)
    assert read_dicom_folder(tmp_path, key).shape == (3, 6, 10)


def test_echoes_and_time_points_become_separate_stacks(tmp_path: Path) -> None:
    uid = pydicom.uid.generate_uid()
    write_series(tmp_path / "e", prefix="E1", shape=(4, 8, 8), series_uid=uid, modality="MR", extra={"EchoNumbers": 1})
    write_series(tmp_path / "e", prefix="E2", shape=(4, 8, 8), series_uid=uid, modality="MR", extra={"EchoNumbers": 2})
    series = scan_dicom(tmp_path / "e")
    assert [s.num_slices for s in series] == [4, 4]
    assert [s.stack for s in series] == ["echo 1", "echo 2"]
    # a 4D series with no tag telling time points apart: split by acquisition order
    uid2 = pydicom.uid.generate_uid()
    for t in range(3):
        write_series(tmp_path / "t", prefix=f"T{t}", shape=(5, 8, 8), series_uid=uid2, seed=t,
                     extra={"AcquisitionNumber": t + 1})
    series = scan_dicom(tmp_path / "t")
    assert [s.stack for s in series] == ["time point 1/3", "time point 2/3", "time point 3/3"]
    assert all(s.num_slices == 5 and s.problems == () for s in series)
    assert all(f.name.startswith("T1") for f in series[1].files)


def test_uneven_repeats_are_a_problem(tmp_path: Path) -> None:
    uid = pydicom.uid.generate_uid()
    write_series(tmp_path, prefix="A", shape=(5, 8, 8), series_uid=uid)
    write_series(tmp_path, prefix="B", shape=(2, 8, 8), series_uid=uid)
    [info] = scan_dicom(tmp_path)
    assert any(p.startswith("repeated slice positions") for p in info.problems)


@pytest.mark.filterwarnings("ignore:End of file reached:UserWarning")  # pydicom on the broken file
def test_stray_broken_and_empty_files_are_skipped_with_a_reason(tmp_path: Path) -> None:
    s = write_series(tmp_path, shape=(4, 8, 8))
    (tmp_path / "README.txt").write_text("not an image")
    (tmp_path / "empty.dcm").write_bytes(b"")
    data = s.paths[0].read_bytes()
    (tmp_path / "cut_header.dcm").write_bytes(data[:200])
    (tmp_path / "wrong_header.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 64)
    scan = scan_folder(tmp_path)
    assert len(scan.series) == 1 and scan.series[0].num_slices == 4
    reasons = {p.name: r for p, r in scan.skipped}
    assert set(reasons) == {"README.txt", "empty.dcm", "cut_header.dcm", "wrong_header.dcm"}
    assert "not a DICOM file" in reasons["README.txt"]
    assert "empty" in reasons["empty.dcm"]
    assert read_dicom_folder(tmp_path).shape == (4, 8, 8)


def test_scan_reports_progress_and_can_be_cancelled(tmp_path: Path) -> None:
    write_series(tmp_path, shape=(3, 8, 8))
    calls = []
    scan_dicom(tmp_path, progress=lambda d, t, m: calls.append((d, t)))
    assert calls[-1] == (3, 3)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        scan_dicom(tmp_path, cancel=token)


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DicomError, match="no such"):
        scan_dicom(tmp_path / "nope")
    with pytest.raises(DicomError, match="no DICOM image series"):
        read_dicom_folder(tmp_path)


def test_copies_of_an_instance_are_skipped(tmp_path: Path) -> None:
    s = write_series(tmp_path / "a", shape=(4, 8, 8))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "copy.dcm").write_bytes(s.paths[2].read_bytes())
    scan = scan_folder(tmp_path)
    assert len(scan.series) == 1 and scan.series[0].num_slices == 4 and scan.series[0].problems == ()
    assert [(p.name, "a copy of" in r) for p, r in scan.skipped] == [("copy.dcm", True)]


def test_gantry_tilt_is_a_problem(tmp_path: Path) -> None:
    s = write_series(tmp_path, shape=(5, 8, 8), spacing=(1.0, 1.0, 2.0))
    for k, p in enumerate(s.paths):  # each slice 0.5 mm further along y: a sheared stack
        ds = pydicom.dcmread(p)
        x, y, z = s.positions[k]
        ds.ImagePositionPatient = [x, y + 0.5 * k, z]
        ds.save_as(p)
    [info] = scan_dicom(tmp_path)
    assert any("shifted in-plane" in p for p in info.problems), info.problems
    with pytest.raises(SeriesGeometryError, match="gantry tilt"):
        load_series(info)


def test_key_from_a_folder_scan_finds_its_series_in_one_file(tmp_path: Path) -> None:
    from tests.engine.io.dicom_synth import write_multiframe

    uid = pydicom.uid.generate_uid()
    write_series(tmp_path, prefix="A", shape=(3, 8, 8), series_uid=uid, modality="MR", extra={"EchoNumbers": 1})
    m = write_multiframe(tmp_path / "mf.dcm", shape=(4, 8, 8), series_uid=uid)
    keys = {s.num_slices: s.key for s in scan_dicom(tmp_path)}
    assert keys[4].startswith(f"{uid}#")
    assert read_dicom_folder(m.paths[0], keys[4]).shape == (4, 8, 8)


def test_image_type_splits_phase_and_localizer_but_not_extra_flags(tmp_path: Path) -> None:
    uid = pydicom.uid.generate_uid()
    s = write_series(tmp_path / "ct", shape=(4, 8, 8), series_uid=uid, extra={"ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"]})
    ds = pydicom.dcmread(s.paths[1])
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "HELIX"]  # some scanners flag some slices
    ds.save_as(s.paths[1])
    write_series(tmp_path / "ct", prefix="LOC", shape=(1, 8, 8), series_uid=uid, origin=(0.0, 0.0, 500.0),
                 extra={"ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]})
    series = scan_dicom(tmp_path / "ct")
    assert sorted((s.num_slices, s.problems) for s in series) == [(1, ()), (4, ())]
    uid2 = pydicom.uid.generate_uid()
    write_series(tmp_path / "mr", prefix="M", shape=(3, 8, 8), series_uid=uid2, modality="MR",
                 extra={"ImageType": ["ORIGINAL", "PRIMARY", "M", "ND"]})
    write_series(tmp_path / "mr", prefix="P", shape=(3, 8, 8), series_uid=uid2, modality="MR",
                 extra={"ImageType": ["ORIGINAL", "PRIMARY", "P", "ND"]})
    assert [s.stack for s in scan_dicom(tmp_path / "mr")] == ["image type M", "image type P"]


def test_folder_of_non_dicom_files_says_why(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DicomError, match="notes.txt: not a DICOM file"):
        read_dicom_folder(tmp_path)


def test_stacks_are_in_natural_order(tmp_path: Path) -> None:
    uid = pydicom.uid.generate_uid()
    for echo in (10, 2, 1):
        write_series(tmp_path, prefix=f"E{echo}_", shape=(2, 8, 8), series_uid=uid, modality="MR",
                     extra={"EchoNumbers": echo})
    series = scan_dicom(tmp_path)
    assert [s.stack for s in series] == ["echo 1", "echo 2", "echo 10"]
    assert [s.key for s in series] == [f"{uid}#1", f"{uid}#2", f"{uid}#3"]


def test_orientation_noise_across_a_rounding_boundary_does_not_split(tmp_path: Path) -> None:
    s = write_series(tmp_path, shape=(4, 8, 8), direction=oblique_direction())
    for k, p in enumerate(s.paths):
        ds = pydicom.dcmread(p)
        iop = [float(v) for v in ds.ImageOrientationPatient]
        iop[0] = 0.97649 if k % 2 else 0.97651  # rounds to 0.976 / 0.977 at 3 decimals
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in iop]
        ds.save_as(p)
    [info] = scan_dicom(tmp_path)
    assert info.num_slices == 4
