"""``maskwright segment --model CHECKPOINT VOLUME --out OUT`` (the medical half) and the catalog."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from engine.errors import ModelError
from engine.io.masks import read_mask_nifti
from engine.medical.catalog_entries import checkpoint_entry
from engine.medical.cli import run_segment
from engine.medical.infer import InferenceOptions, segment
from engine.models.catalog import default_catalog
from engine.models.weights import WeightsManager
from tests.engine.medical._tiny import tiny_checkpoint


def _args(inputs: list[Path], out: Path, model: str | None) -> argparse.Namespace:
    return argparse.Namespace(inputs=inputs, out=out, model=model, device="cpu", precision="auto", series=None,
                              classes="", strategy="naclip")


def test_nifti_in_nifti_out_on_the_same_geometry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    arr = rng.integers(-300, 400, size=(3, 24, 20)).astype(np.int16)
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((0.9, 0.8, 2.5))
    image.SetOrigin((10.0, -5.0, 3.0))
    sitk.WriteImage(image, str(tmp_path / "ct scan.nii.gz"))
    ckpt = tiny_checkpoint(tmp_path, modality="")
    assert run_segment(_args([tmp_path / "ct scan.nii.gz"], tmp_path / "out", str(ckpt))) == 0
    written = tmp_path / "out" / "ct_scan.nii.gz"
    mask = read_mask_nifti(written, expect_shape=(3, 24, 20))
    back = sitk.ReadImage(str(written))
    assert back.GetSpacing() == pytest.approx((0.9, 0.8, 2.5)) and back.GetOrigin() == pytest.approx((10, -5, 3))
    from engine.io.volumes import read_volume

    direct = segment(read_volume(tmp_path / "ct scan.nii.gz"), ckpt, options=InferenceOptions(device="cpu"))
    np.testing.assert_array_equal(mask, direct.label_map.data)
    assert "ct_scan.nii.gz" in capsys.readouterr().out


def test_dicom_series_also_gets_a_dicom_seg(tmp_path: Path) -> None:
    from tests.engine.io.dicom_synth import write_series

    write_series(tmp_path / "series", shape=(3, 32, 40), spacing=(0.8, 0.8, 2.0))
    ckpt = tiny_checkpoint(tmp_path)
    run_segment(_args([tmp_path / "series"], tmp_path / "out", str(ckpt)))
    assert (tmp_path / "out" / "series.nii.gz").is_file()
    import pydicom

    seg = pydicom.dcmread(tmp_path / "out" / "series.seg.dcm")
    assert seg.Modality == "SEG" and len(seg.SegmentSequence) >= 1


def test_missing_or_unknown_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="needs --model"):
        run_segment(_args([tmp_path / "x.nii.gz"], tmp_path / "out", None))
    with pytest.raises(ModelError, match="unknown model 'nope.model'"):
        run_segment(_args([tmp_path / "x.nii.gz"], tmp_path / "out", "nope.model"))


def test_checkpoints_load_through_the_catalog(tmp_path: Path) -> None:
    catalog = default_catalog()
    assert "mcanet" in catalog.architectures()
    ckpt = tiny_checkpoint(tmp_path)
    entry = catalog.register(checkpoint_entry(ckpt, "mcanet-test.liver"))
    assert entry.kind == "volume" and entry.labels == ("liver", "spleen") and entry.input_size == (3, 64, 64)
    model, meta = catalog.load("mcanet-test.liver", WeightsManager(catalog, tmp_path / "weights", offline=True))
    assert meta.classes[0].name == "liver" and not model.training


def test_maskwright_segment_command_for_a_volume(tmp_path: Path) -> None:
    from engine.cli import main

    image = sitk.GetImageFromArray(np.random.default_rng(1).integers(-200, 300, size=(2, 16, 16)).astype(np.int16))
    sitk.WriteImage(image, str(tmp_path / "v.nrrd"))
    ckpt = tiny_checkpoint(tmp_path, modality="")
    assert main(["segment", "--model", str(ckpt), str(tmp_path / "v.nrrd"), "--out", str(tmp_path / "o"),
                 "--device", "cpu"]) == 0
    assert read_mask_nifti(tmp_path / "o" / "v.nii.gz").shape == (2, 16, 16)
    assert main(["segment", "--model", str(tmp_path / "absent.safetensors"), str(tmp_path / "v.nrrd"),
                 "--out", str(tmp_path / "o")]) == 2  # a clear one-line error, not a traceback
