"""Training data from corrected annotations: class channels, growth, split, samples, the project."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from PIL import Image

from engine.items import LabelSet, Volume
from engine.store import Project, Provenance
from trainers.augment import IGNORE
from trainers.data import ClassMap, PhotoSamples, SliceSamples, grow_output_channels, split_by_item
from trainers.errors import TrainingDataError
from trainers.project import ProjectSource, publish_checkpoint, require_items
from trainers.sampling import Draw


def test_class_map_channels_and_growth() -> None:
    labels = LabelSet.from_text("liver, tumour, vessel")
    labels.remove(2)  # ids stay 1 and 3
    cmap = ClassMap.from_labels(labels)
    assert cmap.ids == (1, 3) and cmap.num_channels == 3
    ids = np.array([[0, 1], [3, 3]], dtype=np.uint8)
    assert cmap.to_channels(ids).tolist() == [[0, 1], [2, 2]]
    assert cmap.to_ids(cmap.to_channels(ids)).tolist() == ids.tolist()
    grown = ClassMap((1, 3, 4), ("liver", "vessel", "kidney"))
    assert grown.growth_from(cmap) == [0, 1, 2, None]
    assert ClassMap.from_dict(cmap.as_dict()) == cmap


def test_grow_output_channels_keeps_learned_channels() -> None:
    w, b = torch.randn(3, 8, 1, 1), torch.randn(3)
    new_w, new_b = grow_output_channels(w, b, [0, 1, 2, None])
    assert new_w.shape == (4, 8, 1, 1) and new_b is not None
    torch.testing.assert_close(new_w[:3], w)
    torch.testing.assert_close(new_b[:3], b)
    assert new_b[3] == 0 and 0 < new_w[3].abs().max() < 0.1


def test_binary_sigmoid_grows_into_equivalent_softmax() -> None:
    w, b = torch.randn(1, 8, 1, 1), torch.randn(1)
    new_w, new_b = grow_output_channels(w, b, [0, 1], binary=True)
    x = torch.randn(2, 8, 5, 5)
    old = torch.sigmoid(torch.nn.functional.conv2d(x, w, b))[:, 0]
    new = torch.softmax(torch.nn.functional.conv2d(x, new_w, new_b), dim=1)[:, 1]
    torch.testing.assert_close(new, old, rtol=1e-5, atol=1e-6)


def test_split_is_by_item_and_stable() -> None:
    keys = [f"{i}:case{i}.nii.gz" for i in range(40)]
    train, val = split_by_item(keys, 0.25)
    assert sorted(train + val) == list(range(40)) and not set(train) & set(val)
    assert 3 <= len(val) <= 18
    assert split_by_item(keys, 0.25) == (train, val)
    more_train, more_val = split_by_item(keys + [f"{i}:new{i}" for i in range(40, 60)], 0.25)
    assert set(val) <= set(more_val) and set(train) <= set(more_train)  # new items never move old ones
    assert split_by_item(["only"], 0.5) == ([0], [])
    t, v = split_by_item(["a", "b"], 0.01)
    assert len(t) == 1 and len(v) == 1


def _volume_pair(z: int = 6) -> tuple[np.ndarray, np.ndarray]:
    img = np.zeros((z, 20, 24), dtype=np.float32)
    lab = np.zeros((z, 20, 24), dtype=np.uint8)
    lab[1:5, 5:15, 5:15] = 1
    lab[2, 8:10, 8:10] = 2  # rare class on one slice
    img[lab > 0] = 1.0
    img += np.arange(z, dtype=np.float32)[:, None, None] * 0.01
    return img, lab


def test_slice_samples_25d_focus_and_determinism() -> None:
    ds = SliceSamples([_volume_pair()], (16, 16),
                      channel_slices=lambda z, depth: np.clip(np.arange(z - 1, z + 2), 0, depth - 1))
    assert len(ds) == 6
    assert ds.rarest_channel(3) == 2 and ds.slices_with(2) == [2]
    first = ds[Draw(0, 0, False)]
    assert first["image"].shape == (3, 16, 16) and first["target"].shape == (16, 16)
    # edge slice repeats: channels 0 and 1 are both slice 0
    torch.testing.assert_close(first["image"][0], first["image"][1])
    a, b = ds[Draw(2, 123)], ds[Draw(2, 123)]
    torch.testing.assert_close(a["image"], b["image"])
    assert torch.equal(a["target"], b["target"])
    c = ds[Draw(2, 124)]
    assert not torch.equal(a["image"], c["image"])
    val = ds[Draw(2, 0, False)]
    assert (val["target"] == IGNORE).any()  # 20x24 fitted into 16x16: padded rows are ignored
    assert set(val["target"].unique().tolist()) <= {0, 1, 2, IGNORE} and (val["target"] == 2).any()


def test_photo_samples_crops_flips_jitter() -> None:
    rgb = np.zeros((40, 60, 3), dtype=np.uint8)
    rgb[10:30, 10:30] = 200
    lab = np.zeros((40, 60), dtype=np.uint8)
    lab[10:30, 10:30] = 1
    ds = PhotoSamples([(rgb, lab)], (24, 24), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    s = ds[Draw(0, 7)]
    assert s["image"].shape == (3, 24, 24) and s["image"].dtype == torch.float32
    assert s["target"].dtype == torch.int64
    torch.testing.assert_close(ds[Draw(0, 7)]["image"], s["image"])
    v = ds[Draw(0, 0, False)]
    assert (v["target"] == IGNORE).any() and (v["target"] == 1).sum() > 50


def _make_project(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    with Project.create(folder, labels=LabelSet.from_text("cat, dog")) as project:
        for i, status in enumerate(["new", "predicted", "corrected", "approved"]):
            path = tmp_path / f"p{i}.png"
            Image.fromarray(np.full((16, 20, 3), 40 * i, dtype=np.uint8)).save(path)
            item = project.add_photo(path)
            mask = np.zeros((16, 20), dtype=np.uint8)
            mask[2:8, 3:9] = 1 + i % 2
            if status != "new":
                prov = Provenance.from_model("m.x") if status == "predicted" else Provenance.from_person("ana")
                project.save_annotation(item.id, mask, provenance=prov, status=status)
        arr = np.random.default_rng(0).normal(size=(4, 10, 12)).astype(np.float32)
        vpath = tmp_path / "vol.nii.gz"
        sitk.WriteImage(sitk.GetImageFromArray(arr), str(vpath))
        vitem = project.add_volume(Volume(arr, source=vpath))
        vmask = np.zeros((4, 10, 12), dtype=np.uint8)
        vmask[1:3, 2:5, 2:5] = 2
        project.save_annotation(vitem.id, vmask, provenance=Provenance.from_person(), status="approved")
    return folder


def test_project_source_reads_only_corrected_and_approved(tmp_path: Path) -> None:
    folder = _make_project(tmp_path)
    with Project.open(folder):  # the desktop holds the writer lock: training still reads
        with ProjectSource(folder, kind="photo") as source:
            items = source.trainable_items()
            assert [i.name for i in items] == ["p2.png", "p3.png"]
            assert source.read_photo(items[0]).rgb[0, 0, 0] == 80
            assert source.read_labels(items[1]).max() == 2
            assert [c.name for c in source.labels()] == ["cat", "dog"]
        with ProjectSource(folder, kind="volume") as source:
            (vol,) = source.trainable_items()
            assert source.read_volume(vol).shape == (4, 10, 12)
            assert source.read_labels(vol).max() == 2
    with pytest.raises(TrainingDataError, match="corrected or approved"):
        require_items([], folder, "photo")


def test_publish_records_checkpoint_or_leaves_it_to_the_lock_holder(tmp_path: Path) -> None:
    folder = _make_project(tmp_path)
    with ProjectSource(folder, kind="photo") as source:
        items = source.trainable_items()

    def write(path: Path) -> None:
        path.write_bytes(b"weights")

    first = publish_checkpoint(folder, model="mcanet.t", recipe="mcanet", write_weights=write, suffix=".bin",
                               metrics={"mean_dice": 0.8}, settings={"lr": 1e-3}, items=items, parent_id=None)
    assert first.checkpoint_id is not None and first.path.read_bytes() == b"weights"
    second = publish_checkpoint(folder, model="mcanet.t", recipe="mcanet", write_weights=write, suffix=".bin",
                                metrics={"mean_dice": 0.9}, settings={}, items=items, parent_id=first.checkpoint_id)
    with Project.open(folder, readonly=True) as project:
        ckpts = project.checkpoints("mcanet.t")
        assert [c.id for c in ckpts] == [first.checkpoint_id, second.checkpoint_id]
        assert ckpts[1].parent_id == first.checkpoint_id and ckpts[1].active and not ckpts[0].active
        assert ckpts[1].metrics == {"mean_dice": 0.9} and first.path.exists()  # earlier one kept
        run = project.training_run(ckpts[1].run_id)  # type: ignore[arg-type]
        assert [i["id"] for i in run.settings["items"]] == [i.item_id for i in items]
    with Project.open(folder):
        locked = publish_checkpoint(folder, model="mcanet.t", recipe="mcanet", write_weights=write, suffix=".bin",
                                    metrics={}, settings={}, items=items, parent_id=None, lock_wait_s=0.3)
    assert locked.checkpoint_id is None and locked.path.is_file() and locked.description.is_file()


def test_identity_augmentation_equals_plain_fit_and_rotation_keeps_labels_aligned() -> None:
    from trainers.augment import SliceAugment, augment_slice, fit_to_size

    img = torch.zeros(1, 32, 32)
    lab = torch.zeros(32, 32, dtype=torch.long)
    img[0, 4:12, 20:28] = 1.0
    lab[4:12, 20:28] = 1
    ident = SliceAugment(flip=0.0, rotate_deg=0.0, scale=(1.0, 1.0), intensity_scale=0.0, intensity_shift=0.0, shift=0.0)
    a_img, a_lab = augment_slice(img, lab, 5, cfg=ident, size=(32, 32))
    b_img, b_lab = fit_to_size(img, lab, (32, 32))
    torch.testing.assert_close(a_img, b_img, atol=1e-5, rtol=0)
    assert torch.equal(a_lab, b_lab)
    rot = SliceAugment(flip=0.0, rotate_deg=40.0, scale=(1.0, 1.0), intensity_scale=0.0, intensity_shift=0.0)
    r_img, r_lab = augment_slice(img, lab, 11, cfg=rot, size=(32, 32))
    inside = r_lab == 1
    assert inside.sum() > 30 and r_img[0][inside].mean() > 0.8 and r_img[0][r_lab == 0].mean() < 0.2
