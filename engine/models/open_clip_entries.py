"""open_clip models in the catalog: the built-in entries and the two loaders.

Loaders:

- ``open_clip``: a whole open_clip CLIP model; ``entry.config`` is an open_clip model name
  (``ViT-B-16-quickgelu``) or the path of a JSON file with an open_clip model config (how tests
  register tiny random models without touching open_clip's global config registry).
- ``open_clip_visual``: image-encoder weights fine-tuned by our trainers (DenseVLM-style),
  stored in open_clip's ``visual.*`` layout, on top of ``entry.base``'s full model.
- ``cascade_clip``: a Cascade-CLIP head file on top of its backbone (``entry.base`` or the
  backbone named in the head), see :func:`engine.openvocab.cascade_io.load_cascade`.
- ``eva_clip``: a BAAI EVA-CLIP-layout checkpoint (DenseVLM's releases) converted on load into
  open_clip's ``EVA02-*`` model named by ``entry.config``.

The built-in weights come from the Hugging Face hub repositories open_clip itself resolves its
pretrained tags to, as safetensors (never unpickled).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.errors import ModelError, WeightsError
from engine.models.catalog import Catalog, HubSource, LoadContext, ModelEntry

__all__ = [
    "register_entries",
    "build_open_clip",
    "load_open_clip",
    "load_open_clip_visual",
    "load_eva_clip",
    "BUILTIN_ENTRIES",
]

_logger = logging.getLogger(__name__)

# Approximate sizes of the fp32 safetensors files (parameter count x 4 bytes).
_VIT_B_16_BYTES = 598_600_000
_VIT_L_14_BYTES = 1_710_600_000

BUILTIN_ENTRIES: tuple[ModelEntry, ...] = (
    ModelEntry(
        name="ViT-B-16-quickgelu.openai",
        kind="photo",
        architecture="open_clip",
        config="ViT-B-16-quickgelu",
        source=HubSource("timm/vit_base_patch16_clip_224.openai", open_clip_model="ViT-B-16-quickgelu",
                         open_clip_tag="openai"),
        licence="MIT",
        size_bytes=_VIT_B_16_BYTES,
        description="OpenAI CLIP ViT-B/16 (default photo model)",
    ),
    ModelEntry(
        name="ViT-B-16.laion2b_s34b_b88k",
        kind="photo",
        architecture="open_clip",
        config="ViT-B-16",
        source=HubSource("laion/CLIP-ViT-B-16-laion2B-s34B-b88K", open_clip_model="ViT-B-16",
                         open_clip_tag="laion2b_s34b_b88k"),
        licence="MIT",
        size_bytes=_VIT_B_16_BYTES,
        description="OpenCLIP ViT-B/16 trained on LAION-2B",
    ),
    ModelEntry(
        name="ViT-L-14-quickgelu.openai",
        kind="photo",
        architecture="open_clip",
        config="ViT-L-14-quickgelu",
        source=HubSource("timm/vit_large_patch14_clip_224.openai", open_clip_model="ViT-L-14-quickgelu",
                         open_clip_tag="openai"),
        licence="MIT",
        size_bytes=_VIT_L_14_BYTES,
        description="OpenAI CLIP ViT-L/14 (slower; weaker with training-free dense tricks)",
    ),
    ModelEntry(
        name="EVA02-B-16.densevlm_coco",
        kind="photo",
        architecture="eva_clip",
        config="EVA02-B-16",
        # file name as DenseVLM's README lists it (not checked against the hub from here)
        source=HubSource("lyhisme/DenseVLM", filename="densevlm_coco_6_save6_512_eva_vib16_12layers.pt",
                         open_clip_model="EVA02-B-16", open_clip_tag="densevlm_coco"),
        licence="unknown",
        size_bytes=None,
        description="DenseVLM region-aligned EVA02-CLIP-B/16 (no licence stated; base EVA02-CLIP is MIT)",
    ),
)


def build_open_clip(config: str | Mapping[str, Any], *, seed: int | None = None) -> Any:
    """A randomly initialised open_clip CLIP model, on CPU, in eval mode (the one builder).

    Parameters
    ----------
    config
        An open_clip model name, the path of a ``.json`` file holding an open_clip model config,
        or that config itself (a mapping: ``embed_dim``, ``vision_cfg``, ``text_cfg``, optional
        ``quick_gelu``), either bare or under a ``"model_cfg"`` key as in open_clip's
        ``open_clip_config.json``. Keep ``text_cfg.vocab_size`` at 49408 for the stock tokenizer.
    seed
        When given, the weights are drawn after ``torch.manual_seed(seed)`` on a private RNG
        state (the caller's RNG is untouched), so the same config and seed give the same weights.

    Raises
    ------
    WeightsError
        An unreadable JSON file or a mapping that is not an open_clip model config.
    ModelError
        An unknown open_clip model name.
    """
    import open_clip
    import torch

    source: Path | None = None
    if isinstance(config, str) and config.endswith(".json"):
        source = Path(config)
        try:
            config = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise WeightsError(f"cannot read the open_clip model config: {err}", source) from err
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        if isinstance(config, str):
            from open_clip.factory import get_model_config

            if get_model_config(config) is None:
                raise ModelError(f"unknown open_clip model {config!r}")
            model = open_clip.create_model(config, pretrained=None, device="cpu")
        else:
            cfg = json.loads(json.dumps(dict(config)))  # deep copy, plain types
            cfg = cfg.get("model_cfg", cfg)
            custom = cfg.pop("custom_text", False) or "hf_model_name" in cfg.get("text_cfg", {})
            try:
                model = (open_clip.CustomTextCLIP if custom else open_clip.CLIP)(**cfg)
            except TypeError as err:
                raise WeightsError(f"not an open_clip model config: {err}", source) from err
    return model.eval()


def load_open_clip(entry: ModelEntry, weights_path: Path, ctx: LoadContext) -> Any:
    """Loader for ``architecture="open_clip"``: build ``entry.config`` and load the file strictly.

    Loading goes through ``open_clip.load_checkpoint(strict=True, weights_only=True)``, the
    exact path open_clip takes for its own pretrained tags (safetensors, or a ``weights_only``
    torch file; its key adaptations for older checkpoints included).
    """
    import open_clip

    model = build_open_clip(entry.config)
    try:
        open_clip.load_checkpoint(model, str(weights_path), strict=True, weights_only=True)
    except FileNotFoundError as err:
        raise WeightsError("weights file not found", weights_path) from err
    except Exception as err:  # RuntimeError (key/shape mismatch), safetensors and unpickling errors
        raise WeightsError(f"the weights do not fit {entry.config}: {err}", weights_path) from err
    return model.to(ctx.device).eval()


def load_open_clip_visual(entry: ModelEntry, weights_path: Path, ctx: LoadContext) -> Any:
    """Loader for ``architecture="open_clip_visual"``: ``entry.base``'s model with its image
    encoder replaced by the fine-tuned weights in ``weights_path`` (strict)."""
    from engine.openvocab.densevlm_convert import load_visual_weights

    if not entry.base:
        raise WeightsError(f"{entry.name} holds image-encoder weights but names no base model", weights_path)
    model = ctx.catalog.load(entry.base, ctx.weights, device="cpu")
    load_visual_weights(model, weights_path)
    return model.to(ctx.device).eval()


def load_eva_clip(entry: ModelEntry, weights_path: Path, ctx: LoadContext) -> Any:
    """Loader for ``architecture="eva_clip"``: open_clip ``entry.config`` (an ``EVA02-*`` model)
    with a BAAI EVA-CLIP or open_clip-layout checkpoint, converted and loaded strictly."""
    from engine.openvocab.densevlm_convert import load_eva_clip_checkpoint

    model = build_open_clip(entry.config)
    load_eva_clip_checkpoint(model, weights_path)
    return model.to(ctx.device).eval()


def register_entries(catalog: Catalog) -> None:
    """Add the built-in open_clip entries and the ``open_clip``, ``open_clip_visual``, ``eva_clip``
    and ``cascade_clip`` loaders."""
    for entry in BUILTIN_ENTRIES:
        catalog.register(entry)
    catalog.register_loader("open_clip", load_open_clip)
    catalog.register_loader("open_clip_visual", load_open_clip_visual)
    catalog.register_loader("eva_clip", load_eva_clip)
    catalog.register_loader("cascade_clip", _load_cascade)


def _load_cascade(entry: ModelEntry, weights_path: Path, ctx: LoadContext) -> Any:
    from engine.openvocab.cascade_io import load_cascade

    return load_cascade(entry, weights_path, ctx)
