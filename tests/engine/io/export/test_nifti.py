"""NIfTI export: the label volume comes back on the volume's geometry (read with nibabel too)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ExportError
from engine.io.export import export_volume
from engine.io.masks import read_mask_nifti
from engine.items import LabelSet, Volume


@pytest.fixture
def volume() -> Volume:
    c, s = np.cos(0.3), np.sin(0.3)
    direction = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return Volume(np.zeros((5, 12, 14), np.int16), spacing=(0.7, 0.8, 2.5), origin=(-10.0, 4.0, 30.0),
                  direction=direction, modality="CT")


def _labelmap(shape: tuple[int, int, int]) -> np.ndarray:
    data = np.zeros(shape, dtype=np.uint8)
    data[1:4, 2:8, 3:9] = 1
    data[2, 5:10, 6:12] = 7
    return data


def test_nifti_round_trip(tmp_path: Path, volume: Volume, labels: LabelSet) -> None:
    import nibabel as nib

    data = _labelmap(volume.shape)
    result = export_volume("nifti", tmp_path / "case1", volume, data, labels)
    mask_path, json_path = tmp_path / "case1.nii.gz", tmp_path / "case1.labels.json"
    assert result.files == (mask_path, json_path)
    np.testing.assert_array_equal(read_mask_nifti(mask_path, expect_shape=volume.shape), data)
    image = nib.load(mask_path)  # independent reader: nibabel, RAS affine
    np.testing.assert_array_equal(np.asarray(image.dataobj).transpose(2, 1, 0), data)
    lps_to_ras = np.diag([-1.0, -1.0, 1.0])
    expect = np.eye(4)
    expect[:3, :3] = lps_to_ras @ volume.direction @ np.diag(volume.spacing)
    expect[:3, 3] = lps_to_ras @ np.asarray(volume.origin)
    np.testing.assert_allclose(image.affine, expect, atol=1e-4)
    doc = json.loads(json_path.read_text())
    assert [c["name"] for c in doc["classes"]] == ["cat", "dog: big", "sky", "bird"]


def test_nifti_refuses_a_mask_on_another_grid(tmp_path: Path, volume: Volume, labels: LabelSet) -> None:
    with pytest.raises(ExportError, match="differs from the volume's"):
        export_volume("nifti", tmp_path / "x.nii.gz", volume, np.zeros((5, 12, 13), np.uint8), labels)
    assert list(tmp_path.iterdir()) == []
