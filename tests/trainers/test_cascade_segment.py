"""End to end: the Cascade-CLIP recipe publishes a head into the project, and ``maskwright segment
--model`` runs it on photos (blended with the training-free probabilities)."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image
from safetensors.torch import save_file

from engine.cli import segment
from engine.io.masks import read_mask_png
from engine.openvocab.clip_model import load_clip
from engine.openvocab.photo_model import load_photo_model
from engine.store import Project
from tests.trainers._synth import photo_project
from tests.trainers.test_cascade import SPEC, TINY
from trainers.cascade import CascadeSettings, CascadeTrainer
from trainers.events import EventWriter
from trainers.loop import TrainConfig


def test_trained_head_is_published_then_segments_photos(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("MASKWRIGHT_CACHE_DIR", str(tmp_path / "weights"))
    backbone = tmp_path / "tiny_clip"  # the backbone the head names: an open_clip folder
    backbone.mkdir()
    (backbone / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY, "preprocess_cfg": {}}))
    save_file({k: v.contiguous() for k, v in load_clip(SPEC).model.state_dict().items()},
              str(backbone / "open_clip_model.safetensors"))

    project = photo_project(tmp_path / "p", [1, 2, 3, 4])
    cfg = TrainConfig(max_steps=3, batch_size=2, lr=1e-3, val_every=3, log_every=1, device="cpu", precision="fp32",
                      run_dir=tmp_path / "run")
    settings = CascadeSettings(project=project, backbone=f"local-dir:{backbone}", clip=SPEC, crop=32, prompt_tokens=2,
                               templates=("a photo of a {}.",), val_fraction=0.25)
    CascadeTrainer(cfg, settings, events=EventWriter(io.StringIO())).fit()
    with Project.open(project, readonly=True) as p:
        active = [c for c in p.checkpoints(settings.model_name) if c.active]
    assert len(active) == 1
    ckpt = Path(active[0].path)

    model = load_photo_model(ckpt)
    assert model.head is not None and model.checkpoint == ckpt

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (36, 44, 3), dtype=np.uint8)).save(photos / "x.png")
    parser = argparse.ArgumentParser()
    segment.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["segment", "--classes", "red disc, blue square, green triangle", str(photos),
                              "--out", str(tmp_path / "out"), "--model", str(ckpt), "--device", "cpu"])
    assert segment.run(args) == 0
    mask = read_mask_png(tmp_path / "out" / "masks" / "x.png")
    assert mask.shape == (36, 44) and set(np.unique(mask)) <= {0, 1, 2, 3}
