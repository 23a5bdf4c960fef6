"""Recipe: a Cascade-CLIP head on a project's corrected photo masks, CLIP backbone frozen.

Sigmoid focal loss x100 + Dice per class (the reference's weights); optional deep visual prompt
tokens; AdamW at the reference's head rate (2e-5 x 10) with a poly schedule. The head's class
queries are built from text embeddings, so it still takes class names it never saw.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.openvocab.cascade import CascadeCLIP, CascadeConfig, CascadeHead
from engine.openvocab.cascade_io import load_head, save_head
from engine.openvocab.clip_model import ClipSpec
from trainers.clip import class_text_embeddings, default_stages, load_backbone, model_slug, read_photo_pairs
from trainers.data import ClassMap, PhotoSamples, split_by_item
from trainers.errors import TrainingConfigError
from trainers.losses import binary_dice_loss, onehot_targets, sigmoid_focal_loss
from trainers.loop import FitResult, Trainer
from trainers.project import ProjectSource, Published, publish_result, require_items

__all__ = ["CascadeSettings", "CascadeTrainer"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CascadeSettings:
    """What the Cascade-CLIP recipe adds to :class:`~trainers.loop.TrainConfig`.

    ``init``: ``"auto"`` (continue the project's active head, else a fresh one), ``"fresh"`` or
    ``"checkpoint"`` (``weights`` = a head ``.safetensors``). ``clip`` overrides ``backbone`` with
    an explicit model (tests use tiny random ones). ``crop`` is rounded down to whole patches;
    ``templates`` default to the 80 ImageNet prompt templates.
    """

    project: Path
    backbone: str = "ViT-B-16-quickgelu.openai"
    clip: ClipSpec | None = None
    init: str = "auto"
    weights: Path | None = None
    crop: int = 512
    prompt_tokens: int = 10
    focal_weight: float = 100.0
    dice_weight: float = 1.0
    threshold: float = 0.3
    templates: tuple[str, ...] | None = None
    val_fraction: float = 0.2
    publish: bool = True

    @property
    def model_name(self) -> str:
        """Name of the checkpoints in the project's ``checkpoints`` table."""
        return model_slug("cascade-clip", self.backbone)


class CascadeTrainer(Trainer):
    """Cascade-CLIP head on corrected photos (see the module docstring)."""

    name = "cascade"

    def __init__(self, config: Any, settings: CascadeSettings, **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(config, **kwargs)
        self.settings = settings
        self.parent_id: int | None = None

    def prepare(self) -> None:
        s = self.settings
        if s.init not in ("auto", "fresh", "checkpoint") or (s.init == "checkpoint" and s.weights is None):
            raise TrainingConfigError("--init must be auto, fresh, or checkpoint with --weights FILE")
        self.clip = load_backbone(s.backbone, s.clip)
        with ProjectSource(s.project, kind="photo") as source:
            self.items = source.trainable_items()
            require_items(self.items, s.project, "photo")
            self.class_map = ClassMap.from_labels(source.labels())
            path = s.weights if s.init == "checkpoint" else None
            if s.init == "auto" and (active := source.active_checkpoint(s.model_name)) is not None:
                self.parent_id, path = active
            self.start = load_head(path)[0] if path is not None else None
            pairs = read_photo_pairs(source, self.items, self.class_map, max_side=2 * s.crop)
        self.text = class_text_embeddings(self.clip, self.class_map.prompts, templates=s.templates)
        patch = self.clip.patch_size
        size = (max(patch, s.crop // patch * patch),) * 2
        train, val = split_by_item([i.key for i in self.items], s.val_fraction)
        kw = dict(mean=self.clip.mean.tolist(), std=self.clip.std.tolist())
        self.train_ds = PhotoSamples([pairs[i] for i in train], size, **kw)
        self.val_ds = PhotoSamples([pairs[i] for i in val], size, **kw) if val else None
        self.train_items = [self.items[i] for i in train]

    def build_model(self) -> nn.Module:
        visual = self.clip.model.visual
        head = self.start
        if head is None:
            depth, width = len(visual.transformer.resblocks), visual.conv1.out_channels
            cfg = CascadeConfig(backbone=self.settings.backbone, width=width, dim=self.clip.embed_dim, depth=depth,
                                stages=default_stages(depth), num_prompt_tokens=self.settings.prompt_tokens)
            head = CascadeHead(cfg)
            head.init_from_clip(visual)
        return CascadeCLIP(visual, head, freeze_backbone=True)

    def set_train_mode(self, model: nn.Module) -> None:
        model.train()
        model.visual.eval()  # frozen: no dropout, fixed statistics

    def model_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        return model.head.state_dict()  # the backbone is frozen: checkpoints hold the head only

    def load_model_state(self, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
        model.head.load_state_dict(state)

    def train_dataset(self) -> Any:  # noqa: ANN401
        return self.train_ds

    def val_dataset(self) -> Any:  # noqa: ANN401
        return self.val_ds

    def class_names(self) -> list[str]:
        return self.class_map.channel_names

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        text = self.text.to(batch["image"].device)
        logits = model(batch["image"], text)
        onehot, valid = onehot_targets(batch["target"], text.shape[0])
        focal = sigmoid_focal_loss(logits, onehot, valid)
        return self.settings.focal_weight * focal + self.settings.dice_weight * binary_dice_loss(logits, onehot, valid)

    def predict(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        probs = model(batch["image"], self.text.to(batch["image"].device)).float().sigmoid()
        best, index = probs.max(dim=1)
        return torch.where(best > self.settings.threshold, index + 1, 0), batch["target"]

    def describe(self) -> dict[str, Any]:
        return {"train_items": len(self.train_items), "val_items": len(self.items) - len(self.train_items),
                "classes": list(self.class_map.names), "parent_checkpoint": self.parent_id}

    def publish(self, result: FitResult, model: nn.Module) -> Published | None:
        if not self.settings.publish or result.best_state is None:
            return None
        model.head.load_state_dict(result.best_state)
        extra = {"classes": self.class_map.as_dict(), "metrics": result.best_metrics, "step": result.best_step}
        self.published = publish_result(self, result, items=self.train_items, parent_id=self.parent_id,
                                        write_weights=lambda path: save_head(model.head, path, extra=extra),
                                        extra={"classes": self.class_map.as_dict()})
        return self.published
