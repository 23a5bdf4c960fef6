"""Cascade-CLIP checkpoints: our safetensors format, the reference's mmseg checkpoints, and the
catalog loader.

Our format: safetensors of :class:`~engine.openvocab.cascade.CascadeHead`'s parameters with
``format``/``version``, the :class:`~engine.openvocab.cascade.CascadeConfig` (which names the
backbone) and free ``extra`` JSON in the metadata. The reference's checkpoints (HVision-NKU
Cascade-CLIP, ``backbone.*`` + ``decode_head.*`` keys) are converted by the pure functions
chosen in :func:`checkpoint_filter_fn`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from engine.errors import WeightsError
from engine.openvocab.cascade import CascadeCLIP, CascadeConfig, CascadeHead

if TYPE_CHECKING:
    from engine.models.catalog import LoadContext, ModelEntry

__all__ = [
    "save_head",
    "load_head",
    "checkpoint_filter_fn",
    "CascadeBundle",
    "load_cascade",
    "FORMAT",
    "VERSION",
]

_logger = logging.getLogger(__name__)

FORMAT = "maskwright.cascade_clip"
VERSION = 1


# -- the reference's checkpoints (mmseg CascadeCLIP: backbone.* + decode_head.*) ------------------
_REF_VISUAL = ("conv1.", "class_embedding", "positional_embedding", "ln_pre.", "transformer.", "ln_post.", "proj")


def _convert_reference_head(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Reference ``backbone.*``/``decode_head.*`` keys -> :class:`CascadeHead` keys (pure).

    The decoder layers' unused ``self_attn`` and ``norm1`` (inherited from
    ``nn.TransformerDecoderLayer``, never called) are dropped.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("backbone."):
            k = key[len("backbone."):]
            if k.startswith("prompt_") or k.startswith("deep_prompt_"):
                out[k] = value
            elif k.startswith("ln_layers."):
                out["tap_norms." + k[len("ln_layers."):]] = value
            elif k == "proj_layers":
                out["tap_projs"] = value
        elif key.startswith("decode_head."):
            k = key[len("decode_head."):]
            if k.startswith("weights_s"):
                out[f"mix.{int(k[len('weights_s'):]) - 1}"] = value
            elif k.startswith("q_projs."):
                out[k] = value
            elif k.startswith("cascade_decoders.") and ".self_attn." not in k and ".norm1." not in k:
                out["decoders." + k[len("cascade_decoders."):].replace(".multihead_attn.", ".cross_attn.")] = value
    return out


def _convert_reference_visual(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Reference ``backbone.*`` CLIP keys -> open_clip ``VisionTransformer`` keys (pure).

    The layouts agree (both are OpenAI CLIP's); only the prefix goes. The reference stores the
    position embedding already resized to its training grid.
    """
    return {k[len("backbone."):]: v for k, v in state.items()
            if k.startswith("backbone.") and k[len("backbone."):].startswith(_REF_VISUAL)
            and not k.startswith("backbone.proj_layers")}


def checkpoint_filter_fn(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Split a foreign Cascade-CLIP state dict into ``(head_state, visual_state)``.

    Recognises the reference (mmseg) layout by its ``decode_head.cascade_decoders.`` keys; a
    state dict already in our layout is returned as ``(state, {})``.
    """
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if any(k.startswith("decode_head.cascade_decoders.") for k in state):
        return _convert_reference_head(state), _convert_reference_visual(state)
    return dict(state), {}


def save_head(head: CascadeHead, path: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
    """Write ``head`` as safetensors with its config in the metadata (atomic).

    ``extra`` (JSON-serialisable, e.g. the classes it was trained on, metrics) is stored too.
    """
    from safetensors.torch import save_file

    from engine.fsutil import atomic_path

    path = Path(path)
    meta = {"format": FORMAT, "version": str(VERSION), "config": head.cfg.to_json(),
            "extra": json.dumps(extra or {}, sort_keys=True)}
    tensors = {k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()}
    with atomic_path(path, error=WeightsError) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def load_head(path: str | Path) -> tuple[CascadeHead, dict[str, Any]]:
    """Read a head written by :func:`save_head` (strict); returns ``(head, extra)``.

    Raises
    ------
    WeightsError
        Not a Cascade-CLIP head file, a newer format version, or tensors that do not fit.
    """
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError as err:
        raise WeightsError("Cascade-CLIP head file not found", path) from err
    except Exception as err:  # safetensors raises its own error types
        raise WeightsError(f"not a safetensors file ({err})", path) from err
    if meta.get("format") != FORMAT:
        raise WeightsError(f"not a Cascade-CLIP head (format {meta.get('format')!r})", path)
    if int(meta.get("version", "0")) > VERSION:
        raise WeightsError(f"head format version {meta['version']} is newer than this Maskwright ({VERSION})", path)
    try:
        cfg = CascadeConfig.from_json(meta["config"])
        head = CascadeHead(cfg)
        head.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise WeightsError(f"damaged Cascade-CLIP head: {err}", path) from err
    return head.eval(), json.loads(meta.get("extra", "{}"))


@dataclass
class CascadeBundle:
    """What the catalog's ``cascade_clip`` loader returns.

    Attributes
    ----------
    clip
        The full open_clip model of the backbone (its text tower embeds the class names).
    model
        ``CascadeCLIP(clip.visual, head)``, in eval mode.
    extra
        The metadata saved with the head (classes trained on, metrics...).
    """

    clip: nn.Module
    model: CascadeCLIP
    extra: dict[str, Any]


def load_cascade(entry: ModelEntry, weights_path: Path, ctx: LoadContext) -> CascadeBundle:
    """Catalog loader for ``architecture="cascade_clip"``: the head file plus its backbone.

    The backbone is ``entry.base``, else the catalog name stored in the head's config.
    """
    head, extra = load_head(weights_path)
    base = entry.base or head.cfg.backbone
    clip = ctx.catalog.load(base, ctx.weights, device=ctx.device)
    model = CascadeCLIP(clip.visual, head.to(ctx.device)).eval()
    return CascadeBundle(clip=clip, model=model, extra=extra)
