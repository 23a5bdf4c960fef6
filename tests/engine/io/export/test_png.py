"""Indexed PNG export: pixel values are class ids, palette is the class colours."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from engine.io.export import PhotoExportEntry, export_photos
from engine.io.masks import read_mask_png
from engine.items import LabelSet


def test_png_round_trip(tmp_path: Path, entries: list[PhotoExportEntry], labels: LabelSet) -> None:
    result = export_photos("png", tmp_path, entries, labels)
    assert result.items == 3
    for entry, rel in zip(entries, ["img1.png", "site b/img10.png", "img2.png"]):
        path = tmp_path / rel
        assert path in result.files
        np.testing.assert_array_equal(read_mask_png(path), entry.label_data())
        with Image.open(path) as image:  # independent reader: Pillow sees an indexed image
            assert image.mode == "P"
            np.testing.assert_array_equal(np.asarray(image), entry.label_data())
            assert tuple(image.getpalette()[7 * 3: 7 * 3 + 3]) == labels[7].color
    doc = json.loads((tmp_path / "labels.json").read_text())
    assert [(c["id"], c["name"]) for c in doc["classes"]] == [(1, "cat"), (3, "dog: big"), (7, "sky"), (9, "bird")]


def test_png_16bit_ids(tmp_path: Path) -> None:
    labels = LabelSet.from_text("a, b")
    labels.add("c", id=300)
    data = np.zeros((6, 5), dtype=np.uint16)
    data[1:3, 1:4] = 300
    data[4, :] = 2
    result = export_photos("png", tmp_path, [PhotoExportEntry("x.tif", (6, 5), data)], labels)
    np.testing.assert_array_equal(read_mask_png(tmp_path / "x.png"), data)
    assert result.notes and "16-bit" in result.notes[0]
