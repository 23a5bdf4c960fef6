"""Pascal VOC export: indexed PNGs with the VOC colour map, contiguous indices, label lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.errors import ExportError
from engine.io.export import PhotoExportEntry, export_photos
from engine.io.export.voc import voc_colormap
from engine.items import LabelSet


def test_voc_colormap_is_the_standard_one() -> None:
    cmap = voc_colormap()
    assert cmap.shape == (256, 3) and cmap.dtype == np.uint8
    # first VOC colours: background, aeroplane, bicycle, bird, boat ... and 255 (void)
    assert cmap[:5].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]]
    assert cmap[15].tolist() == [192, 128, 128] and cmap[255].tolist() == [224, 224, 192]


def test_voc_round_trip(tmp_path: Path, entries: list[PhotoExportEntry], labels: LabelSet) -> None:
    export_photos("voc", tmp_path, entries, labels)
    names = (tmp_path / "labels.txt").read_text().splitlines()
    assert names == ["background", "cat", "dog: big", "sky", "bird"]
    assert (tmp_path / "ImageSets/Segmentation/default.txt").read_text().splitlines() == [
        "img1", "site b/img10", "img2"]
    labelmap = (tmp_path / "labelmap.txt").read_text().splitlines()
    assert labelmap[2] == "cat:128,0,0::"
    id_of_name = {c.name: c.id for c in labels}
    for entry, rel in zip(entries, ["img1.png", "site b/img10.png", "img2.png"]):
        with Image.open(tmp_path / "SegmentationClass" / rel) as image:  # Pillow as the independent reader
            assert image.mode == "P"
            assert image.getpalette()[:9] == [0, 0, 0, 128, 0, 0, 0, 128, 0]
            index = np.asarray(image)
        back = np.zeros(index.shape, dtype=np.uint16)
        for k, name in enumerate(names[1:], start=1):
            back[index == k] = id_of_name[name]
        np.testing.assert_array_equal(back, entry.label_data())
        assert index.max() < 255  # no void pixels


def test_voc_refuses_more_than_254_classes(tmp_path: Path) -> None:
    labels = LabelSet.from_text(", ".join(f"c{i}" for i in range(255)))
    with pytest.raises(ExportError, match="at most 254 classes"):
        export_photos("voc", tmp_path, [PhotoExportEntry("a.png", (2, 2), None)], labels)
