"""MCANet recipe: learns shapes in noise for real, publishes a checkpoint the engine loads, grows classes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.medical.checkpoint import load_mcanet_checkpoint
from engine.store import Project
from tests.trainers._synth import shapes_volume, volume_project
from trainers.events import EventWriter
from trainers.loop import TrainConfig
from trainers.mcanet import MCANetSettings, MCANetTrainer
from trainers.metrics import SegmentationStats
from trainers.schedule import ScheduleConfig


def _dice_on_unseen(path: Path, seeds: list[int]) -> dict[str, object]:
    """Dice of the engine's own inference (``engine.medical.infer.segment``) with the published
    checkpoint on volumes it never saw: training and inference must preprocess alike."""
    from engine.items import Volume
    from engine.medical.infer import segment

    stats = SegmentationStats(3)
    for seed in seeds:
        arr, lab = shapes_volume(seed)
        seg = segment(Volume(arr), path)
        stats.update(torch.from_numpy(seg.label_map.data.astype(np.int64)), torch.from_numpy(lab.astype(np.int64)))
    return stats.compute(["background", "organ", "lesion"])


def test_mcanet_t_learns_shapes_in_noise(tmp_path: Path) -> None:
    project = volume_project(tmp_path / "p", [1, 2, 3, 4, 5])
    cfg = TrainConfig(max_steps=100, batch_size=8, lr=1e-3, schedule=ScheduleConfig("poly", warmup_steps=10),
                      val_every=50, log_every=25, device="cpu", precision="fp32", run_dir=tmp_path / "run")
    trainer = MCANetTrainer(cfg, MCANetSettings(project=project, init="scratch", crop=64),
                            events=EventWriter(io.StringIO()))
    result = trainer.fit()
    assert result.status == "done"
    with Project.open(project, readonly=True) as p:
        (ckpt,) = p.checkpoints("mcanet.t")
        assert ckpt.active and ckpt.metrics["mean_dice"] == result.best_metrics["mean_dice"]
    metrics = _dice_on_unseen(ckpt.path, [101, 102, 103])
    assert metrics["mean_dice"] >= 0.9, metrics


def test_new_class_grows_a_channel_and_keeps_the_learned_ones(tmp_path: Path) -> None:
    from trainers.mcanet_model import build_start_model

    project = volume_project(tmp_path / "p", [1, 2, 3], depth=6, size=32)
    cfg = TrainConfig(max_steps=2, batch_size=2, lr=1e-3, val_every=2, log_every=1, device="cpu", precision="fp32",
                      run_dir=tmp_path / "r1")
    settings = MCANetSettings(project=project, variant="test", init="auto", crop=32)
    first = MCANetTrainer(cfg, settings, events=EventWriter(io.StringIO()))
    first.fit()
    with Project.open(project) as p:
        parent = p.active_checkpoint("mcanet.test")
        assert parent is not None
        p.add_class("vessel")
    grown = MCANetTrainer(TrainConfig(**{**cfg.__dict__, "run_dir": tmp_path / "r2"}), settings,
                          events=EventWriter(io.StringIO()))
    grown.prepare()
    assert grown.parent_id == parent.id and grown.class_map.names == ("organ", "lesion", "vessel")
    model = build_start_model(grown.meta, grown.class_map, start=grown.start, imagenet=None)
    old, _ = load_mcanet_checkpoint(parent.path)
    w_old, w_new = old.decode_head.conv_seg.weight, model.decode_head.conv_seg.weight
    assert w_new.shape[0] == 4 and w_old.shape[0] == 3
    torch.testing.assert_close(w_new[:3], w_old)
    torch.testing.assert_close(model.backbone.patch_embed1.proj[0].weight, old.backbone.patch_embed1.proj[0].weight)
    result = grown.fit()
    with Project.open(project, readonly=True) as p:
        latest = p.active_checkpoint("mcanet.test")
        assert latest is not None and latest.parent_id == parent.id and len(p.checkpoints("mcanet.test")) == 2
    _, meta = load_mcanet_checkpoint(latest.path)
    assert [c.name for c in meta.classes] == ["organ", "lesion", "vessel"] and result.status == "done"


def test_bad_init_is_a_clear_error(tmp_path: Path) -> None:
    from trainers.errors import TrainingConfigError

    project = volume_project(tmp_path / "p", [1, 2], depth=6, size=32)
    cfg = TrainConfig(max_steps=1, batch_size=2, device="cpu", run_dir=tmp_path / "r")
    with pytest.raises(TrainingConfigError, match="needs --weights"):
        MCANetTrainer(cfg, MCANetSettings(project=project, variant="test", init="imagenet"),
                      events=EventWriter(io.StringIO())).fit()


def test_starts_from_imagenet_mscan_weights_or_a_checkpoint_file(tmp_path: Path) -> None:
    from engine.medical.mcanet import create_mcanet
    from trainers.mcanet_model import build_start_model

    project = volume_project(tmp_path / "p", [1, 2], depth=6, size=32)
    torch.manual_seed(11)
    backbone = create_mcanet("test").backbone.state_dict()
    mmseg = {"state_dict": {**backbone, "head.weight": torch.zeros(1000, 64)}, "meta": {"note": "ImageNet"}}
    torch.save(mmseg, tmp_path / "mscan_test.pth")
    cfg = TrainConfig(max_steps=1, batch_size=2, device="cpu", run_dir=tmp_path / "r")
    trainer = MCANetTrainer(cfg, MCANetSettings(project=project, variant="test", init="imagenet", crop=32,
                                                weights=tmp_path / "mscan_test.pth"), events=EventWriter(io.StringIO()))
    trainer.prepare()
    model = trainer.build_model()
    for key, value in backbone.items():
        torch.testing.assert_close(model.backbone.state_dict()[key], value)
    result = trainer.fit()
    assert result.status == "done" and trainer.parent_id is None
    published = trainer.published.path
    again = MCANetTrainer(cfg, MCANetSettings(project=project, variant="test", init="checkpoint", crop=32,
                                              weights=published), events=EventWriter(io.StringIO()))
    again.prepare()
    start, _ = load_mcanet_checkpoint(published)
    rebuilt = build_start_model(again.meta, again.class_map, start=again.start, imagenet=None)
    for key, value in start.state_dict().items():
        torch.testing.assert_close(rebuilt.state_dict()[key], value)


@pytest.mark.gpu
def test_mcanet_on_cuda_with_amp(tmp_path: Path) -> None:
    project = volume_project(tmp_path / "p", [1, 2, 3], depth=6, size=64)
    cfg = TrainConfig(max_steps=20, batch_size=8, lr=1e-3, val_every=10, log_every=5, device="cuda",
                      precision="auto", run_dir=tmp_path / "r")
    trainer = MCANetTrainer(cfg, MCANetSettings(project=project, init="scratch", crop=64),
                            events=EventWriter(io.StringIO()))
    result = trainer.fit()
    assert result.status == "done" and trainer.events.last("start")["precision"] in ("bfloat16", "float16")
    assert result.best_metrics["mean_dice"] > 0.3


@pytest.mark.parametrize("context", [1, 2])
def test_25d_training_records_its_context(tmp_path: Path, context: int) -> None:
    project = volume_project(tmp_path / "p", [1, 2], depth=6, size=32)
    cfg = TrainConfig(max_steps=1, batch_size=2, device="cpu", precision="fp32", run_dir=tmp_path / "r")
    trainer = MCANetTrainer(cfg, MCANetSettings(project=project, variant="test", init="scratch", crop=32,
                                                context=context), events=EventWriter(io.StringIO()))
    trainer.fit()
    model, meta = load_mcanet_checkpoint(trainer.published.path)
    assert meta.context_slices == context and meta.in_channels == 2 * context + 1
    assert model.backbone.in_channels == 2 * context + 1 and len(meta.mean) == 2 * context + 1
