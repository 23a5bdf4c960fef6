"""Recipe: DenseVLM-style region-language alignment of the CLIP image encoder on a project's photos.

No labels needed: every photo trains. A frozen teacher (a copy of the start, or another catalog
CLIP) embeds random grid regions as crops; the student's dense features (last block without q-k
attention) are pooled per region by RoIAlign; categories come from the person's classes plus a
built-in thing/stuff vocabulary; regions the teacher is at most 30% sure of are dropped; thing
regions align over thing categories, stuff regions over all (KL at scale 100). AdamW 1e-5, wd 0.1,
cosine. Published: ``0.9 x student + 0.1 x start`` of the lowest validation alignment loss."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.openvocab.clip_model import ClipSpec
from engine.openvocab.densevlm_convert import save_visual_weights
from trainers import distributed
from trainers.clip import class_text_embeddings, load_backbone, model_slug, read_photo_pairs
from trainers.data import PhotoSamples, split_by_item
from trainers.loop import FitResult, Trainer
from trainers.project import ProjectSource, Published, publish_result, require_items
from trainers.regions import AlignmentStats, RegionEncoder, RegionSamples, alignment_loss, rois, teacher_regions
from trainers.vocabulary import build_vocabulary

__all__ = ["DenseVLMSettings", "DenseVLMTrainer"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DenseVLMSettings:
    """What the DenseVLM recipe adds to :class:`~trainers.loop.TrainConfig` (``clip``/``teacher_clip``
    override the catalog names with explicit models, as tests do; ``templates`` default to the 80
    ImageNet prompt templates)."""

    project: Path
    backbone: str = "ViT-B-16-quickgelu.openai"
    clip: ClipSpec | None = None
    teacher: str | None = None
    teacher_clip: ClipSpec | None = None
    crop: int = 448
    scale: float = 100.0
    threshold: float = 0.3
    keep_start: float = 0.1
    templates: tuple[str, ...] | None = None
    val_fraction: float = 0.1
    publish: bool = True

    @property
    def model_name(self) -> str:
        """Name of the checkpoints in the project's ``checkpoints`` table."""
        return model_slug("densevlm", self.backbone)


class DenseVLMTrainer(Trainer):
    """Region-language alignment of the image encoder (see the module docstring)."""

    name = "densevlm"
    monitor = "val_loss"
    monitor_mode = "min"

    def __init__(self, config: Any, settings: DenseVLMSettings, **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(config, **kwargs)
        self.settings = settings
        self.stats = AlignmentStats()

    def prepare(self) -> None:
        s = self.settings
        self.clip = load_backbone(s.backbone, s.clip)
        self.start = {k: v.detach().clone() for k, v in self.clip.model.visual.state_dict().items()}
        same = s.teacher is None and s.teacher_clip is None
        self.teacher = copy.deepcopy(self.clip) if same else load_backbone(s.teacher or "", s.teacher_clip)
        with ProjectSource(s.project, kind="photo") as source:
            self.items = source.all_items()
            require_items(self.items, s.project, "photo")
            classes = [c.prompt for c in source.labels()]
            pairs = read_photo_pairs(source, self.items, None, max_side=2 * s.crop)
        names, things = build_vocabulary(classes)
        self.is_thing = torch.tensor(things)
        self.text_student = class_text_embeddings(self.clip, names, templates=s.templates)
        self.text_teacher = (self.text_student if same
                             else class_text_embeddings(self.teacher, names, templates=s.templates))
        patch = self.clip.patch_size
        size = (max(patch, s.crop // patch * patch),) * 2
        train, val = split_by_item([i.key for i in self.items], s.val_fraction)
        kw = dict(mean=self.clip.mean.tolist(), std=self.clip.std.tolist())
        self.train_ds = RegionSamples(PhotoSamples([pairs[i] for i in train], size, **kw))
        self.val_ds = RegionSamples(PhotoSamples([pairs[i] for i in val], size, **kw)) if val else None
        self.train_items = [self.items[i] for i in train]

    def build_model(self) -> nn.Module:
        self.teacher.to(self.device).model.requires_grad_(False).eval()
        return RegionEncoder(self.clip)

    def train_dataset(self) -> Any:  # noqa: ANN401
        return self.train_ds

    def val_dataset(self) -> Any:  # noqa: ANN401
        return self.val_ds

    def model_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        return model.visual.state_dict()

    def load_model_state(self, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
        model.visual.load_state_dict(state)

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        boxes = rois(batch["boxes"], batch["valid"])
        student = model(batch["image"], boxes)
        teacher = teacher_regions(self.teacher, batch["image"], boxes, mean=self.clip.mean, std=self.clip.std)
        dev, s = student.device, self.settings
        return alignment_loss(student, teacher, text_student=self.text_student.to(dev),
                              text_teacher=self.text_teacher.to(dev), is_thing=self.is_thing.to(dev), scale=s.scale,
                              threshold=s.threshold, stats=self.stats)

    def validate(self, model: nn.Module, batches: Iterator[dict[str, Any]]) -> dict[str, Any]:
        total, kept, regions = 0.0, 0, 0
        for batch in batches:
            loss = float(self.loss(model, batch))
            total += loss * max(self.stats.kept, 1)
            kept += self.stats.kept
            regions += self.stats.regions
        sums = [distributed.all_reduce_mean(v) for v in (total, float(kept), float(regions))]
        return {"val_loss": sums[0] / max(sums[1], 1e-9), "kept_fraction": sums[1] / max(sums[2], 1e-9)}

    def describe(self) -> dict[str, Any]:
        return {"train_items": len(self.train_items), "val_items": len(self.items) - len(self.train_items),
                "vocabulary": int(self.is_thing.numel()), "things": int(self.is_thing.sum())}

    def publish(self, result: FitResult, model: nn.Module) -> Published | None:
        if not self.settings.publish or result.best_state is None:
            return None
        keep = self.settings.keep_start
        blended = {k: (1.0 - keep) * v.float() + keep * self.start[k].float() if v.is_floating_point() else v
                   for k, v in result.best_state.items()}
        holder = nn.Module()
        holder.visual = copy.deepcopy(model.visual).cpu()
        holder.visual.load_state_dict(blended)
        meta = {"base": self.settings.backbone, "recipe": self.name, "metrics": result.best_metrics,
                "step": result.best_step, "keep_start": keep}
        self.published = publish_result(self, result, items=self.train_items, parent_id=None,
                                        write_weights=lambda path: save_visual_weights(holder, path, metadata=meta))
        return self.published
