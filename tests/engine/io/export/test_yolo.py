"""YOLO segmentation export: rasterise the polygons back and compare; no class is dropped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from pycocotools import mask as mask_utils
from scipy import ndimage

from engine.io.export import PhotoExportEntry, export_photos
from engine.io.export.yolo import yolo_class_index
from engine.items import LabelSet

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")


def _read_yolo(path: Path, size: tuple[int, int]) -> list[tuple[int, np.ndarray]]:
    """(class index, mask) per line, rasterised with even-odd filling (pycocotools)."""
    h, w = size
    out = []
    for line in path.read_text().splitlines():
        values = line.split()
        coords = np.array(values[1:], dtype=np.float64).reshape(-1, 2)
        assert len(coords) >= 3 and (coords >= 0).all() and (coords <= 1).all()
        poly = (coords * [w, h]).ravel().tolist()
        out.append((int(values[0]), mask_utils.decode(mask_utils.frPyObjects([poly], h, w))[:, :, 0].astype(bool)))
    return out


def test_yolo_round_trip(tmp_path: Path, entries: list[PhotoExportEntry], labels: LabelSet) -> None:
    result = export_photos("yolo", tmp_path, entries, labels)
    names = (tmp_path / "classes.txt").read_text().splitlines()
    assert names == ["cat", "dog: big", "sky", "bird"]  # every class, even one without pixels
    data_yaml = yaml.safe_load((tmp_path / "data.yaml").read_text())
    assert data_yaml["nc"] == 4 and data_yaml["names"] == dict(enumerate(names))
    index = yolo_class_index(labels)
    assert index == {1: 0, 3: 1, 7: 2, 9: 3}
    for entry, rel in zip(entries, ["img1.txt", "site b/img10.txt", "img2.txt"]):
        path = tmp_path / "labels" / rel
        assert path in result.files
        data = entry.label_data()
        lines = _read_yolo(path, entry.size)
        for class_id, k in index.items():
            truth = data == class_id
            masks = [m for c, m in lines if c == k]
            _, count = ndimage.label(truth, structure=np.ones((3, 3)))
            assert len(masks) == count  # one line per object
            rebuilt = np.logical_or.reduce(masks) if masks else np.zeros_like(truth)
            union = np.logical_or(rebuilt, truth).sum()
            iou = np.logical_and(rebuilt, truth).sum() / union if union else 1.0
            assert iou > 0.99
            np.testing.assert_array_equal(rebuilt, truth)  # pixel-edge polygons: exact in practice
    assert (tmp_path / "labels" / "img2.txt").read_text() == ""  # background image


def test_yolo_large_image_coordinates(tmp_path: Path, labels: LabelSet) -> None:
    data = np.zeros((3000, 4000), dtype=np.uint8)
    yy, xx = np.ogrid[:3000, :4000]
    data[(yy - 1500) ** 2 + (xx - 2100) ** 2 < 900 ** 2] = 7
    data[(yy - 1500) ** 2 + (xx - 2100) ** 2 < 200 ** 2] = 0
    export_photos("yolo", tmp_path, [PhotoExportEntry("big.jpg", (3000, 4000), data)], labels)
    ((k, mask),) = _read_yolo(tmp_path / "labels" / "big.txt", (3000, 4000))
    truth = data == 7
    assert k == 2
    assert np.logical_and(mask, truth).sum() / np.logical_or(mask, truth).sum() > 0.999
