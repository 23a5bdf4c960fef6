"""Catalog entries for checkpoints produced on this machine."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import open_clip
import pytest
import torch
from safetensors.torch import save_file

from engine.errors import WeightsError
from engine.models.catalog import FileSource, ModelEntry, default_catalog
from engine.models.checkpoints import entry_for_checkpoint, read_metadata
from engine.models.weights import WeightsManager
from engine.openvocab.cascade import CascadeConfig, CascadeHead
from engine.openvocab.cascade_io import save_head
from engine.openvocab.densevlm_convert import save_visual_weights

TINY = dict(embed_dim=32, vision_cfg={"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
            text_cfg={"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1})


def test_cascade_head_entry_names_its_backbone(tmp_path: Path) -> None:
    head = CascadeHead(CascadeConfig(backbone="ViT-B-16.laion2b_s34b_b88k", width=64, dim=32, depth=2,
                                     stages=((0,),), num_heads=4, num_layers=1, ffn_dim=64, num_prompt_tokens=0))
    path = save_head(head, tmp_path / "head.safetensors")
    entry = entry_for_checkpoint(path, name="project.cascade-1")
    assert entry.architecture == "cascade_clip" and entry.base == "ViT-B-16.laion2b_s34b_b88k"
    assert entry.source == FileSource(path, hashlib.sha256(path.read_bytes()).hexdigest())
    assert entry.size_bytes == path.stat().st_size
    assert read_metadata(path)["format"] == "maskwright.cascade_clip"


def test_visual_weights_entry_loads_through_the_catalog(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    torch.manual_seed(0)
    base = open_clip.CLIP(**TINY)
    base_file = tmp_path / "base.safetensors"
    save_file({k: v.contiguous() for k, v in base.state_dict().items()}, str(base_file))
    torch.manual_seed(1)
    tuned = open_clip.CLIP(**TINY)
    visual = save_visual_weights(tuned, tmp_path / "visual.safetensors", metadata={"base": "tiny.base"})
    catalog = default_catalog()
    catalog.register(ModelEntry(name="tiny.base", kind="photo", architecture="open_clip", config=str(cfg),
                                source=FileSource(base_file)))
    catalog.register(entry_for_checkpoint(visual, name="project.run-2"))
    model = catalog.load("project.run-2", WeightsManager(catalog, tmp_path / "cache", offline=True))
    assert torch.equal(model.visual.conv1.weight, tuned.visual.conv1.weight)
    assert torch.equal(model.token_embedding.weight, base.token_embedding.weight)


def test_unknown_or_incomplete_checkpoints_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other))
    with pytest.raises(WeightsError, match="give its architecture"):
        entry_for_checkpoint(other, name="project.x")
    assert entry_for_checkpoint(other, name="project.x", architecture="mcanet", kind="volume").architecture == "mcanet"
    anonymous = save_visual_weights(open_clip.CLIP(**TINY), tmp_path / "v.safetensors")
    with pytest.raises(WeightsError, match="base model"):
        entry_for_checkpoint(anonymous, name="project.y")
    assert entry_for_checkpoint(anonymous, name="project.y", base="tiny.base").base == "tiny.base"
    with pytest.raises(WeightsError, match="not found"):
        entry_for_checkpoint(tmp_path / "missing.safetensors", name="project.z")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"nope")
    with pytest.raises(WeightsError, match="not a safetensors"):
        read_metadata(junk)
