"""``maskwright export``: every format from a real project, read back to the same masks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.io.masks import read_mask_nifti
from engine.items import LabelSet, Photo
from engine.store import Project, Provenance
from tests.engine.io.dicom_synth import write_series

PERSON = Provenance.from_person("ana")


def _blobs(shape: tuple[int, ...], ids: list[int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    out = np.zeros(shape, np.uint8)
    for class_id in ids:
        inside = sum(((g - rng.uniform(n / 4, 3 * n / 4)) / (n / 5)) ** 2 for g, n in zip(grids, shape)) <= 1
        out[inside] = class_id
    return out


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """Three photos (two corrected in sub-folders, one only predicted) and one DICOM volume."""
    folder = tmp_path / "p"
    masks: dict[str, np.ndarray] = {}
    series = write_series(tmp_path / "ct", shape=(6, 24, 28), spacing=(0.8, 0.8, 2.5), seed=3)
    with Project.create(folder, labels=LabelSet.from_text("cat, dog, car")) as p:
        for k, name in enumerate(["site_a/one.png", "site_b/two.png", "three.png"]):
            path = tmp_path / "photos" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.zeros((36, 48, 3), np.uint8)).save(path)
            item = p.add_photo(path)
            masks[name] = _blobs(item.shape, [1, 2], seed=k)
            p.save_annotation(item.id, masks[name], provenance=Provenance.from_model("naclip"))
            if name != "three.png":
                masks[name] = np.where(masks[name] == 2, 3, masks[name]).astype(np.uint8)
                p.save_annotation(item.id, masks[name], provenance=PERSON)
        vol = p.add_volume(series.folder, series_key="")
        masks["volume"] = _blobs(vol.shape, [1, 3], seed=9)
        p.save_annotation(vol.id, masks["volume"], provenance=PERSON, status="approved")
    return folder, masks


def test_png_export_round_trips_the_corrected_photos(project: tuple[Path, dict[str, np.ndarray]], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    folder, masks = project
    assert main(["export", str(folder), "--format", "png", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "Exported 2 item(s) as png" in out and "1 volume(s) left out" in out
    for name in ("site_a/one.png", "site_b/two.png"):
        back = np.asarray(Image.open(tmp_path / "out" / name))
        np.testing.assert_array_equal(back, masks[name])
    assert not (tmp_path / "out" / "three.png").exists()  # only predicted: not exported by default
    assert main(["export", str(folder), "--format", "png", "--out", str(tmp_path / "all"), "--status", "all"]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "all" / "three.png")), masks["three.png"])


def test_coco_export_decodes_to_the_same_masks(project: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    from pycocotools import mask as mask_utils

    folder, masks = project
    assert main(["export", str(folder), "--format", "coco", "--out", str(tmp_path / "coco"),
                 "--status", "corrected,predicted", "--encoding", "rle"]) == 0
    data = json.loads((tmp_path / "coco" / "annotations.json").read_text())
    images = {img["id"]: img["file_name"] for img in data["images"]}
    assert sorted(images.values()) == ["site_a/one.png", "site_b/two.png", "three.png"]
    rebuilt = {name: np.zeros((36, 48), np.uint8) for name in images.values()}
    for ann in data["annotations"]:
        rle = ann["segmentation"]
        if isinstance(rle["counts"], str):
            rle = {"size": rle["size"], "counts": rle["counts"].encode()}
        rebuilt[images[ann["image_id"]]][mask_utils.decode(rle).astype(bool)] = ann["category_id"]
    for name, arr in rebuilt.items():
        np.testing.assert_array_equal(arr, masks[name])


@pytest.mark.parametrize("fmt", ["voc", "yolo"])
def test_voc_and_yolo_exports_write_one_file_per_photo(project: tuple[Path, dict[str, np.ndarray]], tmp_path: Path,
                                                       fmt: str) -> None:
    folder, _ = project
    assert main(["export", str(folder), "--format", fmt, "--out", str(tmp_path / fmt)]) == 0
    written = sorted(p.relative_to(tmp_path / fmt).as_posix() for p in (tmp_path / fmt).rglob("*") if p.is_file())
    stems = [w for w in written if w.endswith(("one.png", "two.png", "one.txt", "two.txt"))]
    assert len(stems) == 2, written


def test_nifti_export_is_on_the_source_geometry(project: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    import SimpleITK as sitk

    folder, masks = project
    assert main(["export", str(folder), "--format", "nifti", "--out", str(tmp_path / "nii")]) == 0
    (path,) = (tmp_path / "nii").glob("*.nii.gz")
    np.testing.assert_array_equal(read_mask_nifti(path), masks["volume"])
    with Project.open(folder, readonly=True) as p:
        (vol,) = p.items(status="approved")
    np.testing.assert_allclose(sitk.ReadImage(str(path)).GetSpacing(), vol.geometry.spacing)


def test_dicom_seg_export_references_the_series(project: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    import pydicom

    folder, _ = project
    assert main(["export", str(folder), "--format", "dicom-seg", "--out", str(tmp_path / "seg")]) == 0
    (path,) = (tmp_path / "seg").glob("*.dcm")
    seg = pydicom.dcmread(path)
    assert seg.Modality == "SEG"
    assert sorted(s.SegmentLabel for s in seg.SegmentSequence) == ["car", "cat"]
    assert seg.SegmentSequence[0].SegmentAlgorithmType == "MANUAL"  # only a person drew it


def test_nothing_to_export_and_bad_statuses_are_clear_errors(project: tuple[Path, dict[str, np.ndarray]],
                                                             tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = project
    assert main(["export", str(folder), "--format", "nifti", "--out", str(tmp_path / "x"), "--status", "new"]) == 2
    assert "no volumes with status new to export as nifti" in capsys.readouterr().err
    assert main(["export", str(folder), "--format", "png", "--out", str(tmp_path / "x"), "--status", "done"]) == 2
    assert "unknown status done" in capsys.readouterr().err


def test_photo_names_are_relative_to_their_common_folder(tmp_path: Path) -> None:
    from engine.store.exporting import export_project

    with Project.create(tmp_path / "p", labels=LabelSet.from_text("a")) as p:
        item = p.add_photo(Photo(np.zeros((8, 8, 3), np.uint8), source=tmp_path / "deep" / "x" / "img.png"))
        p.save_annotation(item.id, np.ones((8, 8), np.uint8), provenance=PERSON)
        result = export_project(p, "png", tmp_path / "out")
    assert result.item_ids == (item.id,) and (tmp_path / "out" / "img.png") in result.files
