"""DenseVLM / BAAI EVA-CLIP checkpoints into open_clip's EVA02 host, and fine-tuned visual weights.

fixtures/eva_reference.safetensors was made by running DenseVLM's own
``src/open_clip/eva_clip/eva_vit_model.py`` (BAAI EVA-CLIP code) on a tiny EVA02-style config
(rope with pt_hw_seq_len 5 interpolated to a 4x4 grid, SwiGLU, sub-LN, q/v biases, 2 blocks of
width 32) with random weights; it holds their visual state dict (their key names), an input and
their outputs. The script is /work/scratch/densevlm/make_fixture.py (outside the repo).
"""

from __future__ import annotations

from pathlib import Path

import open_clip
import pytest
import timm
import torch
from safetensors import safe_open

from engine.errors import WeightsError
from engine.openvocab.densevlm_convert import (
    _convert_eva_clip_text,
    _convert_eva_clip_visual,
    checkpoint_filter_fn,
    load_eva_clip_checkpoint,
    load_visual_weights,
    save_visual_weights,
)

FIXTURE = Path(__file__).parent / "fixtures" / "eva_reference.safetensors"
TINY_TEXT = {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}


def _fixture() -> dict[str, torch.Tensor]:
    with safe_open(str(FIXTURE), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def _tiny_trunk() -> torch.nn.Module:
    """timm's EVA02 CLIP tower (what open_clip's EVA02-B-16 wraps) at the fixture's tiny size."""
    return timm.create_model("eva02_base_patch16_clip_224", pretrained=False, img_size=32, patch_size=8,
                             embed_dim=32, depth=2, num_heads=2, ref_feat_shape=(5, 5), num_classes=16,
                             global_pool="token").eval()


def test_converted_weights_reproduce_the_reference_eva_outputs() -> None:
    data = _fixture()
    baai = {k: v for k, v in data.items() if k.startswith("visual.")}
    assert "visual.blocks.0.attn.q_bias" in baai and "visual.blocks.0.mlp.w1.weight" in baai
    converted = _convert_eva_clip_visual(baai)
    trunk = _tiny_trunk()
    trunk.load_state_dict({k[len("visual.trunk."):]: v for k, v in converted.items()}, strict=True)
    with torch.no_grad():
        pooled = trunk(data["input.images"])
        tokens = trunk.forward_features(data["input.images"])
    assert torch.allclose(pooled, data["output.pooled"], rtol=1e-4, atol=1e-5)
    assert torch.allclose(tokens, data["output.tokens"], rtol=1e-4, atol=1e-5)


def _baai_eva02_b16_keys() -> dict[str, tuple[int, ...]]:
    """Every key and shape of a BAAI EVA02-CLIP-B-16 checkpoint (``CLIP`` class), from their code."""
    keys: dict[str, tuple[int, ...]] = {
        "visual.patch_embed.proj.weight": (768, 3, 16, 16), "visual.patch_embed.proj.bias": (768,),
        "visual.cls_token": (1, 1, 768), "visual.pos_embed": (1, 197, 768),
        "visual.rope.freqs_cos": (196, 64), "visual.rope.freqs_sin": (196, 64),
        "visual.norm.weight": (768,), "visual.norm.bias": (768,),
        "visual.head.weight": (512, 768), "visual.head.bias": (512,),
        "token_embedding.weight": (49408, 512), "positional_embedding": (77, 512),
        "ln_final.weight": (512,), "ln_final.bias": (512,), "text_projection": (512, 512), "logit_scale": (),
    }
    for i in range(12):
        b = f"visual.blocks.{i}."
        for name in ("norm1", "norm2", "attn.inner_attn_ln"):
            keys[b + name + ".weight"] = keys[b + name + ".bias"] = (768,)
        for name in ("q_proj", "k_proj", "v_proj", "proj"):
            keys[b + f"attn.{name}.weight"] = (768, 768)
        keys[b + "attn.proj.bias"] = keys[b + "attn.q_bias"] = keys[b + "attn.v_bias"] = (768,)
        keys[b + "attn.rope.freqs_cos"] = keys[b + "attn.rope.freqs_sin"] = (196, 64)
        keys[b + "mlp.w1.weight"] = keys[b + "mlp.w2.weight"] = (2048, 768)
        keys[b + "mlp.w1.bias"] = keys[b + "mlp.w2.bias"] = (2048,)
        keys[b + "mlp.ffn_ln.weight"] = keys[b + "mlp.ffn_ln.bias"] = (2048,)
        keys[b + "mlp.w3.weight"], keys[b + "mlp.w3.bias"] = (768, 2048), (768,)
        t = f"transformer.resblocks.{i}."
        for name in ("ln_1", "ln_2"):
            keys[t + name + ".weight"] = keys[t + name + ".bias"] = (512,)
        keys[t + "attn.in_proj_weight"], keys[t + "attn.in_proj_bias"] = (1536, 512), (1536,)
        keys[t + "attn.out_proj.weight"], keys[t + "attn.out_proj.bias"] = (512, 512), (512,)
        keys[t + "mlp.c_fc.weight"], keys[t + "mlp.c_fc.bias"] = (2048, 512), (2048,)
        keys[t + "mlp.c_proj.weight"], keys[t + "mlp.c_proj.bias"] = (512, 2048), (512,)
    return keys


def test_full_size_densevlm_checkpoint_loads_strictly_into_open_clip_eva02_b16() -> None:
    with torch.device("meta"):
        host = open_clip.create_model("EVA02-B-16", pretrained=None, device="meta")
        released = {"epoch": 6, "name": "densevlm_coco_6_save6_512_eva_vib16_12layers",
                    "state_dict": {k: torch.empty(s) for k, s in _baai_eva02_b16_keys().items()}}
    state = checkpoint_filter_fn(released)
    assert not any("freqs" in k for k in state)
    assert set(state) == set(host.state_dict())
    host.load_state_dict(state, strict=True, assign=True)  # checks every key and shape


def test_open_clip_layout_passes_through_and_ddp_prefix_goes() -> None:
    state = {"module.visual.trunk.cls_token": torch.zeros(1), "module.logit_scale": torch.zeros(())}
    assert set(checkpoint_filter_fn(state)) == {"visual.trunk.cls_token", "logit_scale"}


def test_fused_qkv_is_split_and_rel_pos_bias_refused() -> None:
    qkv = torch.arange(12.0).reshape(6, 2)
    out = _convert_eva_clip_visual({"visual.blocks.0.attn.qkv.weight": qkv})
    assert torch.equal(out["visual.trunk.blocks.0.attn.q_proj.weight"], qkv[:2])
    assert torch.equal(out["visual.trunk.blocks.0.attn.v_proj.weight"], qkv[4:])
    with pytest.raises(ValueError, match="relative position bias"):
        _convert_eva_clip_visual({"visual.blocks.0.attn.relative_position_bias_table": qkv})
    text = _convert_eva_clip_text({"text.attn_mask": qkv, "text.ln_final.weight": qkv, "ln_final.bias": qkv})
    assert set(text) == {"text.ln_final.weight", "text.ln_final.bias"}


def _tiny_host() -> torch.nn.Module:
    with torch.device("meta"):
        host = open_clip.CustomTextCLIP(
            embed_dim=16,
            vision_cfg={"timm_model_name": "eva02_base_patch16_clip_224", "timm_pool": "token", "timm_proj": None},
            text_cfg=TINY_TEXT,
        )
    host.visual.trunk = _tiny_trunk()
    host.text = open_clip.model._build_text_tower(16, open_clip.model.CLIPTextCfg(**TINY_TEXT))
    host.logit_scale = torch.nn.Parameter(torch.zeros(()))
    return host.eval()


def test_a_released_style_file_loads_into_the_host(tmp_path: Path) -> None:
    data = _fixture()
    torch.manual_seed(0)
    text = open_clip.model._build_text_tower(16, open_clip.model.CLIPTextCfg(**TINY_TEXT)).eval()
    baai = {k: v for k, v in data.items() if k.startswith("visual.")}
    baai.update({k: v for k, v in text.state_dict().items() if k != "attn_mask"})  # BAAI CLIP: top-level text
    baai["logit_scale"] = torch.tensor(4.6)
    path = tmp_path / "densevlm.pt"
    torch.save({"epoch": 6, "name": "run", "state_dict": baai}, path)
    host = load_eva_clip_checkpoint(_tiny_host(), path)
    tokens = open_clip.get_tokenizer("ViT-B-16")(["a photo of a cat."])
    with torch.no_grad():
        assert torch.allclose(host.encode_image(data["input.images"]), data["output.pooled"], rtol=1e-4, atol=1e-5)
        assert torch.equal(host.encode_text(tokens), text(tokens))
    broken = dict(baai)
    del broken["visual.head.weight"]
    torch.save({"state_dict": broken}, tmp_path / "broken.pt")
    with pytest.raises(WeightsError, match="1 missing .*visual.trunk.head.weight") as info:
        load_eva_clip_checkpoint(_tiny_host(), tmp_path / "broken.pt")
    assert info.value.path == tmp_path / "broken.pt"
    with pytest.raises(WeightsError, match="not found"):
        load_eva_clip_checkpoint(_tiny_host(), tmp_path / "missing.pt")


TINY_CLIP = dict(embed_dim=32, vision_cfg={"image_size": 32, "layers": 2, "width": 64, "head_width": 32,
                                           "patch_size": 8}, text_cfg=TINY_TEXT)


def test_fine_tuned_visual_weights_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    tuned = open_clip.CLIP(**TINY_CLIP).eval()
    path = save_visual_weights(tuned, tmp_path / "visual.safetensors", metadata={"base": "tiny.random"})
    torch.manual_seed(1)
    base = open_clip.CLIP(**TINY_CLIP).eval()
    text_before = {k: v.clone() for k, v in base.state_dict().items() if not k.startswith("visual.")}
    load_visual_weights(base, path)
    for k, v in tuned.visual.state_dict().items():
        assert torch.equal(base.visual.state_dict()[k], v), k
    for k, v in text_before.items():
        assert torch.equal(base.state_dict()[k], v), k  # the text tower is untouched


def test_visual_weights_at_another_input_size_are_resized(tmp_path: Path) -> None:
    big = dict(TINY_CLIP, vision_cfg=dict(TINY_CLIP["vision_cfg"], image_size=48))
    tuned = open_clip.CLIP(**big).eval()
    path = save_visual_weights(tuned, tmp_path / "v48.safetensors")
    base = open_clip.CLIP(**TINY_CLIP).eval()
    load_visual_weights(base, path)
    assert base.visual.positional_embedding.shape == (17, 64)
    assert torch.equal(base.visual.conv1.weight, tuned.visual.conv1.weight)


def test_visual_weights_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    base = open_clip.CLIP(**TINY_CLIP).eval()
    wide = open_clip.CLIP(**dict(TINY_CLIP, vision_cfg=dict(TINY_CLIP["vision_cfg"], layers=3))).eval()
    path = save_visual_weights(wide, tmp_path / "deeper.safetensors")
    with pytest.raises(WeightsError, match="unexpected .*transformer.resblocks.2"):
        load_visual_weights(base, path)
    mixed = tmp_path / "mixed.safetensors"
    save_file({"visual.proj": torch.zeros(64, 32), "text_projection": torch.zeros(32, 32)}, str(mixed))
    with pytest.raises(WeightsError, match="also holds"):
        load_visual_weights(base, mixed)
