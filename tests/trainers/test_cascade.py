"""Cascade-CLIP recipe on a tiny random-weight CLIP: learns two classes, takes unseen names."""

from __future__ import annotations

import io
from pathlib import Path

import torch

from engine.openvocab.cascade import CascadeCLIP
from engine.openvocab.cascade_io import load_head
from engine.openvocab.clip_model import ClipSpec, load_clip
from engine.store import Project
from tests.trainers._synth import photo_project
from trainers.cascade import CascadeSettings, CascadeTrainer
from trainers.clip import default_stages
from trainers.clip import class_text_embeddings
from trainers.events import EventWriter
from trainers.loop import TrainConfig
from trainers.schedule import ScheduleConfig

TINY = {
    "embed_dim": 32,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 32, "patch_size": 4, "width": 64, "layers": 4, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 1, "layers": 1},
}
SPEC = ClipSpec(name="tiny-test-vit", pretrained=None, config=TINY, seed=7)


def test_default_stages() -> None:
    assert default_stages(12) == ((5, 6, 7), (8, 9, 10))
    assert default_stages(4) == ((1,), (2,))
    assert default_stages(2) == ((0,),)


def test_cascade_head_learns_two_classes_and_takes_unseen_names(tmp_path: Path) -> None:
    project = photo_project(tmp_path / "p", list(range(12)))
    cfg = TrainConfig(max_steps=120, batch_size=8, lr=3e-3, weight_decay=0.01, schedule=ScheduleConfig("poly", warmup_steps=5),
                      val_every=40, log_every=20, device="cpu", precision="fp32", run_dir=tmp_path / "run")
    settings = CascadeSettings(project=project, backbone="tiny.test", clip=SPEC, crop=64, prompt_tokens=4,
                               val_fraction=0.25)
    trainer = CascadeTrainer(cfg, settings, events=EventWriter(io.StringIO()))
    result = trainer.fit()
    # chance: a random labelling of three classes scores a mean Dice of about 0.15 on these photos
    assert result.best_metrics["mean_dice"] > 0.5, result.best_metrics
    assert min(result.best_metrics["dice"].values()) > 0.3  # both classes, not one
    with Project.open(project, readonly=True) as p:
        (ckpt,) = p.checkpoints(settings.model_name)
    head, extra = load_head(ckpt.path)
    assert extra["classes"]["names"] == ["red disc", "blue square"]
    clip = load_clip(SPEC)
    model = CascadeCLIP(clip.model.visual, head).eval()
    text = class_text_embeddings(clip, ["green triangle", "red disc"])  # a name never seen in training
    image = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        logits = model(image, text)
    assert logits.shape == (1, 2, 64, 64) and torch.isfinite(logits).all()
    assert not torch.allclose(logits[0, 0], logits[0, 1])


def test_cascade_checkpoints_hold_the_head_only(tmp_path: Path) -> None:
    project = photo_project(tmp_path / "p", [1, 2, 3])
    cfg = TrainConfig(max_steps=2, batch_size=2, lr=1e-3, val_every=2, log_every=1, device="cpu", precision="fp32",
                      run_dir=tmp_path / "run")
    settings = CascadeSettings(project=project, backbone="tiny.test", clip=SPEC, crop=32, prompt_tokens=0,
                               publish=False)
    CascadeTrainer(cfg, settings, events=EventWriter(io.StringIO())).fit()
    from trainers import checkpoint

    state = checkpoint.load(tmp_path / "run" / checkpoint.RESUME_NAME)["model"]
    assert state and not any(k.startswith(("visual.", "conv1", "transformer")) for k in state)
    resumed = CascadeTrainer(TrainConfig(**{**cfg.__dict__, "max_steps": 3, "resume": True}), settings,
                             events=EventWriter(io.StringIO())).fit()
    assert resumed.step == 3
