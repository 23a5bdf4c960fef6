"""The MCANet recipe's model side: where training starts, the checkpoint metadata of the new
model, growing the classifier for new classes, and the official parameter groups."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.items import Volume
from engine.medical.checkpoint import (IMAGENET_MEAN, IMAGENET_STD, IntensityWindow, MCANetMeta, build_model,
                                       load_mcanet_checkpoint, sigmoid_classes, softmax_classes)
from engine.medical.mcanet import MCANet, load_backbone_weights
from trainers.data import ClassMap, grow_output_channels
from trainers.errors import TrainingConfigError
from trainers.volumes import default_window

__all__ = ["INITS", "starting_checkpoint", "new_meta", "build_start_model", "grow_head", "param_groups"]

_logger = logging.getLogger(__name__)

INITS = ("auto", "scratch", "imagenet", "checkpoint")


def starting_checkpoint(init: str, weights: Path | None, variant: str, active: tuple[int, Path] | None
                        ) -> tuple[int | None, tuple[MCANet, MCANetMeta] | None]:
    """``(parent checkpoint id, (model, meta))`` to start from, or ``(None, None)``.

    ``active`` is the project's active checkpoint of this model (used by ``init="auto"``).
    """
    if init not in INITS:
        raise TrainingConfigError(f"unknown --init {init!r}: use {', '.join(INITS)}")
    if init in ("imagenet", "checkpoint") and weights is None:
        raise TrainingConfigError(f"--init {init} needs --weights FILE")
    fallback = (None, weights if init == "checkpoint" else None)
    parent, path = active if init == "auto" and active is not None else fallback
    if path is None:
        return None, None
    model, meta = load_mcanet_checkpoint(path)
    if meta.variant != variant:
        raise TrainingConfigError(f"the checkpoint is MCANet-{meta.variant.upper()}, not {variant.upper()}", path)
    return parent, (model, meta)


def new_meta(*, variant: str, class_map: ClassMap, loss: str, context: int, crop: int, feature_size: str,
             window: IntensityWindow | None, spacing: tuple[float, float] | None, base: MCANetMeta | None,
             first: Volume) -> MCANetMeta:
    """Metadata of the model to train: the starting checkpoint's preprocessing when there is one
    (so its weights see what they learned on), else defaults for ``first``'s modality."""
    in_ch = 2 * context + 1 if context else (base.in_channels if base else 3)
    if in_ch == 3:
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    else:
        mean, std = (float(np.mean(IMAGENET_MEAN)),) * in_ch, (float(np.mean(IMAGENET_STD)),) * in_ch
    names, ids = list(class_map.names), list(class_map.ids)
    if loss not in ("ce", "bce") or (loss == "bce" and len(ids) != 1):
        raise TrainingConfigError("--loss must be ce, or bce for a project with exactly one class")
    classes = sigmoid_classes(names[0], ids[0]) if loss == "bce" else softmax_classes(names, ids)
    return MCANetMeta(variant=variant, classes=classes, in_channels=in_ch, context_slices=context,
                      modality=first.modality,
                      window=window or (base.window if base else default_window(first.modality)),
                      mean=mean, std=std, spacing=spacing or (base.spacing if base else None), tile_size=(crop, crop),
                      feature_size=base.feature_size if base else feature_size,
                      image_size=base.image_size if base else 128)


def build_start_model(meta: MCANetMeta, class_map: ClassMap, *, start: tuple[MCANet, MCANetMeta] | None,
                      imagenet: Path | None) -> MCANet:
    """The model to train: random, with ImageNet MSCAN weights, or the starting checkpoint's weights
    with its classifier grown to ``class_map`` (every class it knew keeps its channel)."""
    model = build_model(meta)
    for name, p in model.named_parameters():  # the official head's unused attention temperature:
        if name.endswith(".temperature"):  # frozen, so DDP does not wait for its gradient
            p.requires_grad_(False)
    if imagenet is not None:
        load_backbone_weights(model.backbone, torch.load(imagenet, map_location="cpu", weights_only=True))
    if start is not None:
        old_model, old_meta = start
        state = {k: v for k, v in old_model.state_dict().items() if not k.startswith("decode_head.conv_seg.")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or set(missing) != {"decode_head.conv_seg.weight", "decode_head.conv_seg.bias"}:
            raise TrainingConfigError(f"the starting checkpoint does not fit: {missing + unexpected}")
        old_map = ClassMap(tuple(c.id for c in sorted(old_meta.classes, key=lambda c: c.channel)), ())
        w, b = grow_head(old_model.decode_head.conv_seg, class_map, old_map, old_sigmoid=old_meta.sigmoid,
                         new_sigmoid=meta.sigmoid)
        model.decode_head.conv_seg.weight.data.copy_(w)
        model.decode_head.conv_seg.bias.data.copy_(b)
    return model


def grow_head(conv: nn.Conv2d, new: ClassMap, old: ClassMap, *, old_sigmoid: bool, new_sigmoid: bool
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """``conv_seg`` weights for ``new``'s channels from a head trained on ``old``'s classes: every
    class both know keeps its channel's weights (a sigmoid head becomes an equivalent softmax one)."""
    if new_sigmoid:
        mapping: list[int | None] = [0 if old_sigmoid and old.ids[:1] == new.ids[:1] else None]
    else:
        mapping = new.growth_from(old)
    w, b = grow_output_channels(conv.weight.detach(), conv.bias.detach(), mapping,
                                binary=old_sigmoid and not new_sigmoid)
    assert b is not None
    return w, b


def param_groups(model: nn.Module, head_lr_scale: float) -> list[dict[str, Any]]:
    """mmseg's SegNeXt groups: the head (``decode_head.*``) at ``head_lr_scale`` x lr, no weight
    decay on norms and biases."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            key = (name.startswith("decode_head."), "norm" in name or p.ndim == 1)
            groups.setdefault(key, []).append(p)
    return [{"params": ps, "lr_scale": head_lr_scale if head else 1.0, **({"weight_decay": 0.0} if no_decay else {})}
            for (head, no_decay), ps in groups.items()]
