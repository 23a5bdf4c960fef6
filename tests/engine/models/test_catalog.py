"""The catalog: entries, registry rules, and loading through the architecture table."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from engine.errors import ModelError, WeightsError
from engine.models.catalog import (
    DEFAULT_PHOTO_MODEL,
    Catalog,
    FileSource,
    HubSource,
    ModelEntry,
    default_catalog,
    split_name,
)
from engine.models.open_clip_entries import build_open_clip
from engine.models.weights import WeightsManager

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def _tiny(tmp_path: Path, seed: int = 0) -> tuple[Path, Path, torch.nn.Module]:
    cfg = tmp_path / "tiny_clip.json"
    cfg.write_text(json.dumps(TINY_CLIP))
    torch.manual_seed(seed)
    model = build_open_clip(str(cfg))
    weights = tmp_path / f"tiny{seed}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    return cfg, weights, model


def test_builtin_entries() -> None:
    catalog = default_catalog()
    names = [e.name for e in catalog.list()]
    assert {"ViT-B-16-quickgelu.openai", "ViT-B-16.laion2b_s34b_b88k", "ViT-L-14-quickgelu.openai"} <= set(names)
    default = catalog.get(DEFAULT_PHOTO_MODEL)
    assert default.kind == "photo" and default.architecture == "open_clip"
    assert default.config == "ViT-B-16-quickgelu" and default.licence == "MIT"
    assert default.family == "ViT-B-16-quickgelu" and default.tag == "openai"
    assert isinstance(default.source, HubSource) and default.source.open_clip_tag == "openai"
    assert default.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))
    assert catalog.list(kind="volume") == [e for e in catalog.list() if e.kind == "volume"]
    assert "open_clip" in catalog.architectures() and "open_clip_visual" in catalog.architectures()
    # the hub ids are the ones open_clip itself resolves these tags to
    import open_clip

    for e in catalog.list(kind="photo"):
        if isinstance(e.source, HubSource) and e.architecture == "open_clip":
            cfg = open_clip.get_pretrained_cfg(e.source.open_clip_model, e.source.open_clip_tag)
            assert cfg["hf_hub"].rstrip("/") == e.source.repo_id


def test_default_catalog_is_a_fresh_object_each_time() -> None:
    a = default_catalog()
    a.register(ModelEntry(name="project.x", kind="photo", architecture="open_clip", source=FileSource(Path("x"))))
    assert "project.x" in a and "project.x" not in default_catalog()


def test_registry_rules() -> None:
    catalog = Catalog()
    entry = ModelEntry(name="fam.tag", kind="photo", architecture="open_clip", source=FileSource(Path("w.bin")))
    catalog.register(entry)
    with pytest.raises(ValueError, match="already"):
        catalog.register(entry)
    catalog.register(entry, replace=True)
    with pytest.raises(ModelError, match="unknown model 'nope.x'; known models: fam.tag"):
        catalog.get("nope.x")
    catalog.register_loader("arch", lambda e, p, c: None)
    with pytest.raises(ValueError, match="already"):
        catalog.register_loader("arch", lambda e, p, c: None)
    with pytest.raises(ValueError, match="family.tag"):
        ModelEntry(name="nodot", kind="photo", architecture="a", source=FileSource(Path("w")))
    with pytest.raises(ValueError, match="kind"):
        ModelEntry(name="a.b", kind="video", architecture="a", source=FileSource(Path("w")))  # type: ignore[arg-type]
    assert split_name("ViT-B-16.laion2b_s34b_b88k") == ("ViT-B-16", "laion2b_s34b_b88k")
    for bad in ("project.run/7", "a.b..c", "a.b/../c", "a.b:c"):
        with pytest.raises(ValueError, match="path characters"):
            split_name(bad)


def test_load_through_the_architecture_table(tmp_path: Path) -> None:
    cfg, weights, model = _tiny(tmp_path)
    catalog = default_catalog()
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    catalog.register(ModelEntry(name="tiny.random", kind="photo", architecture="open_clip", config=str(cfg),
                                source=FileSource(weights, sha), input_size=(3, 32, 32)))
    loaded = catalog.load("tiny.random", WeightsManager(catalog, tmp_path / "cache", offline=True))
    assert not loaded.training
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_load_errors(tmp_path: Path) -> None:
    cfg, weights, _ = _tiny(tmp_path)
    catalog = default_catalog()
    manager = WeightsManager(catalog, tmp_path / "cache", offline=True)
    with pytest.raises(WeightsError, match="maskwright models download ViT-B-16-quickgelu.openai"):
        catalog.load("ViT-B-16-quickgelu.openai", manager)
    wrong = tmp_path / "wrong.safetensors"
    save_file({"visual.proj": torch.zeros(2, 2)}, str(wrong))
    catalog.register(ModelEntry(name="tiny.wrong", kind="photo", architecture="open_clip", config=str(cfg),
                                source=FileSource(wrong)))
    with pytest.raises(WeightsError, match="do not fit") as info:
        catalog.load("tiny.wrong", manager)
    assert info.value.path == wrong
    catalog.register(ModelEntry(name="tiny.alien", kind="photo", architecture="alien", source=FileSource(weights)))
    with pytest.raises(ModelError, match="no loader"):
        catalog.load("tiny.alien", manager)


def test_fine_tuned_visual_weights_load_on_their_base_model(tmp_path: Path) -> None:
    from engine.openvocab.densevlm_convert import save_visual_weights

    cfg, weights, base_model = _tiny(tmp_path, seed=0)
    _, _, tuned = _tiny(tmp_path, seed=5)
    visual_file = save_visual_weights(tuned, tmp_path / "tuned_visual.safetensors", metadata={"run": 3})
    catalog = default_catalog()
    catalog.register(ModelEntry(name="tiny.base", kind="photo", architecture="open_clip", config=str(cfg),
                                source=FileSource(weights)))
    catalog.register(ModelEntry(name="project.run3", kind="photo", architecture="open_clip_visual",
                                source=FileSource(visual_file), base="tiny.base"))
    loaded = catalog.load("project.run3", WeightsManager(catalog, tmp_path / "cache", offline=True))
    for k, v in loaded.state_dict().items():
        expected = tuned.state_dict()[k] if k.startswith("visual.") else base_model.state_dict()[k]
        assert torch.equal(v, expected), k
    catalog.register(ModelEntry(name="project.orphan", kind="photo", architecture="open_clip_visual",
                                source=FileSource(visual_file)))
    with pytest.raises(WeightsError, match="names no base model"):
        catalog.load("project.orphan", WeightsManager(catalog, tmp_path / "cache", offline=True))


def test_densevlm_entry_uses_the_eva_clip_loader() -> None:
    entry = default_catalog().get("EVA02-B-16.densevlm_coco")
    assert entry.architecture == "eva_clip" and entry.config == "EVA02-B-16"
    assert "eva_clip" in default_catalog().architectures()
