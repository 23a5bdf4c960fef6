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

import torch
import torch.nn.functional as F
from torch import nn

from engine.medical.checkpoint import IntensityWindow, save_mcanet_checkpoint
from trainers.data import ClassMap, split_by_item
from trainers.errors import TrainingConfigError
from trainers.losses import binary_dice_loss, soft_dice_loss
from trainers.loop import FitResult, Trainer
from trainers.mcanet_model import build_start_model, new_meta, param_groups, starting_checkpoint
from trainers.project import ProjectSource, Published, publish_result, require_items
from trainers.volumes import prepare_volume, slice_samples

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

    def prepare(self) -> None:
        s = self.settings
        if self.config.batch_size // self.dist.world_size < 2:
            raise TrainingConfigError("MCANet's BatchNorm needs at least 2 samples per process in a batch: "
                                      f"use --batch-size {2 * self.dist.world_size} or more")
        with ProjectSource(s.project, kind="volume") as source:
            self.items = source.trainable_items()
            require_items(self.items, s.project, "volume")
            self.class_map = ClassMap.from_labels(source.labels())
            self.parent_id, self.start = starting_checkpoint(s.init, s.weights, s.variant,
                                                             source.active_checkpoint(s.model_name))
            self.meta = m = new_meta(variant=s.variant, class_map=self.class_map, loss=s.loss, context=s.context,
                                     crop=s.crop, feature_size=s.feature_size, window=s.window, spacing=s.spacing,
                                     base=self.start[1] if self.start else None,
                                     first=source.read_volume(self.items[0]))
            pairs = [prepare_volume(source.read_volume(i), self.class_map.to_channels(source.read_labels(i)),
                                    m.window, m.spacing) for i in self.items]
        train, val = split_by_item([i.key for i in self.items], s.val_fraction)
        kw = dict(in_channels=m.in_channels, context=s.context, mean=m.mean, std=m.std)
        self.train_ds = slice_samples([pairs[i] for i in train], (s.crop, s.crop), **kw)
        self.val_ds = slice_samples([pairs[i] for i in val], (s.crop, s.crop), **kw) if val else None
        self.train_items = [self.items[i] for i in train]
        n = self.class_map.num_channels
        self.rare = self.train_ds.rarest_channel(n)
        self.ce_weight = torch.ones(n)
        if self.rare is not None and (self.train_ds.class_voxels(n)[1:] > 0).sum() > 1:
            self.ce_weight[self.rare] = s.rare_class_weight

    def build_model(self) -> nn.Module:
        imagenet = self.settings.weights if self.settings.init == "imagenet" else None
        return build_start_model(self.meta, self.class_map, start=self.start, imagenet=imagenet)

    def train_dataset(self) -> Any:  # noqa: ANN401
        return self.train_ds

    def val_dataset(self) -> Any:  # noqa: ANN401
        return self.val_ds

    def focus_indices(self) -> list[int] | None:
        return self.train_ds.slices_with(self.rare) if self.rare is not None else None

    def class_names(self) -> list[str]:
        return self.class_map.channel_names

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        return param_groups(model, self.settings.head_lr_scale)

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

    def publish(self, result: FitResult, model: nn.Module) -> Published | None:
        if not self.settings.publish or result.best_state is None:
            return None
        model.load_state_dict(result.best_state)
        meta = replace(self.meta, description=f"fine-tuned on {len(self.train_items)} volumes, step {result.best_step}")
        self.published = publish_result(self, result, items=self.train_items, parent_id=self.parent_id,
                                        write_weights=lambda path: save_mcanet_checkpoint(path, model, meta),
                                        extra={"classes": self.class_map.as_dict()})
        return self.published
