"""COCO export: read back with pycocotools' own COCO loader and annToMask."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from scipy import ndimage

from engine.errors import ExportError
from engine.io.export import PhotoExportEntry, export_photos
from engine.io.export.coco import COCO_FILE_NAME
from engine.items import LabelSet

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")


def _load(path: Path) -> COCO:
    coco = COCO()
    coco.dataset = json.loads(path.read_text())
    coco.createIndex()
    return coco


def _rebuild(coco: COCO, image_id: int) -> np.ndarray:
    info = coco.imgs[image_id]
    out = np.zeros((info["height"], info["width"]), dtype=np.uint16)
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image_id])):
        mask = coco.annToMask(ann).astype(bool)
        assert not (out[mask] != 0).any(), "annotations of one image overlap"
        out[mask] = ann["category_id"]
    return out


@pytest.mark.parametrize("encoding", ["rle", "polygon"])
def test_one_annotation_per_image_and_class(tmp_path: Path, entries: list[PhotoExportEntry], labels: LabelSet,
                                            encoding: str) -> None:
    result = export_photos("coco", tmp_path, entries, labels, encoding=encoding)
    path = tmp_path / COCO_FILE_NAME
    assert result.files == (path,)
    coco = COCO(str(path))  # pycocotools' own loader accepts the file
    assert sorted(coco.cats) == [1, 3, 7, 9]
    assert coco.cats[3]["name"] == "dog: big"
    assert [coco.imgs[i]["file_name"] for i in (1, 2, 3)] == ["img1.jpg", "site b/img10.png", "img2.jpeg"]
    for image_id, entry in enumerate(entries, start=1):
        data = entry.label_data()
        rebuilt = _rebuild(coco, image_id)
        # polygons traced along pixel edges come back exactly too (holes through zero-width cuts)
        np.testing.assert_array_equal(rebuilt, data)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        present = sorted(int(i) for i in np.unique(data) if i)
        assert sorted(a["category_id"] for a in anns) == present  # exactly one per class: no split objects
        for ann in anns:
            mask = data == ann["category_id"]
            rle = coco.annToRLE(ann)
            assert ann["area"] == int(mask.sum()) == int(mask_utils.area(rle))
            np.testing.assert_allclose(ann["bbox"], mask_utils.toBbox(rle))
            assert ann["iscrowd"] == 0
    assert any("bird" in note for note in result.notes)


def test_polygon_with_hole_is_one_polygon_list(tmp_path: Path, labels: LabelSet) -> None:
    data = np.zeros((10, 10), dtype=np.uint8)
    data[1:9, 1:9] = 1
    data[4:6, 4:6] = 0  # a hole
    export_photos("coco", tmp_path, [PhotoExportEntry("a.png", (10, 10), data)], labels, encoding="polygon")
    coco = _load(tmp_path / COCO_FILE_NAME)
    (ann,) = coco.dataset["annotations"]
    assert len(ann["segmentation"]) == 1 and ann["area"] == 60
    np.testing.assert_array_equal(coco.annToMask(ann), data == 1)


@pytest.mark.parametrize("encoding", ["rle", "polygon"])
def test_connected_instances(tmp_path: Path, entries: list[PhotoExportEntry], labels: LabelSet,
                             encoding: str) -> None:
    export_photos("coco", tmp_path, entries, labels, encoding=encoding, instances="connected")
    coco = _load(tmp_path / COCO_FILE_NAME)
    for image_id, entry in enumerate(entries, start=1):
        data = entry.label_data()
        np.testing.assert_array_equal(_rebuild(coco, image_id), data)
        for class_id in (1, 3, 7):
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=[class_id]))
            components, count = ndimage.label(data == class_id, structure=np.ones((3, 3)))
            assert len(anns) == count
            for ann in anns:  # each instance is exactly one whole component
                mask = coco.annToMask(ann).astype(bool)
                ids = np.unique(components[mask])
                assert len(ids) == 1 and ids[0] > 0 and (components == ids[0]).sum() == mask.sum()
                np.testing.assert_allclose(ann["bbox"], mask_utils.toBbox(coco.annToRLE(ann)))


def test_bad_input_is_refused_before_writing(tmp_path: Path, labels: LabelSet) -> None:
    data = np.zeros((4, 4), dtype=np.uint8)
    data[0, 0] = 5  # not in the label set
    with pytest.raises(ExportError, match=r"bad\.png: .*class id\(s\) \[5\]"):
        export_photos("coco", tmp_path, [PhotoExportEntry("bad.png", (4, 4), data)], labels)
    with pytest.raises(ExportError, match=r"small\.png: the mask is \(4, 4\) but the image is \(5, 4\)"):
        export_photos("coco", tmp_path, [PhotoExportEntry("small.png", (5, 4), np.zeros((4, 4), np.uint8))], labels)
    with pytest.raises(ExportError, match="unknown COCO encoding"):
        export_photos("coco", tmp_path, [], labels, encoding="mesh")
    assert not (tmp_path / COCO_FILE_NAME).exists()
