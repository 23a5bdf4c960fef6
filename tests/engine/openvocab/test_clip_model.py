"""Loading CLIP models: explicit configs, weights files, open_clip folders, tags (offline), and
run-time position embeddings."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from engine.errors import ModelError, WeightsError
from engine.openvocab.clip_model import OPENAI_MEAN, ClipSpec, load_clip
from engine.openvocab.strategies import encode_dense
from tests.engine.openvocab._tiny import TINY_CONFIG, tiny_clip, tiny_spec


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_config_model_is_deterministic_per_seed() -> None:
    a, b, c = tiny_clip(1), tiny_clip(1), tiny_clip(2)
    assert _same_weights(a.model, b.model)
    assert not _same_weights(a.model, c.model)
    assert a.key == b.key != c.key
    assert a.patch_size == 8 and a.native_grid == (4, 4) and a.embed_dim == 32
    assert tuple(a.mean.tolist()) == pytest.approx(OPENAI_MEAN)
    assert not any(p.requires_grad for p in a.model.parameters())


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_weights_file_loads_the_same_weights(tmp_path: Path, suffix: str) -> None:
    src = tiny_clip(5)
    state = {k: v.contiguous() for k, v in src.model.state_dict().items()}
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    loaded = load_clip(ClipSpec(name="tiny", pretrained=str(path), config=TINY_CONFIG, seed=99))
    assert _same_weights(src.model, loaded.model)
    assert "file:" not in loaded.key or str(path.resolve()) in loaded.key


def test_damaged_weights_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError) as err:
        load_clip(ClipSpec(name="tiny", pretrained=str(path), config=TINY_CONFIG))
    assert "broken.safetensors" in str(err.value)


def test_weights_of_another_architecture_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.safetensors"
    save_file({"visual.proj": torch.zeros(3, 3)}, str(path))
    with pytest.raises(WeightsError, match="do not fit"):
        load_clip(ClipSpec(name="tiny", pretrained=str(path), config=TINY_CONFIG))


def test_local_dir_keeps_its_preprocessing(tmp_path: Path) -> None:
    src = tiny_clip(3)
    folder = tmp_path / "model"
    folder.mkdir()
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    (folder / "open_clip_config.json").write_text(json.dumps(
        {"model_cfg": TINY_CONFIG, "preprocess_cfg": {"mean": mean, "std": std}}))
    save_file({k: v.contiguous() for k, v in src.model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    loaded = load_clip(ClipSpec(name=f"local-dir:{folder}", pretrained=None))
    assert _same_weights(src.model, loaded.model)
    assert loaded.mean.tolist() == pytest.approx(mean) and loaded.std.tolist() == pytest.approx(std)


def test_local_dir_without_config_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="open_clip_config.json"):
        load_clip(ClipSpec(name=f"local-dir:{tmp_path}", pretrained=None))


def test_missing_tag_fails_fast_offline_and_says_what_to_do(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    with pytest.raises(WeightsError) as err:
        load_clip(ClipSpec(name="ViT-B-16-quickgelu", pretrained="openai", cache_dir=tmp_path))
    assert time.perf_counter() - t0 < 30  # no retries against the network (generous bound)
    assert "maskwright models download ViT-B-16-quickgelu.openai" in str(err.value)


def test_unknown_tag_and_model_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="no pretrained tag"):
        load_clip(ClipSpec(name="ViT-B-16", pretrained="no-such-tag", cache_dir=tmp_path))
    with pytest.raises(ModelError, match="unknown open_clip model"):
        load_clip(ClipSpec(name="ViT-Nope", pretrained=None))


def test_tag_found_in_hub_cache_loads_with_the_tags_preprocessing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub-cache lookup path, with the architecture swapped for the tiny one."""
    import open_clip

    src = tiny_clip(4)
    cfg = open_clip.get_pretrained_cfg("ViT-B-16", "laion2b_s34b_b88k")
    repo = cfg["hf_hub"].rstrip("/")
    snap = tmp_path / f"models--{repo.replace('/', '--')}" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (tmp_path / f"models--{repo.replace('/', '--')}" / "refs").mkdir()
    (tmp_path / f"models--{repo.replace('/', '--')}" / "refs" / "main").write_text("abc123")
    save_file({k: v.contiguous() for k, v in src.model.state_dict().items()}, str(snap / "open_clip_model.safetensors"))
    monkeypatch.setattr("open_clip.factory.get_model_config", lambda name: json.loads(json.dumps(TINY_CONFIG)))
    loaded = load_clip(ClipSpec(name="ViT-B-16", pretrained="laion2b_s34b_b88k", cache_dir=tmp_path))
    assert _same_weights(src.model, loaded.model)
    assert loaded.key == "ViT-B-16|laion2b_s34b_b88k"


def test_openai_tag_on_a_gelu_config_gets_quickgelu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain ViT-B-16 + openai would silently run GELU in open_clip 3.x; we follow the tag."""
    import open_clip
    from open_clip.transformer import QuickGELU

    src = tiny_clip(4)
    repo = open_clip.get_pretrained_cfg("ViT-B-16", "openai")["hf_hub"].rstrip("/")
    root = tmp_path / f"models--{repo.replace('/', '--')}"
    (root / "snapshots" / "abc").mkdir(parents=True)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text("abc")
    save_file({k: v.contiguous() for k, v in src.model.state_dict().items()},
              str(root / "snapshots" / "abc" / "open_clip_model.safetensors"))
    gelu_config = {k: v for k, v in TINY_CONFIG.items() if k != "quick_gelu"}
    monkeypatch.setattr("open_clip.factory.get_model_config", lambda name: json.loads(json.dumps(gelu_config)))
    loaded = load_clip(ClipSpec(name="ViT-B-16", pretrained="openai", cache_dir=tmp_path))
    assert isinstance(loaded.model.visual.transformer.resblocks[0].mlp.gelu, QuickGELU)


@pytest.mark.parametrize("size", [(32, 32), (24, 40), (64, 16), (8, 8)])
def test_any_window_size_runs(size: tuple[int, int]) -> None:
    clip = tiny_clip()
    with torch.inference_mode():
        out = encode_dense(clip, torch.randn(2, 3, *size), "naclip")
    assert out.patches.shape == (2, size[0] // 8, size[1] // 8, 32)
    assert torch.allclose(out.patches.norm(dim=-1), torch.ones(()), atol=1e-5)


def test_position_embedding_native_and_cached() -> None:
    clip = tiny_clip()
    native = clip.position_embedding((4, 4))
    assert native is clip.model.visual.positional_embedding
    a = clip.position_embedding((5, 7), "offset")
    assert a.shape == (1 + 35, 128)
    assert clip.position_embedding((5, 7), "offset") is a
    assert not torch.allclose(a, clip.position_embedding((5, 7), "size"))
    assert torch.equal(a[0], native[0])  # the CLS position is never resized


def test_taps_return_unchanged_blocks() -> None:
    clip = tiny_clip()
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        out = encode_dense(clip, x, "clearclip", taps=(0, 1))
        vis = clip.model.visual
        ref = vis.ln_pre(torch.cat([vis.class_embedding.view(1, 1, -1),
                                    vis.conv1(x).flatten(2).transpose(1, 2)], 1) + vis.positional_embedding)
        b0 = vis.transformer.resblocks[0](ref)
        b1 = vis.transformer.resblocks[1](b0)
    assert torch.allclose(out.taps[0], b0, atol=1e-5) and torch.allclose(out.taps[1], b1, atol=1e-5)


def test_window_smaller_than_a_patch_is_refused() -> None:
    with pytest.raises(ValueError, match="smaller than one"):
        encode_dense(tiny_clip(), torch.randn(1, 3, 4, 40), "naclip")


def test_tiny_spec_key_depends_on_config() -> None:
    assert tiny_spec().key != ClipSpec(name="tiny-test-vit", pretrained=None, config={**TINY_CONFIG, "embed_dim": 16}).key


def test_catalog_model_loads_through_the_weights_manager(tmp_path: Path) -> None:
    """A catalog entry (tiny JSON config, local file) comes back as a ClipModel with its mean/std."""
    from engine.models.catalog import Catalog, FileSource, ModelEntry
    from engine.models.open_clip_entries import register_entries
    from engine.openvocab.clip_model import clip_from_catalog

    src = tiny_clip(6)
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_CONFIG))
    weights = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in src.model.state_dict().items()}, str(weights))
    catalog = Catalog()
    register_entries(catalog)
    catalog.register(ModelEntry(name="tiny.test", kind="photo", architecture="open_clip", config=str(config),
                                source=FileSource(weights), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)))
    clip = clip_from_catalog("tiny.test", catalog=catalog, weights_root=tmp_path / "root")
    assert _same_weights(src.model, clip.model)
    assert clip.mean.tolist() == [0.5, 0.5, 0.5] and clip.key.startswith("catalog:tiny.test|")
    from engine.openvocab.text import TextEncoder

    assert TextEncoder(clip, templates=("a {}.",)).embed_names(["cat"]).shape == (1, 32)
    weights.unlink()
    with pytest.raises(WeightsError, match="maskwright models import"):
        clip_from_catalog("tiny.test", catalog=catalog, weights_root=tmp_path / "root")
