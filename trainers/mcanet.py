"""Recipe: MCANet on a project's corrected volumes (slices, 2D or 2.5D).

From scratch, from mmseg's ImageNet MSCAN weights, or from an earlier checkpoint (by default the
project's active one, growing a channel per new class). Softmax cross-entropy (rarest class
weighted) + Dice, or sigmoid BCE + Dice for one class; AdamW with the head at 10x the learning
rate and no decay on norms; linear warmup then poly (official: lr 6e-5, wd 0.01, warmup 1,500
iterations; the warmup shrinks to a tenth of short runs).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.medical.checkpoint import (IMAGENET_MEAN, IMAGENET_STD, IntensityWindow, MCANetMeta, build_model,
                                       load_mcanet_checkpoint, save_mcanet_checkpoint, sigmoid_classes,
                                       softmax_classes)
from engine.medical.mcanet import load_backbone_weights
from trainers.data import ClassMap, grow_output_channels, split_by_item
from trainers.errors import TrainingConfigError
from trainers.losses import binary_dice_loss, soft_dice_loss
from trainers.loop import FitResult, Trainer
from trainers.project import ProjectSource, publish_checkpoint, require_items
from trainers.volumes import default_window, prepare_volume, slice_samples

__all__ = ["MCANetSettings", "MCANetTrainer"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MCANetSettings:
    """What the MCANet recipe adds to :class:`~trainers.loop.TrainConfig`.

    ``init``: ``"auto"`` (the project's active checkpoint, else scratch), ``"scratch"``,
    ``"imagenet"`` (``weights`` = an MSCAN ``.pth``) or ``"checkpoint"`` (``weights`` = an MCANet
    ``.safetensors``). ``context`` > 0 trains 2.5D on ``2 * context + 1`` slices. ``loss`` is
    ``"ce"`` or ``"bce"`` (one class only). ``feature_size`` applies to new models (an existing
    checkpoint keeps its own).
    """

    project: Path
    variant: str = "t"
    init: str = "auto"
    weights: Path | None = None
    crop: int = 256
    context: int = 0
    loss: str = "ce"
    val_fraction: float = 0.2
    rare_class_weight: float = 3.0
    head_lr_scale: float = 10.0
    feature_size: str = "stride4"
    window: IntensityWindow | None = None
    spacing: tuple[float, float] | None = None
    publish: bool = True

    @property
    def model_name(self) -> str:
        """Name of the checkpoints in the project's ``checkpoints`` table."""
        return f"mcanet.{self.variant}"


class MCANetTrainer(Trainer):
    """MCANet on corrected volumes (see the module docstring)."""

    name = "mcanet"

    def __init__(self, config: Any, settings: MCANetSettings, **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(config, **kwargs)
        self.settings = settings
        self.parent_id: int | None = None
        self.start: tuple[nn.Module, MCANetMeta] | None = None

    def prepare(self) -> None:
        s = self.settings
        if self.config.batch_size // self.dist.world_size < 2:
            raise TrainingConfigError("MCANet's BatchNorm needs at least 2 samples per process in a batch: "
                                      f"use --batch-size {2 * self.dist.world_size} or more")
        with ProjectSource(s.project, kind="volume") as source:
            self.items = source.trainable_items()
            require_items(self.items, s.project, "volume")
            self.class_map = ClassMap.from_labels(source.labels())
            if s.loss not in ("ce", "bce") or (s.loss == "bce" and len(self.class_map.ids) != 1):
                raise TrainingConfigError("--loss must be ce, or bce for a project with exactly one class")
            self.start = self._starting_checkpoint(source)
            first = source.read_volume(self.items[0])
            base = self.start[1] if self.start else None
            window = s.window or (base.window if base else default_window(first.modality))
            in_ch = 2 * s.context + 1 if s.context else (base.in_channels if base else 3)
            mean, std = (IMAGENET_MEAN, IMAGENET_STD) if in_ch == 3 else ((float(np.mean(IMAGENET_MEAN)),) * in_ch,
                                                                          (float(np.mean(IMAGENET_STD)),) * in_ch)
            names, ids = list(self.class_map.names), list(self.class_map.ids)
            classes = sigmoid_classes(names[0], ids[0]) if s.loss == "bce" else softmax_classes(names, ids)
            self.meta = MCANetMeta(variant=s.variant, classes=classes, in_channels=in_ch, context_slices=s.context,
                                   modality=first.modality, window=window, mean=mean, std=std,
                                   spacing=s.spacing or (base.spacing if base else None), tile_size=(s.crop, s.crop),
                                   feature_size=base.feature_size if base else s.feature_size,
                                   image_size=base.image_size if base else 128)
            pairs = [prepare_volume(source.read_volume(i), self.class_map.to_channels(source.read_labels(i)),
                                    window, self.meta.spacing) for i in self.items]
        train, val = split_by_item([i.key for i in self.items], s.val_fraction)
        kw = dict(in_channels=in_ch, context=s.context, mean=mean, std=std)
        self.train_ds = slice_samples([pairs[i] for i in train], (s.crop, s.crop), **kw)
        self.val_ds = slice_samples([pairs[i] for i in val], (s.crop, s.crop), **kw) if val else None
        self.train_items = [self.items[i] for i in train]
        n = self.class_map.num_channels
        rare = self.train_ds.rarest_channel(n)
        weights = torch.ones(n)
        if rare is not None and (self.train_ds.class_voxels(n)[1:] > 0).sum() > 1:
            weights[rare] = s.rare_class_weight
        self.ce_weight, self.rare = weights, rare

    def _starting_checkpoint(self, source: ProjectSource) -> tuple[nn.Module, MCANetMeta] | None:
        s = self.settings
        if s.init not in ("auto", "scratch", "imagenet", "checkpoint"):
            raise TrainingConfigError(f"unknown --init {s.init!r}: use auto, scratch, imagenet or checkpoint")
        if s.init in ("imagenet", "checkpoint") and s.weights is None:
            raise TrainingConfigError(f"--init {s.init} needs --weights FILE")
        path = s.weights if s.init == "checkpoint" else None
        if s.init == "auto" and (active := source.active_checkpoint(s.model_name)) is not None:
            self.parent_id, path = active
        if path is None:
            return None
        model, meta = load_mcanet_checkpoint(path)
        if meta.variant != s.variant:
            raise TrainingConfigError(f"the checkpoint is MCANet-{meta.variant.upper()}, not {s.variant.upper()}", path)
        return model, meta

    def build_model(self) -> nn.Module:
        model = build_model(self.meta)
        for name, p in model.named_parameters():  # the official head's unused attention temperature:
            if name.endswith(".temperature"):  # frozen, so DDP does not wait for its gradient
                p.requires_grad_(False)
        s = self.settings
        if s.init == "imagenet":
            load_backbone_weights(model.backbone, torch.load(s.weights, map_location="cpu", weights_only=True))
        if self.start is not None:
            old_model, old_meta = self.start
            state = {k: v for k, v in old_model.state_dict().items() if not k.startswith("decode_head.conv_seg.")}
            missing, unexpected = model.load_state_dict(state, strict=False)
            if unexpected or set(missing) != {"decode_head.conv_seg.weight", "decode_head.conv_seg.bias"}:
                raise TrainingConfigError(f"the starting checkpoint does not fit: {missing + unexpected}")
            old_map = ClassMap(tuple(c.id for c in sorted(old_meta.classes, key=lambda c: c.channel)), ())
            w, b = grow_head(old_model.decode_head.conv_seg, self.class_map, old_map, old_sigmoid=old_meta.sigmoid,
                             new_sigmoid=self.meta.sigmoid)
            model.decode_head.conv_seg.weight.data.copy_(w)
            model.decode_head.conv_seg.bias.data.copy_(b)
        return model

    def train_dataset(self) -> Any:  # noqa: ANN401
        return self.train_ds

    def val_dataset(self) -> Any:  # noqa: ANN401
        return self.val_ds

    def focus_indices(self) -> list[int] | None:
        return self.train_ds.slices_with(self.rare) if self.rare is not None else None

    def class_names(self) -> list[str]:
        return self.class_map.channel_names

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            key = (name.startswith("decode_head."), "norm" in name or p.ndim == 1)
            groups.setdefault(key, []).append(p)
        return [{"params": ps, "lr_scale": self.settings.head_lr_scale if head else 1.0,
                 **({"weight_decay": 0.0} if no_decay else {})} for (head, no_decay), ps in groups.items()]

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        logits, target = model(batch["image"]), batch["target"]
        if self.meta.sigmoid:
            valid = (target != 255).unsqueeze(1).float()
            fg = (target == 1).unsqueeze(1).float()
            bce = F.binary_cross_entropy_with_logits(logits.float(), fg, weight=valid, reduction="sum")
            return bce / valid.sum().clamp_min(1) + binary_dice_loss(logits, fg, valid)
        ce = F.cross_entropy(logits.float(), target, weight=self.ce_weight.to(logits.device), ignore_index=255)
        return ce + soft_dice_loss(logits, target)

    def predict(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(batch["image"]).float()
        pred = (logits[:, 0].sigmoid() > self.meta.threshold).long() if self.meta.sigmoid else logits.argmax(1)
        return pred, batch["target"]

    def describe(self) -> dict[str, Any]:
        return {"train_items": len(self.train_items), "val_items": len(self.items) - len(self.train_items),
                "classes": list(self.class_map.names), "parent_checkpoint": self.parent_id}

    def publish(self, result: FitResult, model: nn.Module) -> str | None:
        if not self.settings.publish or result.best_state is None:
            return None
        model.load_state_dict(result.best_state)
        meta = replace(self.meta, description=f"fine-tuned on {len(self.train_items)} volumes, step {result.best_step}")
        published = publish_checkpoint(
            self.settings.project, model=self.settings.model_name, recipe=self.name, suffix=".safetensors",
            write_weights=lambda path: save_mcanet_checkpoint(path, model, meta), metrics=result.best_metrics,
            settings={**self.config.as_dict(), "mcanet": {k: str(v) for k, v in vars(self.settings).items()}},
            items=self.train_items, parent_id=self.parent_id, extra={"classes": self.class_map.as_dict()})
        self.published = published
        return str(published.path)


def grow_head(conv: nn.Conv2d, new: ClassMap, old: ClassMap, *, old_sigmoid: bool, new_sigmoid: bool
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """``conv_seg`` weights for ``new``'s channels from a head trained on ``old``'s classes: every
    class both know keeps its channel's weights (a sigmoid head becomes an equivalent softmax one)."""
    if new_sigmoid:
        mapping: list[int | None] = [0 if old_sigmoid and old.ids[:1] == new.ids[:1] else None]
    else:
        mapping = new.growth_from(old)
    w, b = grow_output_channels(conv.weight.detach(), conv.bias.detach(), mapping, binary=old_sigmoid and not new_sigmoid)
    assert b is not None
    return w, b
