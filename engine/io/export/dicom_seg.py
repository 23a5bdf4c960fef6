"""DICOM Segmentation (SEG) export with highdicom, referencing the volume's source series.

One segment per class that has pixels (segment numbers 1, 2, ... in class-id order), labelled
with the class name and coloured with the class colour (as CIELab, as DICOM asks). The
segmentation type is BINARY; empty frames are omitted. The source images are the original DICOM
files listed in :attr:`engine.items.Volume.source_instances`, read again with pydicom, so the SEG
shares their study, frame of reference and patient, and references every source instance.

Single-frame series give one SEG frame per source slice; a volume read from one multi-frame
(enhanced) file maps its slices back to that file's frames. A volume whose slices come from
several multi-frame files, or no DICOM source at all, raises :class:`ExportError` (export NIfTI
instead).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from engine.errors import ExportError
from engine.io.export._common import ExportResult, check_ids
from engine.fsutil import atomic_path
from engine.items import LabelSet, Volume
from engine.jobs import CancelToken, Progress, check_cancelled, report

__all__ = ["write_dicom_seg"]

_logger = logging.getLogger(__name__)

# Type 2 patient and study attributes highdicom copies from the sources: they must exist but may
# be empty. Files that omit them (some anonymisers and converters do) get empty values in memory.
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyID", "StudyDate",
          "StudyTime", "ReferringPhysicianName", "AccessionNumber")


def _read_sources(volume: Volume, out_path: Path) -> list:  # noqa: ANN401 - list of pydicom Datasets
    """The source datasets (headers only) in the order highdicom needs them."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    paths: list[Path] = []
    for inst in volume.source_instances:
        if not paths or paths[-1] != inst.path:
            paths.append(inst.path)
    if len(set(paths)) != len(paths):
        raise ExportError("the volume's slices interleave several DICOM files; cannot map them to SEG frames",
                          out_path)
    datasets = []
    for path in paths:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (OSError, InvalidDicomError, ValueError) as err:
            raise ExportError(f"cannot read the source DICOM file ({err})", path) from err
        missing = [k for k in _TYPE2 if k not in ds]
        for keyword in missing:
            setattr(ds, keyword, "")
        if missing:
            _logger.debug("%s lacks %s; treated as empty", path, ", ".join(missing))
        _share_per_frame_geometry(ds, path)
        datasets.append(ds)
    return datasets


def _share_per_frame_geometry(ds, path: Path) -> None:  # noqa: ANN001 - pydicom Dataset
    """Copy per-frame pixel measures / orientation into the shared group when all frames agree.

    highdicom reads them from the shared functional group only, while some scanners (Philips)
    write them in every per-frame item. Only the in-memory copy is changed.
    """
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if not per_frame:
        return
    if "SharedFunctionalGroupsSequence" not in ds or not ds.SharedFunctionalGroupsSequence:
        from pydicom.dataset import Dataset

        ds.SharedFunctionalGroupsSequence = [Dataset()]
    shared = ds.SharedFunctionalGroupsSequence[0]
    checks = {"PixelMeasuresSequence": ("PixelSpacing",), "PlaneOrientationSequence": ("ImageOrientationPatient",)}
    for keyword, fields in checks.items():
        if keyword in shared:
            continue
        items = [item.get(keyword) for item in per_frame]
        if any(not seq for seq in items):
            raise ExportError(f"the multi-frame source has no {keyword} for some frames", path)
        first = [np.asarray(items[0][0].get(f), dtype=np.float64) for f in fields]
        for seq in items[1:]:
            values = [np.asarray(seq[0].get(f), dtype=np.float64) for f in fields]
            if any(a.shape != b.shape or not np.allclose(a, b, atol=1e-4) for a, b in zip(first, values)):
                raise ExportError(f"the frames of the multi-frame source differ in {fields[0]}; a DICOM SEG "
                                  "needs one shared value (export NIfTI instead)", path)
        setattr(shared, keyword, items[0])


def _frames(volume: Volume, data: np.ndarray, datasets: list, out_path: Path) -> np.ndarray:  # noqa: ANN001
    """``(frames, rows, columns)`` segment numbers laid out as the source frames."""
    multi = [inst.frame is not None for inst in volume.source_instances]
    if not any(multi):
        if len(datasets) != data.shape[0]:
            raise ExportError("every slice of the volume must come from its own DICOM file", out_path)
        return data
    if not all(multi) or len(datasets) != 1:
        raise ExportError("DICOM SEG export supports a single-frame series or one multi-frame file, "
                          "not slices from several multi-frame files", out_path)
    n_frames = int(getattr(datasets[0], "NumberOfFrames", 1))
    out = np.zeros((n_frames,) + data.shape[1:], dtype=data.dtype)
    for z, inst in enumerate(volume.source_instances):
        if not 1 <= int(inst.frame) <= n_frames:
            raise ExportError(f"slice {z} refers to frame {inst.frame} of a {n_frames}-frame file", inst.path)
        out[int(inst.frame) - 1] = data[z]
    return out


def _descriptions(labels: LabelSet, present: list[int], *, manual: bool, algorithm: str) -> list:  # noqa: ANN401
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from engine import __version__ as version

    out = []
    for number, class_id in enumerate(present, start=1):
        c = labels[class_id]
        kwargs: dict[str, object] = {}
        if not manual:
            kwargs["algorithm_identification"] = hd.AlgorithmIdentificationSequence(
                name=algorithm, version=str(version), family=codes.cid7162.ArtificialIntelligence)
        out.append(hd.seg.SegmentDescription(
            segment_number=number, segment_label=c.name[:64],
            segmented_property_category=codes.SCT.Tissue, segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL if manual
            else hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
            display_color=hd.color.CIELabColor.from_rgb(*c.color), **kwargs))
    return out


def _build(datasets: list, pixels: np.ndarray, labels: LabelSet, present: list[int], *, manual: bool,
           algorithm: str, series_number: int, series_description: str, out_path: Path):  # noqa: ANN202
    """The highdicom Segmentation; its refusals become :class:`ExportError`."""
    import highdicom as hd
    from pydicom.uid import generate_uid

    try:
        return hd.seg.Segmentation(
            source_images=datasets, pixel_array=pixels,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=_descriptions(labels, present, manual=manual, algorithm=algorithm),
            series_instance_uid=generate_uid(), series_number=series_number,
            sop_instance_uid=generate_uid(), instance_number=1,
            manufacturer="Maskwright", manufacturer_model_name="Maskwright",
            software_versions=algorithm, device_serial_number="0",
            series_description=series_description[:64], omit_empty_frames=True,
        )
    except (ValueError, TypeError, AttributeError, KeyError) as err:
        raise ExportError(f"highdicom cannot build a segmentation from these sources ({err})", out_path) from err


def write_dicom_seg(out_path: str | Path, volume: Volume, labelmap: np.ndarray, labels: LabelSet, *,
                    series_description: str = "Maskwright segmentation", series_number: int = 300,
                    manual: bool = False, algorithm: str = "Maskwright",
                    progress: Progress | None = None, cancel: CancelToken | None = None) -> ExportResult:
    """Write a binary DICOM SEG of ``labelmap`` referencing ``volume``'s source DICOM files.

    Parameters
    ----------
    out_path
        The SEG file to write (``.dcm``).
    volume
        A volume loaded from DICOM: ``source_instances`` lists the original files (z order).
    labelmap
        ``(z, y, x)`` uint8/uint16 class ids on ``volume``'s grid.
    labels
        The classes; each present class becomes a segment labelled with its name.
    series_description, series_number
        Of the new SEG series.
    manual
        Segment algorithm type MANUAL (drawn by a person) instead of SEMIAUTOMATIC (a model's
        prediction corrected by a person, identified as ``algorithm``).

    Returns
    -------
    ExportResult
        The SEG file written.
    """
    out_path = Path(out_path)
    if labelmap.shape != volume.shape:
        raise ExportError(f"the mask grid {labelmap.shape} differs from the volume's {volume.shape}", out_path)
    if not volume.source_instances:
        raise ExportError("the volume was not read from DICOM files, so a DICOM SEG cannot reference it "
                          "(export NIfTI instead)", out_path)
    present = check_ids(labelmap, labels, out_path)
    if not present:
        raise ExportError("the mask is empty: a DICOM SEG needs at least one segment", out_path)
    report(progress, 0, 3, "reading the source DICOM headers")
    datasets = _read_sources(volume, out_path)
    rows, cols = int(datasets[0].Rows), int(datasets[0].Columns)
    if (rows, cols) != labelmap.shape[1:]:
        raise ExportError(f"the source images are {rows} x {cols} but the mask slices are "
                          f"{labelmap.shape[1]} x {labelmap.shape[2]}", datasets[0].filename)
    lut = np.zeros(labels.max_id + 1, dtype=np.uint8 if len(present) <= 255 else np.uint16)
    lut[present] = np.arange(1, len(present) + 1)
    pixels = _frames(volume, lut[labelmap], datasets, out_path)
    check_cancelled(cancel)
    report(progress, 1, 3, "encoding the segmentation")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seg = _build(datasets, pixels, labels, present, manual=manual, algorithm=algorithm,
                     series_number=series_number, series_description=series_description, out_path=out_path)
    for w in caught:  # highdicom's remarks on the source headers (odd person names...): log, don't print
        _logger.debug("highdicom: %s", w.message)
    check_cancelled(cancel)
    report(progress, 2, 3, out_path.name)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExportError(f"cannot create the folder ({err.strerror or err})", out_path.parent) from err
    with atomic_path(out_path, error=ExportError) as tmp:
        seg.save_as(tmp)
    report(progress, 3, 3, "done")
    _logger.info("DICOM SEG: %d segments over %d frames -> %s", len(present), pixels.shape[0], out_path)
    return ExportResult("dicom-seg", (out_path,), 1)
