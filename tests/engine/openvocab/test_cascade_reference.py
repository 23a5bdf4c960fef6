"""Numerical fidelity of the Cascade-CLIP head against the reference implementation.

The fixture was made by running HVision-NKU/Cascade-CLIP's own ``VPTCLIPVisionTransformer``
(deep prompts, taps, per-tap LayerNorm/projection) and ``ATMSingleHeadSeg`` (three cascaded
decoders) with mmcv/mmseg shims, on a tiny random config (width 32, 8 blocks, patch 8, native
grid 4x4, run at 48x48 so the position embedding is interpolated, 3 prompt tokens, taps 1..6,
dim 16, 4 classes). See /work/scratch/cascade/make_fixture.py (outside the repo).
"""

from __future__ import annotations

from pathlib import Path

import open_clip
import torch
from safetensors import safe_open

from engine.openvocab.cascade import CascadeCLIP, CascadeConfig, CascadeHead
from engine.openvocab.cascade_io import checkpoint_filter_fn

FIXTURE = Path(__file__).parent / "fixtures" / "cascade_reference.safetensors"


def _read() -> dict[str, torch.Tensor]:
    with safe_open(str(FIXTURE), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def _host() -> open_clip.CLIP:
    return open_clip.CLIP(
        embed_dim=16,
        vision_cfg={"image_size": 32, "layers": 8, "width": 32, "head_width": 16, "patch_size": 8},
        text_cfg={"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
        quick_gelu=True,
    ).eval()


def test_reference_checkpoint_converts_and_matches_the_reference_output() -> None:
    data = _read()
    state = {k: v for k, v in data.items() if k.startswith(("backbone.", "decode_head."))}
    head_state, visual_state = checkpoint_filter_fn(state)
    clip = _host()
    clip.visual.load_state_dict(visual_state, strict=True)
    cfg = CascadeConfig(backbone="fixture.tiny", width=32, dim=16, depth=8, stages=((1, 2, 3), (4, 5, 6)),
                        num_heads=2, num_layers=3, ffn_dim=64, num_prompt_tokens=3, double_class_embedding=True)
    head = CascadeHead(cfg)
    head.load_state_dict(head_state, strict=True)
    model = CascadeCLIP(clip.visual, head).eval()
    with torch.no_grad():
        feats = head.encode(clip.visual, data["input.images"])
        ours = model(data["input.images"], data["input.text"], out_size=(48, 48))
    ref = data["output.pred_masks"]
    assert ours.shape == ref.shape == (2, 4, 48, 48)
    assert torch.allclose(feats.global_embedding, data["output.global_embedding"], rtol=1e-4, atol=1e-6)
    rel = ((ours - ref).abs().max() / ref.abs().max()).item()
    assert rel <= 1e-4, rel


def test_the_class_embedding_layout_fix_matters() -> None:
    # our default adds class_embedding once (as CLIP); the fixture's reference added it twice
    data = _read()
    head_state, visual_state = checkpoint_filter_fn(
        {k: v for k, v in data.items() if k.startswith(("backbone.", "decode_head."))})
    clip = _host()
    clip.visual.load_state_dict(visual_state, strict=True)
    head = CascadeHead(CascadeConfig(width=32, dim=16, depth=8, stages=((1, 2, 3), (4, 5, 6)), num_heads=2,
                                     num_layers=3, ffn_dim=64, num_prompt_tokens=3))
    head.load_state_dict(head_state, strict=True)
    with torch.no_grad():
        ours = CascadeCLIP(clip.visual, head).eval()(data["input.images"], data["input.text"])
    assert not torch.allclose(ours, data["output.pred_masks"], atol=1e-3)
