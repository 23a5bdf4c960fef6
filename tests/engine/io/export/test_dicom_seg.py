"""DICOM SEG export: read back with highdicom, per segment = per class, referencing the sources."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from engine.errors import ExportError
from engine.io.export import export_volume
from engine.items import LabelSet, SourceInstance, Volume
from tests.engine.io.dicom_synth import SynthSeries, oblique_direction, write_multiframe, write_series


def _volume(series: SynthSeries, instances: list[SourceInstance]) -> Volume:
    """The Volume a loader would give for ``series`` (built by hand from what was written)."""
    return Volume(series.stored.astype(np.float32), spacing=series.spacing, origin=series.origin,
                  direction=series.direction, modality="CT", source=series.folder,
                  source_instances=tuple(instances), series_uid=series.series_uid, study_uid=series.study_uid,
                  frame_of_reference_uid=series.frame_of_reference_uid)


def _labelmap(shape: tuple[int, int, int]) -> np.ndarray:
    z, y, x = shape
    data = np.zeros(shape, dtype=np.uint8)
    data[1:4, 4:14, 5:20] = 1
    data[2:5, 20:28, 10:18] = 7
    data[3, 2, 2] = 3  # a class on one voxel of one slice
    return data


def _class_map(seg: hd.seg.Segmentation, labels: LabelSet) -> dict[int, int]:
    """Segment number -> class id, by segment label (the class name)."""
    out = {}
    for number in seg.get_segment_numbers():
        found = labels.find(seg.get_segment_description(number).segment_label)
        assert found is not None
        out[number] = found.id
    return out


def _to_class_ids(segments: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    out = np.zeros(segments.shape, dtype=np.uint8)
    for number, class_id in mapping.items():
        out[segments == number] = class_id
    return out


def test_dicom_seg_round_trip_single_frame_series(tmp_path: Path, labels: LabelSet) -> None:
    series = write_series(tmp_path / "ct", shape=(6, 32, 30), direction=oblique_direction())
    sop_uids = [pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in series.paths]
    volume = _volume(series, [SourceInstance(p, u) for p, u in zip(series.paths, sop_uids)])
    data = _labelmap(volume.shape)
    out = tmp_path / "seg" / "case.dcm"
    result = export_volume("dicom-seg", out, volume, data, labels)
    assert result.files == (out,)

    seg = hd.seg.segread(out)
    assert seg.SegmentationType == "BINARY"
    assert seg.StudyInstanceUID == series.study_uid
    assert seg.FrameOfReferenceUID == series.frame_of_reference_uid
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == series.series_uid
    referenced = {item.ReferencedSOPInstanceUID for item in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == set(sop_uids)
    mapping = _class_map(seg, labels)
    assert sorted(mapping.values()) == [1, 3, 7]  # only the classes present ("bird" has no pixels)
    for number, class_id in mapping.items():
        desc = seg.get_segment_description(number)
        rgb = hd.color.CIELabColor.from_dicom_value(tuple(desc.RecommendedDisplayCIELabValue)).to_rgb()
        assert np.abs(np.subtract(rgb, labels[class_id].color)).max() <= 2
    segments = seg.get_pixels_by_source_instance(source_sop_instance_uids=sop_uids, combine_segments=True)
    np.testing.assert_array_equal(_to_class_ids(segments, mapping), data)


def test_dicom_seg_round_trip_multiframe_source(tmp_path: Path, labels: LabelSet) -> None:
    frame_order = [3, 0, 5, 1, 4, 2]  # frames not in spatial order
    series = write_multiframe(tmp_path / "mf.dcm", shape=(6, 32, 30), frame_order=frame_order, modality="CT")
    (path,) = series.paths
    sop_uid = pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
    instances = [SourceInstance(path, sop_uid, frame=frame_order.index(k) + 1) for k in range(6)]
    stored = np.empty_like(series.stored)
    stored[frame_order] = series.stored
    volume = _volume(SynthSeries(series.folder, series.paths, stored, series.positions, series.series_uid,
                                 series.study_uid, series.frame_of_reference_uid, series.spacing, series.origin,
                                 series.direction), instances)
    data = _labelmap(volume.shape)
    out = tmp_path / "seg.dcm"
    export_volume("dicom-seg", out, volume, data, labels, manual=True, series_description="corrected")
    seg = hd.seg.segread(out)
    assert seg.SeriesDescription == "corrected"
    mapping = _class_map(seg, labels)
    frames = seg.get_pixels_by_source_frame(source_sop_instance_uid=sop_uid,
                                            source_frame_numbers=list(range(1, 7)), combine_segments=True)
    # frame f of the source holds slice frame_order[f]
    np.testing.assert_array_equal(_to_class_ids(frames, mapping), data[frame_order])


def test_dicom_seg_errors(tmp_path: Path, labels: LabelSet) -> None:
    series = write_series(tmp_path / "ct", shape=(3, 16, 16))
    volume = _volume(series, [SourceInstance(p) for p in series.paths])
    data = np.zeros(volume.shape, dtype=np.uint8)
    with pytest.raises(ExportError, match="at least one segment"):
        export_volume("dicom-seg", tmp_path / "a.dcm", volume, data, labels)
    data[1, 2:5, 2:5] = 1
    plain = Volume(np.zeros(volume.shape, np.float32))
    with pytest.raises(ExportError, match="not read from DICOM"):
        export_volume("dicom-seg", tmp_path / "a.dcm", plain, data, labels)
    series.paths[1].unlink()
    with pytest.raises(ExportError, match=f"{series.paths[1].name}: cannot read the source DICOM"):
        export_volume("dicom-seg", tmp_path / "a.dcm", volume, data, labels)
    assert not (tmp_path / "a.dcm").exists()


def _round_trip_loaded(volume: Volume, labels: LabelSet, out: Path) -> None:
    """Export a SEG of a blocky label map on ``volume`` and read it back slice by slice."""
    z, y, x = volume.shape
    data = np.zeros(volume.shape, dtype=np.uint8)
    data[: max(1, z // 2), y // 4: y // 2, x // 4: x // 2] = 1
    data[z // 2:, y // 2: 3 * y // 4, x // 3: 2 * x // 3] = 7
    export_volume("dicom-seg", out, volume, data, labels)
    seg = hd.seg.segread(out)
    mapping = _class_map(seg, labels)
    back = np.zeros_like(data)
    for k, inst in enumerate(volume.source_instances):
        if inst.frame is None:
            plane = seg.get_pixels_by_source_instance([inst.sop_instance_uid], combine_segments=True)[0]
        else:
            plane = seg.get_pixels_by_source_frame(inst.sop_instance_uid, [inst.frame], combine_segments=True)[0]
        back[k] = _to_class_ids(plane, mapping)
    np.testing.assert_array_equal(back, data)


def test_dicom_seg_of_a_series_from_the_loader(tmp_path: Path, labels: LabelSet) -> None:
    from engine.io.dicom import read_dicom_folder

    write_series(tmp_path / "ct", shape=(7, 24, 20), shuffle=True)
    _round_trip_loaded(read_dicom_folder(tmp_path / "ct"), labels, tmp_path / "seg.dcm")


@pytest.mark.parametrize("case", ["ct_axial_philips", "enh_philips_pcasl"])
def test_dicom_seg_of_real_scanner_series(tmp_path: Path, labels: LabelSet, dicom_qa: Path, case: str) -> None:
    from engine.io.dicom import read_dicom_folder

    volume = read_dicom_folder(dicom_qa / case / "dicom")
    _round_trip_loaded(volume, labels, tmp_path / "seg.dcm")
