"""Cascade-CLIP head on a tiny random open_clip ViT (CPU, no downloads)."""

from __future__ import annotations

import math
from pathlib import Path

import open_clip
import pytest
import torch
import torch.nn.functional as F

from engine.errors import ModelError, WeightsError
from engine.openvocab.cascade import (
    CascadeCLIP,
    CascadeConfig,
    CascadeHead,
    combine_probabilities,
    slide_probabilities,
)
from engine.openvocab.cascade_io import load_head, save_head

TINY = dict(
    embed_dim=32,
    vision_cfg={"image_size": 32, "layers": 4, "width": 64, "head_width": 32, "patch_size": 8},
    text_cfg={"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
)
CFG = CascadeConfig(backbone="tiny.random", width=64, dim=32, depth=4, stages=((0, 1), (2,)), num_heads=4,
                    num_layers=2, ffn_dim=64, num_prompt_tokens=3)


@pytest.fixture(scope="module")
def clip() -> open_clip.CLIP:
    torch.manual_seed(0)
    return open_clip.CLIP(**TINY).eval()


def _text(clip: open_clip.CLIP, names: list[str]) -> torch.Tensor:
    tokenizer = open_clip.get_tokenizer("ViT-B-16")
    with torch.no_grad():
        return F.normalize(clip.encode_text(tokenizer([f"a photo of a {n}." for n in names])), dim=-1)


def _model(clip: open_clip.CLIP, cfg: CascadeConfig = CFG, seed: int = 1) -> CascadeCLIP:
    torch.manual_seed(seed)
    head = CascadeHead(cfg)
    head.init_from_clip(clip.visual)
    return CascadeCLIP(clip.visual, head).eval()


def test_shapes_on_a_non_native_grid(clip: open_clip.CLIP) -> None:
    model = _model(clip)
    images = torch.randn(2, 3, 48, 40)
    text = _text(clip, ["cat", "dog", "sky"])
    feats = model.head.encode(model.visual, images)
    assert feats.grid == (6, 5)
    assert len(feats.taps) == 3 and all(t.shape == (2, 30, 32) for t in feats.taps)
    assert torch.allclose(feats.final.norm(dim=-1), torch.ones(2, 30), atol=1e-5)
    assert feats.global_embedding.shape == (2, 32)
    assert model.head.decode(feats, text).shape == (2, 3, 6, 5)
    with torch.no_grad():
        logits = model(images, text)
        assert logits.shape == (2, 3, 48, 40) and logits.dtype == torch.float32
        assert model(images, text, out_size=(7, 9)).shape == (2, 3, 7, 9)


def test_mixing_weights_start_as_the_papers_gaussian() -> None:
    head = CascadeHead(CascadeConfig(num_prompt_tokens=0, width=64, dim=32, num_heads=4, ffn_dim=64))
    expected = torch.tensor([math.exp(-2.0), math.exp(-0.5), 1.0])
    assert torch.allclose(head.mix[0].detach(), expected) and torch.allclose(head.mix[1].detach(), expected)
    assert len(head.decoders) == 3 and len(head.tap_norms) == 6


def test_without_prompts_the_final_stage_is_open_clips_own_output(clip: open_clip.CLIP) -> None:
    cfg = CascadeConfig(width=64, dim=32, depth=4, stages=((3,),), num_heads=4, num_layers=1, ffn_dim=64,
                        num_prompt_tokens=0)
    model = _model(clip, cfg)
    images = torch.randn(2, 3, 32, 32)
    clip.visual.output_tokens = True
    try:
        with torch.no_grad():
            pooled, tokens = clip.visual(images)
            feats = model.head.encode(model.visual, images)
    finally:
        clip.visual.output_tokens = False
    assert torch.allclose(feats.global_embedding, F.normalize(pooled, dim=-1), atol=1e-5)
    assert torch.allclose(feats.final, F.normalize(tokens @ clip.visual.proj, dim=-1), atol=1e-5)
    # a tap of the last block initialised from ln_post/proj is that same output
    assert torch.allclose(feats.taps[0], feats.final, atol=1e-5)


def test_class_names_never_seen_in_training_still_get_a_map(clip: open_clip.CLIP) -> None:
    model = _model(clip).train()
    images = torch.randn(2, 3, 32, 32)
    seen = _text(clip, ["cat", "dog"])
    target = torch.zeros(2, 2, 32, 32)
    target[:, 0, :, :16] = 1
    target[:, 1, :, 16:] = 1
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    for _ in range(3):
        loss = F.binary_cross_entropy_with_logits(model(images, seen), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    unseen = _text(clip, ["zebra crossing", "cat", "traffic cone", "lighthouse"])
    with torch.no_grad():
        logits = model(images, unseen)
    assert logits.shape == (2, 4, 32, 32) and torch.isfinite(logits).all()
    assert not torch.allclose(logits[:, 0], logits[:, 2])  # each name gets its own map


def test_gradient_reaches_only_the_head(clip: open_clip.CLIP) -> None:
    model = _model(clip).train()
    model(torch.randn(1, 3, 32, 32), _text(clip, ["cat", "dog"])).sum().backward()
    assert all(p.grad is None and not p.requires_grad for p in model.visual.parameters())
    no_grad = {n for n, p in model.head.named_parameters() if p.grad is None}
    # the mask is the last layer's attention logits: that layer's values, output projection and
    # FFN cannot influence it (as in the reference), every other head parameter gets a gradient
    last = CFG.num_layers - 1
    unused = {f"decoders.{d}.layers.{last}.{m}.{p}" for d in range(3) for p in ("weight", "bias")
              for m in ("cross_attn.v", "cross_attn.proj", "norm2", "linear1", "linear2", "norm3")}
    assert no_grad == unused
    assert all(torch.isfinite(p.grad).all() for p in model.head.parameters() if p.grad is not None)
    assert model.head.prompt_embeddings.grad.abs().sum() > 0
    assert model.head.deep_prompt_embeddings.grad.abs().sum() > 0
    model.head.zero_grad(set_to_none=True)


def test_save_load_round_trip(tmp_path: Path, clip: open_clip.CLIP) -> None:
    model = _model(clip, seed=3)
    path = save_head(model.head, tmp_path / "head.safetensors", extra={"classes": ["cat", "dog"]})
    head, extra = load_head(path)
    assert head.cfg == CFG and extra == {"classes": ["cat", "dog"]}
    images = torch.randn(1, 3, 40, 32)
    text = _text(clip, ["cat", "sky"])
    with torch.no_grad():
        assert torch.equal(model(images, text), CascadeCLIP(clip.visual, head).eval()(images, text))


def test_load_refuses_foreign_or_damaged_files(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(1)}, str(other))
    with pytest.raises(WeightsError, match="not a Cascade-CLIP head") as info:
        load_head(other)
    assert info.value.path == other
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not safetensors")
    with pytest.raises(WeightsError, match="not a safetensors file"):
        load_head(junk)
    head = CascadeHead(CFG)
    good = save_head(head, tmp_path / "h.safetensors")
    from safetensors import safe_open

    with safe_open(str(good), framework="pt") as f:
        meta = f.metadata()
        state = {k: f.get_tensor(k) for k in f.keys()}
    del state["tap_projs"]
    save_file(state, str(tmp_path / "cut.safetensors"), metadata=meta)
    with pytest.raises(WeightsError, match="damaged"):
        load_head(tmp_path / "cut.safetensors")
    with pytest.raises(WeightsError, match="not found"):
        load_head(tmp_path / "missing.safetensors")


def test_backbone_mismatch_is_refused(clip: open_clip.CLIP) -> None:
    head = CascadeHead(CascadeConfig(width=64, dim=32, depth=12, num_heads=4, ffn_dim=64))
    with pytest.raises(ModelError, match="depth 12"):
        head.encode(clip.visual, torch.randn(1, 3, 32, 32))


def test_combine_probabilities() -> None:
    torch.manual_seed(0)
    probs = torch.randn(2, 4, 5, 6).sigmoid()
    tf = torch.randn(2, 4, 5, 6).softmax(dim=1)
    mixed = combine_probabilities(probs, tf, weight=0.3)
    assert torch.allclose(mixed.sum(dim=1), torch.ones(2, 5, 6), atol=1e-6)
    assert torch.equal(combine_probabilities(probs, tf, weight=1.0).argmax(1), probs.argmax(1))
    assert torch.allclose(combine_probabilities(probs, tf, weight=0.0), tf)
    with pytest.raises(ValueError, match="weight"):
        combine_probabilities(probs, tf, weight=1.5)
    with pytest.raises(ValueError, match="shapes"):
        combine_probabilities(probs, tf[:, :3])


def _reference_slide(model: CascadeCLIP, image: torch.Tensor, text: torch.Tensor, window: int,
                     stride: int) -> torch.Tensor:
    """mmseg's slide_inference, one window at a time (as Cascade-CLIP's encode_decode runs it)."""
    _, h_img, w_img = image.shape
    h_crop, w_crop = min(window, h_img), min(window, w_img)
    h_grids = max(h_img - h_crop + stride - 1, 0) // stride + 1
    w_grids = max(w_img - w_crop + stride - 1, 0) // stride + 1
    preds = torch.zeros(text.shape[0], h_img, w_img)
    count = torch.zeros(1, h_img, w_img)
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y1, x1 = h_idx * stride, w_idx * stride
            y2, x2 = min(y1 + h_crop, h_img), min(x1 + w_crop, w_img)
            y1, x1 = max(y2 - h_crop, 0), max(x2 - w_crop, 0)
            crop = image[None, :, y1:y2, x1:x2]
            pred = torch.sigmoid(model(crop, text))[0]
            preds += F.pad(pred, (x1, w_img - x2, y1, h_img - y2))
            count[:, y1:y2, x1:x2] += 1
    return preds / count


def test_sliding_windows_match_the_reference_loop(clip: open_clip.CLIP) -> None:
    model = _model(clip)
    image = torch.randn(3, 56, 88)
    text = _text(clip, ["cat", "dog", "sky"])
    with torch.no_grad():
        ours = slide_probabilities(model, image, text, window=32, stride=24, batch=3)
        ref = _reference_slide(model, image, text, 32, 24)
        small = slide_probabilities(model, image[:, :24, :16], text, window=32, stride=24)
    assert ours.shape == (3, 56, 88) and torch.allclose(ours, ref, atol=1e-6)
    assert ((ours >= 0) & (ours <= 1)).all()
    assert small.shape == (3, 24, 16)


def test_catalog_loads_a_head_with_its_backbone(tmp_path: Path, clip: open_clip.CLIP) -> None:
    import json

    from safetensors.torch import save_file

    from engine.models.catalog import FileSource, ModelEntry, default_catalog
    from engine.models.weights import WeightsManager

    cfg_file = tmp_path / "tiny.json"
    cfg_file.write_text(json.dumps(TINY))
    backbone = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(backbone))
    head_file = save_head(_model(clip, seed=4).head, tmp_path / "head.safetensors", extra={"classes": ["cat"]})
    catalog = default_catalog()
    catalog.register(ModelEntry(name="tiny.random", kind="photo", architecture="open_clip", config=str(cfg_file),
                                source=FileSource(backbone)))
    catalog.register(ModelEntry(name="project.cascade1", kind="photo", architecture="cascade_clip",
                                source=FileSource(head_file)))
    bundle = catalog.load("project.cascade1", WeightsManager(catalog, tmp_path / "cache", offline=True))
    assert bundle.extra == {"classes": ["cat"]}
    images, text = torch.randn(1, 3, 32, 32), _text(clip, ["cat", "kite"])
    with torch.no_grad():
        assert torch.allclose(bundle.model(images, text), _model(clip, seed=4)(images, text), atol=1e-6)
