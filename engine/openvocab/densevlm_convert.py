"""DenseVLM / EVA-CLIP checkpoints into open_clip, and fine-tuned image-encoder weights.

Li et al., "Unbiased Region-Language Alignment for Open-Vocabulary Dense Prediction" (DenseVLM,
ICCV 2025; https://arxiv.org/abs/2412.06244; code HVision-NKU/DenseVLM). Its released
checkpoints are whole EVA02-CLIP models saved with BAAI EVA-CLIP's key names
(``visual.blocks.N.attn.q_bias``, ``visual.blocks.N.mlp.w1``, ``visual.rope.freqs_cos``, text
keys at the top level, a ``{"state_dict": ...}`` wrapper).

**Host.** open_clip's ``EVA02-B-16`` (and ``EVA02-L-14-336``): a ``CustomTextCLIP`` whose image
tower is timm's ``Eva`` (``eva02_base_patch16_clip_224``), which has everything EVA02 needs:
2-D rotary position embedding with the same frequencies and interleaved rotation, SwiGLU with
the sub-LayerNorm (``scale_mlp``), the attention sub-LayerNorm (``scale_attn_inner``), q/v biases
without a k bias, and the CLS-token pooling through ``norm`` and a linear head. The conversion is
pure renaming (plus splitting a fused ``qkv`` when present); rotary tables are recomputed by
timm, so the stored ``freqs_cos``/``freqs_sin`` buffers are dropped.
tests/engine/openvocab/test_densevlm_convert.py checks the outputs of the reference EVA code
against the host on the same weights.

Weights fine-tuned by our own trainers (DenseVLM-style) are open_clip image-encoder state
dicts: :func:`save_visual_weights` / :func:`load_visual_weights`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.errors import WeightsError

__all__ = [
    "checkpoint_filter_fn",
    "load_eva_clip_checkpoint",
    "load_visual_weights",
    "save_visual_weights",
    "EVA_HOSTS",
]

_logger = logging.getLogger(__name__)

# BAAI EVA-CLIP model config -> open_clip model that hosts it.
EVA_HOSTS: dict[str, str] = {
    "EVA02-CLIP-B-16": "EVA02-B-16",
    "EVA02-CLIP-L-14": "EVA02-L-14",
    "EVA02-CLIP-L-14-336": "EVA02-L-14-336",
}

# Renames inside a visual block (BAAI EVAVisionTransformer -> timm Eva).
_BLOCK_RENAMES: tuple[tuple[str, str], ...] = (
    (".attn.q_bias", ".attn.q_proj.bias"),
    (".attn.v_bias", ".attn.v_proj.bias"),
    (".attn.inner_attn_ln.", ".attn.norm."),
    (".mlp.ffn_ln.", ".mlp.norm."),
    (".mlp.w1.", ".mlp.fc1_g."),
    (".mlp.w2.", ".mlp.fc1_x."),
    (".mlp.w3.", ".mlp.fc2."),
)
# Text keys of BAAI's ``CLIP`` class (top level); its ``CustomCLIP`` already uses ``text.``.
_TEXT_TOP = ("transformer.", "token_embedding.", "positional_embedding", "ln_final.", "text_projection")


def _unwrap(state: Mapping[str, Any]) -> dict[str, Any]:
    """Remove a ``state_dict``/``model`` wrapper and a DDP ``module.`` prefix (pure)."""
    for key in ("state_dict", "model", "module"):
        if key in state and isinstance(state[key], Mapping):
            state = state[key]
            break
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def _convert_eva_clip_visual(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """BAAI ``visual.*`` keys -> open_clip ``visual.trunk.*`` keys (timm ``Eva``); pure.

    Raises ``ValueError`` for parts timm's Eva cannot host with these weights (relative position
    bias tables of EVA01-style models).
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not key.startswith("visual."):
            continue
        k = key[len("visual."):]
        if k.endswith((".freqs_cos", ".freqs_sin")) or k in ("freqs_cos", "freqs_sin"):
            continue  # rotary tables: recomputed by the host for its grid
        if "relative_position" in k or k.startswith("rel_pos_bias"):
            raise ValueError(f"{key}: relative position bias is not supported by the EVA02 host")
        if k.endswith(".attn.qkv.weight"):
            q, kk, v = value.chunk(3, dim=0)
            stem = k[: -len("qkv.weight")]
            out[f"visual.trunk.{stem}q_proj.weight"] = q
            out[f"visual.trunk.{stem}k_proj.weight"] = kk
            out[f"visual.trunk.{stem}v_proj.weight"] = v
            continue
        for old, new in _BLOCK_RENAMES:
            k = k.replace(old, new)
        out["visual.trunk." + k] = value
    return out


def _convert_eva_clip_text(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """BAAI text keys (top level, or ``text.*``) -> open_clip ``CustomTextCLIP`` ``text.*``; pure.

    Also carries ``logit_scale``; the causal ``attn_mask`` buffer is rebuilt by the host.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("text."):
            if not key.endswith("attn_mask"):
                out[key] = value
        elif key.startswith(_TEXT_TOP):
            out["text." + key] = value
        elif key == "logit_scale":
            out[key] = value
    return out


def _is_baai_eva(state: Mapping[str, Any]) -> bool:
    return any(k.startswith(("visual.blocks.", "visual.patch_embed.")) for k in state)


def checkpoint_filter_fn(state: Mapping[str, Any]) -> dict[str, Any]:
    """Any EVA-CLIP checkpoint -> open_clip ``EVA02-*`` state dict.

    BAAI EVA-CLIP layout (DenseVLM's releases) is recognised by ``visual.blocks.``/
    ``visual.patch_embed.`` keys and converted; an open_clip layout (``visual.trunk.``) passes
    through unchanged. Wrappers (``state_dict``, DDP ``module.``) are removed.
    """
    state = _unwrap(state)
    if _is_baai_eva(state):
        return {**_convert_eva_clip_visual(state), **_convert_eva_clip_text(state)}
    return dict(state)


def _strict_load(module: nn.Module, state: Mapping[str, torch.Tensor], path: Path, what: str) -> None:
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if keys:
                parts.append(f"{len(keys)} {label} ({', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''})")
        raise WeightsError(f"the weights do not fit {what}: " + "; ".join(parts), path)
    module.load_state_dict(state, strict=True)


def load_eva_clip_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a DenseVLM / EVA-CLIP checkpoint (either layout) strictly into an open_clip EVA02 model.

    Parameters
    ----------
    model
        ``open_clip.create_model("EVA02-B-16")`` (or another ``EVA02-*`` host).
    path
        ``.pt`` (read with ``weights_only=True``) or ``.safetensors``.

    Returns
    -------
    nn.Module
        ``model``, in eval mode.
    """
    from engine.models.weights import read_state_dict

    path = Path(path)
    raw = read_state_dict(path)  # safetensors or weights_only torch.load; unwraps {"state_dict": ...}
    try:
        state = checkpoint_filter_fn(raw)
    except ValueError as err:
        raise WeightsError(str(err), path) from err
    _strict_load(model, state, path, type(model).__name__)
    return model.eval()


def save_visual_weights(model: nn.Module, path: str | Path, *, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``model.visual``'s state dict as safetensors with ``visual.``-prefixed keys (atomic).

    ``metadata`` (JSON-serialisable: base model, training run, metrics) goes into the
    safetensors header under ``"maskwright"``.
    """
    from safetensors.torch import save_file

    from engine.fsutil import atomic_path

    path = Path(path)
    tensors = {"visual." + k: v.detach().contiguous().cpu() for k, v in model.visual.state_dict().items()}
    meta = {"format": "maskwright.open_clip_visual", "maskwright": json.dumps(dict(metadata or {}), sort_keys=True)}
    with atomic_path(path, error=WeightsError) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def load_visual_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Replace ``model.visual``'s weights with an open_clip-layout image-encoder file, strictly.

    The file holds ``visual.*`` keys (as :func:`save_visual_weights` writes) or bare keys of the
    visual module. A position embedding saved for another input size is resized to the model's
    grid (open_clip's ``resize_pos_embed``, logged). Anything else that does not fit raises
    :class:`~engine.errors.WeightsError` listing the missing, unexpected or mis-shaped keys.
    """
    from engine.models.weights import read_state_dict

    path = Path(path)
    state = read_state_dict(path)
    if any(k.startswith("visual.") for k in state):
        others = [k for k in state if not k.startswith("visual.")]
        if others:
            raise WeightsError(f"image-encoder weights expected, but the file also holds {others[:3]}", path)
        state = {k[len("visual."):]: v for k, v in state.items()}
    visual = model.visual
    own = visual.state_dict()
    pos = "positional_embedding"
    if pos in state and pos in own and state[pos].shape != own[pos].shape and state[pos].dim() == 2:
        from open_clip.model import resize_pos_embed

        wrapped = {"visual.positional_embedding": state[pos]}
        resize_pos_embed(wrapped, model)
        _logger.info("%s: position embedding resized from %s to %s", path, tuple(state[pos].shape),
                     tuple(wrapped["visual.positional_embedding"].shape))
        state[pos] = wrapped["visual.positional_embedding"]
    _strict_load(visual, state, path, "this image encoder")
    return model
