"""Loading open_clip ViT models for dense (per-patch) use, with their own preprocessing.

A :class:`ClipModel` is an open_clip CLIP model plus what dense segmentation needs to run it on
any window size: the preprocessing mean/std of its weights, the patch size, the native patch
grid, and a cache of position embeddings resized at run time (open_clip itself refuses
non-native input sizes).

Where the weights come from (:class:`ClipSpec`):

* an open_clip pretrained tag (``ViT-B-16-quickgelu`` + ``openai``): resolved by the weights
  manager (:class:`engine.models.weights.WeightsManager`: a file imported with ``maskwright
  models import``, else the local Hugging Face hub cache). Nothing downloads here; a missing
  file raises :class:`~engine.errors.WeightsError` saying how to get it;
* a local weights file (``.safetensors`` or a ``.pt``/``.bin`` state dict, loaded with
  ``weights_only=True``) for the named architecture;
* an open_clip ``local-dir:FOLDER`` (``open_clip_config.json`` + weights), which keeps the
  folder's own mean/std;
* an explicit open_clip model config dict (tiny test models), with random weights from a seed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import ModelError, WeightsError
from engine.models.catalog import OPENAI_MEAN, OPENAI_STD

__all__ = [
    "ClipSpec",
    "ClipModel",
    "load_clip",
    "clip_from_catalog",
    "HOSTED_ARCHITECTURES",
    "PosInterp",
    "OPENAI_MEAN",
    "OPENAI_STD",
]

_logger = logging.getLogger(__name__)


PosInterp = Literal["offset", "size"]
"""How position embeddings are resized to a new patch grid.

``"offset"``: bicubic with ``scale_factor = (grid + 0.1) / native`` (the DINO recipe NACLIP,
SCLIP and ClearCLIP use); ``"size"``: bicubic to the exact grid size (MaskCLIP / mmseg).
"""


@dataclass(frozen=True)
class ClipSpec:
    """Which CLIP model to load.

    Attributes
    ----------
    name
        An open_clip model name (``ViT-B-16-quickgelu``, ``ViT-B-16``, ``ViT-L-14``) or
        ``local-dir:FOLDER``.
    pretrained
        An open_clip pretrained tag (``openai``, ``laion2b_s34b_b88k``), a local weights file,
        or ``None`` for random weights (tests and benchmarks only).
    config
        An explicit open_clip model config (``embed_dim``, ``vision_cfg``, ``text_cfg``,
        ``quick_gelu``); when given, ``name`` is only a label and no built-in config is used.
    seed
        Seed for random weights (``pretrained=None``).
    cache_dir
        Hub cache folder where tags are looked up; ``None`` = the weights manager's hub cache
        (:func:`engine.models.weights.default_root` ``/ "hub"``).
    mean, std
        Override the preprocessing (RGB, 0..1 scale); ``None`` = the weights' own.
    """

    name: str = "ViT-B-16-quickgelu"
    pretrained: str | None = "openai"
    config: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)
    seed: int = 0
    cache_dir: Path | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None

    @property
    def key(self) -> str:
        """A short string identifying these weights (used to key text-embedding caches)."""
        if self.config is not None:
            cfg = json.dumps(self.config, sort_keys=True)
            return f"{self.name}|cfg-{hashlib.sha1(cfg.encode()).hexdigest()[:12]}|seed{self.seed}|{self.pretrained}"
        if self.pretrained is None:
            return f"{self.name}|random-seed{self.seed}"
        path = Path(self.pretrained)
        if path.is_file():
            st = path.stat()
            return f"{self.name}|file:{path.resolve()}|{st.st_size}|{int(st.st_mtime)}"
        return f"{self.name}|{self.pretrained}"


class ClipModel:
    """An open_clip CLIP model ready for dense use.

    Attributes
    ----------
    model
        The open_clip ``CLIP`` module, in eval mode.
    spec
        What was loaded.
    mean, std
        ``(3,)`` float tensors of the preprocessing, RGB on a 0..1 scale.
    patch_size
        Pixels per patch side (16 for ViT-B/16).
    native_grid
        ``(rows, cols)`` of the position embedding the weights were trained with.
    """

    def __init__(self, model: nn.Module, spec: ClipSpec, *, mean: tuple[float, ...], std: tuple[float, ...],
                 key: str | None = None) -> None:
        visual = getattr(model, "visual", None)
        if visual is None or not hasattr(visual, "conv1") or not hasattr(visual, "transformer"):
            raise ModelError(f"{spec.name} is not an open_clip ViT (dense CLIP needs a ViT image tower)")
        self.model = model.eval()
        self.spec = spec
        self._key = key
        self.mean = torch.tensor(mean, dtype=torch.float32)
        self.std = torch.tensor(std, dtype=torch.float32)
        ps = visual.conv1.kernel_size
        self.patch_size = int(ps[0])
        n = visual.positional_embedding.shape[0] - 1
        grid = getattr(visual, "grid_size", None)
        self.native_grid = (int(grid[0]), int(grid[1])) if grid is not None else (math.isqrt(n), math.isqrt(n))
        self._pos_cache: dict[tuple[int, int, str, torch.device, torch.dtype], torch.Tensor] = {}
        self._low_precision: dict[torch.dtype, nn.Module] = {}

    @property
    def key(self) -> str:
        """Identity of the weights (model name, tag or file): keys the text-embedding caches."""
        return self._key or self.spec.key

    @property
    def device(self) -> torch.device:
        return self.model.visual.conv1.weight.device

    @property
    def embed_dim(self) -> int:
        """Width of the joint image-text space (512 for ViT-B/16)."""
        return int(self.model.visual.proj.shape[1])

    def to(self, device: torch.device | str) -> ClipModel:
        """Move the model to ``device`` (in place) and return self."""
        self.model.to(device)
        self._pos_cache.clear()
        self._low_precision.clear()
        return self

    def visual_in(self, dtype: torch.dtype) -> nn.Module:
        """The image tower with weights in ``dtype``: the model's own for fp32, else a cached copy.

        Running bf16 weights directly is how bf16 runs on CPU (autocast there re-casts every
        weight at every call and is several times slower).
        """
        visual = self.model.visual
        if dtype == visual.conv1.weight.dtype:
            return visual
        copy = self._low_precision.get(dtype)
        if copy is None:
            import copy as _copy

            copy = _copy.deepcopy(visual).to(dtype).eval()
            self._low_precision[dtype] = copy
        return copy

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` float RGB in 0..1 -> the model's normalised input (same shape)."""
        mean = self.mean.to(images.device, images.dtype).view(1, 3, 1, 1)
        std = self.std.to(images.device, images.dtype).view(1, 3, 1, 1)
        return (images - mean) / std

    def position_embedding(self, grid: tuple[int, int], mode: PosInterp = "offset") -> torch.Tensor:
        """The position embedding for a ``(rows, cols)`` patch grid, ``(1 + rows*cols, width)``.

        The native grid returns the weights' own embedding; other grids are resized bicubically
        (see :data:`PosInterp`) and cached per grid, mode, device and dtype.
        """
        pos = self.model.visual.positional_embedding
        rows, cols = int(grid[0]), int(grid[1])
        if (rows, cols) == self.native_grid:
            return pos
        key = (rows, cols, mode, pos.device, pos.dtype)
        cached = self._pos_cache.get(key)
        if cached is not None:
            return cached
        nr, nc = self.native_grid
        width = pos.shape[-1]
        patch = pos[1:].reshape(1, nr, nc, width).permute(0, 3, 1, 2).float()
        if mode == "offset":
            resized = F.interpolate(patch, scale_factor=((rows + 0.1) / nr, (cols + 0.1) / nc), mode="bicubic",
                                    align_corners=False, recompute_scale_factor=False)
        elif mode == "size":
            resized = F.interpolate(patch, size=(rows, cols), mode="bicubic", align_corners=False)
        else:
            raise ValueError(f"unknown position interpolation {mode!r}: use 'offset' or 'size'")
        if resized.shape[-2:] != (rows, cols):  # pragma: no cover - guards the float arithmetic
            raise ModelError(f"position embedding resized to {tuple(resized.shape[-2:])}, wanted {(rows, cols)}")
        resized = resized.to(pos.dtype).permute(0, 2, 3, 1).reshape(rows * cols, width)
        out = torch.cat([pos[:1], resized], dim=0).detach()
        self._pos_cache[key] = out
        return out


def _tag_weights(name: str, tag: str, cache_dir: Path | None) -> tuple[Path, dict[str, Any]]:
    """The local weights file of an open_clip pretrained tag, through the weights manager.

    The catalog entry for ``name`` + ``tag`` (e.g. ``ViT-B-16-quickgelu.openai``) is looked up
    by the manager (an imported file first, then the hub cache); a tag the catalog does not list
    is looked up in the hub cache under the repository open_clip resolves it to. Never networks.
    """
    import open_clip

    from engine.models.catalog import HubSource, ModelEntry, default_catalog
    from engine.models.weights import WeightsManager

    cfg = open_clip.get_pretrained_cfg(name, tag)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(name)
        raise WeightsError(f"{name} has no pretrained tag {tag!r}; known tags: {', '.join(tags) or 'none'}")
    catalog = default_catalog()
    weights = WeightsManager(catalog, hub_cache=cache_dir)
    entry = next((e for e in catalog.list("photo") if isinstance(e.source, HubSource)
                  and (e.source.open_clip_model, e.source.open_clip_tag) == (name, tag)), None)
    if entry is not None:
        return weights.ensure_local(entry.name), cfg
    repo_id = str(cfg.get("hf_hub", "")).rstrip("/")
    if not repo_id:
        raise WeightsError(f"{name} {tag}: this tag has no Hugging Face hub source; give a weights file instead")
    for filename in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
        try:
            adhoc = catalog.register(ModelEntry(name=f"{name}.{tag}", kind="photo", architecture="open_clip", config=name,
                                            source=HubSource(repo_id, filename, open_clip_model=name,
                                                             open_clip_tag=tag)), replace=True)
        except ValueError:  # a name that cannot be a catalog name (path characters): no cache entry
            break
        found = weights.path(adhoc.name)
        if found is not None:
            return found, cfg
    raise WeightsError(f"the weights of {name} ({tag}) are not on this computer and the catalog does not list "
                       f"them: put {repo_id}/open_clip_model.safetensors in the hub cache, or give the weights "
                       "file itself", weights.hub_cache)


def _load_weights_file(model: nn.Module, path: Path) -> None:
    from open_clip.model import convert_to_custom_text_state_dict, resize_pos_embed

    from engine.models.weights import read_state_dict

    state = {k.removeprefix("module."): v for k, v in read_state_dict(path).items()}
    if hasattr(model, "text"):  # CustomTextCLIP keeps its text tower under "text."
        state = convert_to_custom_text_state_dict(state)
    try:
        resize_pos_embed(state, model)
        missing, unexpected = model.load_state_dict(state, strict=False)
    except (RuntimeError, ValueError, KeyError) as err:
        raise WeightsError(f"weights do not fit this architecture ({str(err).strip().splitlines()[-1]})", path) from err
    missing = [k for k in missing if not k.endswith("attn_mask")]
    if missing:
        raise WeightsError(f"weights do not fit this architecture: missing {missing[:5]}", path)
    if unexpected:
        _logger.warning("%s: ignored %d unexpected keys, e.g. %s", path, len(unexpected), unexpected[:3])


def load_clip(spec: ClipSpec = ClipSpec(), *, device: torch.device | str = "cpu") -> ClipModel:
    """Load a CLIP model for dense segmentation.

    Parameters
    ----------
    spec
        Which model and weights (see :class:`ClipSpec`).
    device
        Where to put it.

    Returns
    -------
    ClipModel
        Eval mode, fp32 weights, with the preprocessing of its weights.

    Raises
    ------
    WeightsError
        The weights are missing (tags are looked up in the cache only), unreadable or do not fit.
    ModelError
        Unknown model name, or not a ViT.
    """
    import open_clip
    from open_clip.factory import get_model_config

    from engine.models.open_clip_entries import build_open_clip

    mean: tuple[float, ...] = OPENAI_MEAN
    std: tuple[float, ...] = OPENAI_STD
    if spec.config is not None:
        model = build_open_clip(spec.config, seed=spec.seed)
        if spec.pretrained is not None:
            _load_weights_file(model, Path(spec.pretrained))
    elif spec.name.startswith("local-dir:"):
        folder = Path(spec.name.removeprefix("local-dir:"))
        if not (folder / "open_clip_config.json").is_file():
            raise WeightsError("no open_clip_config.json in this folder", folder)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(spec.name)
        except (RuntimeError, ValueError, OSError) as err:
            raise WeightsError(f"cannot load this open_clip folder ({err})", folder) from err
        pcfg = getattr(model.visual, "preprocess_cfg", {}) or {}
        mean, std = tuple(pcfg.get("mean", mean)), tuple(pcfg.get("std", std))
    else:
        config = get_model_config(spec.name)
        if config is None:
            raise ModelError(f"unknown open_clip model {spec.name!r}")
        if spec.pretrained is None:
            model = build_open_clip(config, seed=spec.seed)
        else:
            path = Path(spec.pretrained)
            if path.is_file():
                weights = path
            else:
                weights, tag_cfg = _tag_weights(spec.name, spec.pretrained, spec.cache_dir)
                mean, std = tuple(tag_cfg.get("mean", mean)), tuple(tag_cfg.get("std", std))
                if tag_cfg.get("quick_gelu", False) and not config.get("quick_gelu", False):
                    # e.g. ViT-B-16 + openai: the weights were trained with QuickGELU
                    _logger.info("%s %s: using QuickGELU as the weights were trained with it", spec.name, spec.pretrained)
                    config = {**config, "quick_gelu": True}
            model = build_open_clip(config, seed=spec.seed)
            _load_weights_file(model, weights)
    mean = spec.mean or mean
    std = spec.std or std
    model = model.float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    clip = ClipModel(model, spec, mean=mean, std=std)
    _logger.info("loaded %s (%s) on %s", spec.name, spec.pretrained, device)
    return clip.to(device)


HOSTED_ARCHITECTURES: tuple[str, ...] = ("open_clip", "open_clip_visual")
"""Catalog architectures :func:`clip_from_catalog` loads: a plain open_clip ViT, or one with
fine-tuned image-encoder weights. ``eva_clip`` (a timm EVA tower, no ``conv1``/``transformer``)
and ``cascade_clip`` (a head, not a CLIP) are refused with a :class:`~engine.errors.ModelError`."""


def clip_from_catalog(name: str, *, device: torch.device | str = "cpu", weights_root: str | Path | None = None,
                      catalog: Any = None) -> ClipModel:
    """Load a catalog photo model (``ViT-B-16-quickgelu.openai``...) through the weights manager.

    Nothing downloads: a missing file raises :class:`~engine.errors.WeightsError` naming the
    ``maskwright models download/import`` command that fixes it. Entries of architecture
    ``open_clip`` and ``open_clip_visual`` (DenseVLM-style fine-tuned image encoders on their
    base) are hosted; others raise :class:`~engine.errors.ModelError` (see
    :data:`HOSTED_ARCHITECTURES`).
    """
    from engine.models.catalog import default_catalog
    from engine.models.weights import WeightsManager

    catalog = catalog if catalog is not None else default_catalog()
    entry = catalog.get(name)
    if entry.kind != "photo":
        raise ModelError(f"{name} is a {entry.kind} model; dense CLIP needs a photo (open_clip) model")
    if entry.architecture not in HOSTED_ARCHITECTURES:
        hint = (" (a trained head: load it with engine.openvocab.photo_model.load_photo_model, which puts it on "
                "its backbone)" if entry.architecture == "cascade_clip" else "")
        raise ModelError(f"{name} ({entry.architecture}) is not an open_clip ViT that dense CLIP can run{hint}; "
                         f"it runs {', '.join(HOSTED_ARCHITECTURES)} models")
    weights = WeightsManager(catalog, weights_root)
    model = catalog.load(name, weights, device="cpu")
    path = weights.path(name)
    stamp = ""
    if path is not None and path.is_file():
        st = path.stat()
        stamp = f"|{st.st_size}|{int(st.st_mtime)}"
    model_name = entry.config if entry.config and not entry.config.endswith(".json") else name
    spec = ClipSpec(name=model_name, pretrained=str(path) if path else None)
    model = model.float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    clip = ClipModel(model, spec, mean=tuple(entry.mean), std=tuple(entry.std), key=f"catalog:{name}{stamp}")
    return clip.to(device)
