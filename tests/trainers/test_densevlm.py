"""DenseVLM recipe on a tiny random-weight CLIP: the alignment loss goes down; weights publish blended."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from torch.utils.data import default_collate

from engine.openvocab.clip_model import ClipSpec, load_clip
from engine.openvocab.densevlm_convert import load_visual_weights
from engine.store import Project
from tests.trainers._synth import photo_project
from trainers.densevlm import DenseVLMSettings, DenseVLMTrainer
from trainers.events import EventWriter
from trainers.loop import TrainConfig
from trainers.regions import AlignmentStats, alignment_loss, grid_boxes
from trainers.sampling import Draw
from trainers.schedule import ScheduleConfig
from trainers.vocabulary import build_vocabulary

TINY = {
    "embed_dim": 32,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 1, "layers": 1},
}
SPEC = ClipSpec(name="tiny-test-vit", pretrained=None, config=TINY, seed=3)


def test_vocabulary_and_grid() -> None:
    names, things = build_vocabulary(["cat; kitten", "sky", "widget"])
    assert names[:3] == ["cat; kitten", "sky", "widget"] and things[:3] == [True, False, True]
    assert names.count("cat") == 0 and "person" in names and "grass" in names
    boxes = grid_boxes(5, (64, 96))
    assert 4 <= len(boxes) <= 36 and boxes[:, 2].max() == 96 and boxes[:, 3].max() == 64


def test_alignment_loss_filters_and_decouples() -> None:
    text = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    is_thing = torch.tensor([True, True, True, False, False, False])
    teacher = torch.stack([text[0], text[4], torch.nn.functional.normalize(torch.ones(8), dim=0)])
    stats = AlignmentStats()
    same = alignment_loss(teacher, teacher, text_student=text, text_teacher=text, is_thing=is_thing, stats=stats)
    assert same.abs() < 1e-5 and stats.regions == 3 and stats.kept >= 2 and stats.things >= 1
    other = alignment_loss(torch.nn.functional.normalize(torch.randn(3, 8), dim=-1), teacher, text_student=text,
                           text_teacher=text, is_thing=is_thing)
    assert other > 0.1
    none = alignment_loss(teacher, teacher, text_student=text, text_teacher=text, is_thing=is_thing, threshold=1.0,
                          stats=stats)
    assert none == 0 and stats.kept == 0


def _val_loss(trainer: DenseVLMTrainer) -> float:
    model = trainer.build_model().eval()
    ds = trainer.val_ds
    batch = default_collate([ds[Draw(i, 0, False)] for i in range(len(ds))])
    with torch.inference_mode():
        return trainer.validate(model, iter([batch]))["val_loss"]


def test_densevlm_lowers_alignment_loss_and_publishes_blend(tmp_path: Path) -> None:
    project = photo_project(tmp_path / "p", list(range(10)), classes="red disc, sky")
    cfg = TrainConfig(max_steps=30, batch_size=4, lr=1e-4, weight_decay=0.1, schedule=ScheduleConfig("cosine"),
                      val_every=10, log_every=10, device="cpu", precision="fp32", run_dir=tmp_path / "run")
    settings = DenseVLMSettings(project=project, backbone="tiny.test", clip=SPEC, crop=64, val_fraction=0.3)
    before = DenseVLMTrainer(cfg, settings)
    before.prepare()
    initial = _val_loss(before)
    trainer = DenseVLMTrainer(cfg, settings, events=EventWriter(io.StringIO()))
    result = trainer.fit()
    assert result.best_metrics["kept_fraction"] > 0.2  # the 0.3 filter leaves regions to align
    assert result.best_metrics["val_loss"] < 0.8 * initial, (initial, result.best_metrics)
    with Project.open(project, readonly=True) as p:
        (ckpt,) = p.checkpoints(settings.model_name)
    start = load_clip(SPEC).model
    published = load_visual_weights(load_clip(SPEC).model, ckpt.path)
    key = "transformer.resblocks.0.mlp.c_fc.weight"
    best = result.best_state[key]  # type: ignore[index]
    expected = 0.9 * best + 0.1 * start.visual.state_dict()[key]
    torch.testing.assert_close(published.visual.state_dict()[key], expected)
