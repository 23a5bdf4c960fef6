"""MCANet: MSCAN encoder + MCA decode head, in the T, S and B sizes of the official configs.

Paper: Shao et al., "Multi-scale Cross-axis Attention for medical image segmentation"
(https://arxiv.org/abs/2312.11760); official code github.com/haoshao-nku/medical_seg (an
mmsegmentation fork, non-commercial licence: this is our own implementation).

The assembled model has the official top-level names ``backbone`` and ``decode_head``, so the
``state_dict`` of an official mmseg checkpoint loads strictly as it is. Its forward returns the
logits bilinearly resized to the input size (what mmseg's ``EncoderDecoder.encode_decode``
returns); input normalisation is done by the caller (``engine.medical.preprocess``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import WeightsError
from engine.medical.mca_head import FeatureSize, MCAHead
from engine.medical.mscan import MSCAN

__all__ = [
    "MCANet",
    "MCANetConfig",
    "VariantRegistry",
    "VARIANTS",
    "create_mcanet",
    "checkpoint_filter_fn",
    "backbone_filter_fn",
    "load_backbone_weights",
    "load_official_state_dict",
]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MCANetConfig:
    """Everything that fixes the network's shape.

    Attributes
    ----------
    embed_dims, depths, mlp_ratios
        MSCAN stage widths, depths and MLP ratios.
    head_channels
        Channels before ``conv_seg`` (official ``channels``: ``embed_dims[0]``).
    out_channels
        1 (sigmoid, binary) or the number of classes including background (softmax).
    in_channels
        Input channels of the stem (3 in every official model).
    heads, image_size, feature_size
        MCA heads (8), the fixed feature size (128) and ``"fixed"``/``"stride4"`` (see
        :class:`~engine.medical.mca_head.MCAHead`).
    drop_path_rate
        Stochastic depth (0.1 in the official configs; training only).
    """

    embed_dims: tuple[int, int, int, int]
    depths: tuple[int, int, int, int]
    mlp_ratios: tuple[float, float, float, float] = (8, 8, 4, 4)
    head_channels: int = 32
    out_channels: int = 1
    in_channels: int = 3
    heads: int = 8
    image_size: int = 128
    feature_size: FeatureSize = "fixed"
    drop_path_rate: float = 0.1


class MCANet(nn.Module):
    """MSCAN backbone + MCA head.

    Forward: ``(B, in_channels, H, W)`` float32 (normalised) -> logits
    ``(B, out_channels, H, W)`` float32 (before sigmoid/softmax).
    """

    def __init__(self, backbone: MSCAN, decode_head: MCAHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.decode_head = decode_head

    def forward_low_res(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at the head's resolution (128x128 in the official setting)."""
        return self.decode_head(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.forward_low_res(x)
        if tuple(out.shape[-2:]) != tuple(x.shape[-2:]):
            out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return out


def _convert_segnext_original(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original SegNeXt/VAN ImageNet weights -> mmseg names (``mlp.dwconv.dwconv`` ->
    ``mlp.dwconv``; the ImageNet classifier ``head.*`` is dropped)."""
    out = {}
    for k, v in state_dict.items():
        if k.startswith("head."):
            continue
        out[k.replace(".mlp.dwconv.dwconv.", ".mlp.dwconv.")] = v
    return out


def _convert_ddp(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip the ``module.`` prefix that DistributedDataParallel adds."""
    return {k.removeprefix("module."): v for k, v in state_dict.items()}


def _unwrap(checkpoint: Mapping[str, object]) -> Mapping[str, torch.Tensor]:
    for key in ("state_dict", "model", "state_dict_ema"):
        inner = checkpoint.get(key)
        if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            return inner  # type: ignore[return-value]
    return checkpoint  # type: ignore[return-value]


def _adapt_input_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Stem weights ``(O, 3, k, k)`` for ``in_channels`` inputs: summed for 1, tiled otherwise."""
    if weight.shape[1] == in_channels:
        return weight
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = -(-in_channels // weight.shape[1])
    return weight.repeat(1, reps, 1, 1)[:, :in_channels] * (weight.shape[1] / in_channels)


def checkpoint_filter_fn(checkpoint: Mapping[str, object], model: MCANet | None = None) -> dict[str, torch.Tensor]:
    """Turn a loaded checkpoint into a ``state_dict`` for ``model`` (dict in, dict out).

    Recognises an mmseg checkpoint (``{"state_dict": {backbone.*, decode_head.*}, "meta": ...}``,
    used as it is), a bare state dict, and DDP-prefixed keys. Key names are never guessed:
    anything else is left for the strict load to report.
    """
    sd = dict(_unwrap(checkpoint))
    if any(k.startswith("module.") for k in sd):
        sd = _convert_ddp(sd)
    if any(".mlp.dwconv.dwconv." in k for k in sd):
        sd = _convert_segnext_original(sd)
    return sd


def backbone_filter_fn(checkpoint: Mapping[str, object], backbone: MSCAN) -> dict[str, torch.Tensor]:
    """A backbone ``state_dict`` from an MSCAN ImageNet checkpoint (mmseg's ``mscan_*.pth``, or
    the original SegNeXt release), or from a full segmentor checkpoint (``backbone.*`` keys).
    The ImageNet classifier (``head.*``) is dropped; a 3-channel stem is adapted to the
    backbone's input channels."""
    sd = _convert_ddp(_unwrap(checkpoint))
    if any(k.startswith("backbone.") for k in sd):
        sd = {k.removeprefix("backbone."): v for k, v in sd.items() if k.startswith("backbone.")}
    dropped = [k for k in sd if k.startswith("head.")]
    if dropped:
        _logger.info("dropping the ImageNet classifier from the backbone checkpoint: %s", ", ".join(dropped))
    sd = _convert_segnext_original(sd)
    stem = "patch_embed1.proj.0.weight"
    if stem in sd:
        sd[stem] = _adapt_input_conv(sd[stem], backbone.in_channels)
    return sd


def load_backbone_weights(backbone: MSCAN, checkpoint: Mapping[str, object]) -> None:
    """Load MSCAN ImageNet weights strictly; raises :class:`WeightsError` listing bad keys."""
    sd = backbone_filter_fn(checkpoint, backbone)
    _load_strict(backbone, sd, what="MSCAN backbone")


def _load_strict(module: nn.Module, sd: Mapping[str, torch.Tensor], *, what: str) -> None:
    own = module.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    wrong = sorted(k for k in set(own) & set(sd) if tuple(own[k].shape) != tuple(sd[k].shape))
    if missing or unexpected or wrong:
        parts = []
        for name, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if keys:
                extra = f" (+{len(keys) - 5} more)" if len(keys) > 5 else ""
                parts.append(f"{name}: {', '.join(keys[:5])}{extra}")
        raise WeightsError(f"the weights do not fit {what}: " + "; ".join(parts))
    module.load_state_dict(sd, strict=True)


def load_official_state_dict(model: MCANet, checkpoint: Mapping[str, object]) -> None:
    """Load an official (mmseg) MCANet checkpoint strictly; :class:`WeightsError` on mismatch."""
    _load_strict(model, checkpoint_filter_fn(checkpoint, model), what="MCANet")


class VariantRegistry:
    """Named MCANet sizes: ``register`` (raises on duplicates), ``get``, ``list``."""

    def __init__(self) -> None:
        self._cfgs: dict[str, MCANetConfig] = {}

    def register(self, name: str, cfg: MCANetConfig) -> MCANetConfig:
        if name in self._cfgs:
            raise ValueError(f"MCANet variant {name!r} is already registered")
        self._cfgs[name] = cfg
        return cfg

    def get(self, name: str) -> MCANetConfig:
        try:
            return self._cfgs[name]
        except KeyError:
            raise KeyError(f"unknown MCANet variant {name!r}; known: {', '.join(self._cfgs)}") from None

    def list(self) -> list[str]:
        return list(self._cfgs)

    def __iter__(self) -> Iterator[str]:
        return iter(self._cfgs)


def _create_mcanet(cfg: MCANetConfig) -> MCANet:
    backbone = MSCAN(cfg.embed_dims, cfg.depths, cfg.mlp_ratios, in_channels=cfg.in_channels,
                     drop_path_rate=cfg.drop_path_rate)
    head = MCAHead(cfg.embed_dims, cfg.head_channels, cfg.out_channels, heads=cfg.heads,
                   image_size=cfg.image_size, feature_size=cfg.feature_size)
    return MCANet(backbone, head)


def create_mcanet(variant: str, **overrides: object) -> MCANet:
    """Build an MCANet variant (``"t"``, ``"s"``, ``"b"``, or ``"test"``, a tiny one for tests),
    with ``overrides`` of :class:`MCANetConfig` fields (``out_channels=9``, ``in_channels=1``,
    ``feature_size="stride4"`` ...). Random weights; the model is in training mode."""
    cfg = replace(VARIANTS.get(_canonical(variant)), **overrides)  # type: ignore[arg-type]
    return _create_mcanet(cfg)


def _canonical(variant: str) -> str:
    return re.sub(r"^(mcanet[_-]?)?(mscan[_-]?)?", "", variant.strip().lower())


VARIANTS = VariantRegistry()
VARIANTS.register("t", MCANetConfig(embed_dims=(32, 64, 160, 256), depths=(3, 3, 5, 2), head_channels=32))
VARIANTS.register("s", MCANetConfig(embed_dims=(64, 128, 320, 512), depths=(2, 2, 4, 2), head_channels=64))
VARIANTS.register("b", MCANetConfig(embed_dims=(64, 128, 320, 512), depths=(3, 3, 12, 3), head_channels=64))
VARIANTS.register("test", MCANetConfig(embed_dims=(32, 32, 64, 64), depths=(1, 1, 1, 1), head_channels=32,
                                       image_size=32))
