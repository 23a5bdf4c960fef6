import numpy as np
import pytest

from engine.errors import ItemReadError
from engine.io.masks import read_mask_nifti, read_mask_png, write_mask_nifti, write_mask_png
from engine.items import LabelSet, Volume


@pytest.mark.parametrize("dtype,top", [(np.uint8, 200), (np.uint16, 60000)])
def test_png_mask_round_trip(tmp_path, dtype, top) -> None:
    data = np.random.default_rng(0).integers(0, top, (37, 53)).astype(dtype)
    write_mask_png(tmp_path / "m.png", data)
    back = read_mask_png(tmp_path / "m.png")
    assert back.dtype == dtype and np.array_equal(back, data)


def test_indexed_png_keeps_class_ids(tmp_path) -> None:
    data = np.arange(12, dtype=np.uint8).reshape(3, 4) % 3
    write_mask_png(tmp_path / "m.png", data, palette=LabelSet.from_text("a, b").palette())
    assert np.array_equal(read_mask_png(tmp_path / "m.png"), data)


def test_nifti_mask_round_trip_keeps_geometry(tmp_path) -> None:
    import SimpleITK as sitk

    direction = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], float)
    vol = Volume(np.zeros((4, 5, 6), np.int16), spacing=(0.5, 0.75, 2.5), origin=(1, 2, 3), direction=direction)
    data = np.random.default_rng(1).integers(0, 4, vol.shape).astype(np.uint8)
    write_mask_nifti(tmp_path / "m.nii.gz", data, vol)
    assert np.array_equal(read_mask_nifti(tmp_path / "m.nii.gz", expect_shape=vol.shape), data)
    image = sitk.ReadImage(str(tmp_path / "m.nii.gz"))
    np.testing.assert_allclose(image.GetSpacing(), vol.spacing, rtol=1e-6)
    np.testing.assert_allclose(np.array(image.GetDirection()).reshape(3, 3), direction, atol=1e-6)


def test_truncated_mask_png_names_file(tmp_path) -> None:
    write_mask_png(tmp_path / "m.png", np.ones((64, 64), np.uint8))
    raw = (tmp_path / "m.png").read_bytes()
    (tmp_path / "m.png").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ItemReadError, match="m.png"):
        read_mask_png(tmp_path / "m.png")


def test_failed_write_leaves_old_file(tmp_path, monkeypatch) -> None:
    target = tmp_path / "m.png"
    write_mask_png(target, np.ones((8, 8), np.uint8))
    before = target.read_bytes()
    with pytest.raises(ValueError):
        write_mask_png(target, np.ones((8, 8, 2), np.uint8))
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]


def test_itk_full_disk_is_reported_as_full_disk(tmp_path, monkeypatch) -> None:
    import SimpleITK as sitk

    from engine.errors import MaskwrightError

    def fail(*args, **kwargs):
        raise RuntimeError("Exception thrown in SimpleITK WriteImage: ... No space left on device")

    monkeypatch.setattr(sitk, "WriteImage", fail)
    vol = Volume(np.zeros((2, 3, 4), np.int16))
    with pytest.raises(MaskwrightError, match="m.nii.gz: could not write: the disk is full"):
        write_mask_nifti(tmp_path / "m.nii.gz", np.zeros((2, 3, 4), np.uint8), vol)
    assert list(tmp_path.iterdir()) == []
