"""Region-language alignment pieces (DenseVLM style): grid regions, region features, the loss.

* :class:`RegionSamples`: photo crops with a random grid of boxes (2..6 rows and columns, at most
  36 boxes), drawn from the sample's seed.
* :class:`RegionEncoder`: the student's dense features (the last block skips q-k attention:
  MaskCLIP's value path, :func:`engine.openvocab.strategies.encode_dense` ``"maskclip"``), pooled
  per box by RoIAlign and L2-normalised.
* :func:`teacher_regions`: the frozen teacher embeds each box's crop as an image.
* :func:`alignment_loss`: categories retrieved by the teacher, regions whose best probability is
  at most the threshold dropped, thing regions aligned over thing categories, stuff regions over
  all, ``KL(teacher || student)`` at logit scale 100.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset
from torchvision.ops import roi_align

from engine.openvocab.clip_model import ClipModel
from engine.openvocab.strategies import encode_dense
from trainers.data import PhotoSamples
from trainers.sampling import Draw

__all__ = ["RegionSamples", "RegionEncoder", "teacher_regions", "alignment_loss", "AlignmentStats", "MAX_BOXES"]

MAX_BOXES = 36


def grid_boxes(seed: int, size: tuple[int, int], *, min_cells: int = 2, max_cells: int = 6) -> np.ndarray:
    """``(rows * cols, 4)`` float32 ``x1, y1, x2, y2`` pixel boxes of a random grid over ``size``."""
    rng = np.random.default_rng(seed)
    rows, cols = (int(v) for v in rng.integers(min_cells, max_cells + 1, 2))
    h, w = size
    ys, xs = np.linspace(0, h, rows + 1), np.linspace(0, w, cols + 1)
    return np.asarray([(xs[c], ys[r], xs[c + 1], ys[r + 1]) for r in range(rows) for c in range(cols)],
                      dtype=np.float32)


class RegionSamples(Dataset):
    """Photo crops (``PhotoSamples``) plus ``boxes`` ``(36, 4)`` and ``valid`` ``(36,)`` bool."""

    def __init__(self, photos: PhotoSamples) -> None:
        self.photos = photos

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, draw: Draw) -> dict[str, torch.Tensor]:
        sample = self.photos[draw]
        boxes = grid_boxes(draw.seed + 1, self.photos.size)[:MAX_BOXES]
        padded = np.zeros((MAX_BOXES, 4), dtype=np.float32)
        padded[: len(boxes)] = boxes
        valid = np.zeros(MAX_BOXES, dtype=bool)
        valid[: len(boxes)] = True
        return {"image": sample["image"], "boxes": torch.from_numpy(padded), "valid": torch.from_numpy(valid)}


def rois(boxes: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``(N, 5)`` RoIAlign boxes ``(batch index, x1, y1, x2, y2)`` of the valid boxes."""
    index = torch.arange(boxes.shape[0], device=boxes.device, dtype=boxes.dtype)[:, None].expand(-1, boxes.shape[1])
    return torch.cat([index[valid][:, None], boxes[valid]], dim=1)


class RegionEncoder(nn.Module):
    """The student: ``(images, rois) -> (N, E)`` normalised region embeddings.

    Its only submodule is the CLIP image tower (trainable; the position embedding stays frozen,
    being resized for other crop sizes).
    """

    def __init__(self, clip: ClipModel) -> None:
        super().__init__()
        self.visual = clip.model.visual
        self._clip = [clip]  # not a submodule: the text tower is not trained
        self.visual.requires_grad_(True)
        self.visual.positional_embedding.requires_grad_(False)

    def forward(self, images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        clip = self._clip[0]
        feats = encode_dense(clip, images, "maskclip").patches.permute(0, 3, 1, 2)  # (B, E, h, w)
        pooled = roi_align(feats.float(), boxes.float(), (1, 1), spatial_scale=1.0 / clip.patch_size,
                           sampling_ratio=-1, aligned=True)
        return F.normalize(pooled.flatten(1), dim=-1)


@torch.no_grad()
def teacher_regions(teacher: ClipModel, images: torch.Tensor, boxes: torch.Tensor, *,
                    mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``(N, E_t)`` normalised teacher embeddings of each box's crop, resized to the teacher's native
    input (``images`` are normalised with the student's ``mean``/``std``; the crops get the teacher's)."""
    size = tuple(int(g) * teacher.patch_size for g in teacher.native_grid)
    crops = roi_align(images.float(), boxes.float(), size, spatial_scale=1.0, sampling_ratio=2, aligned=True)
    unit = crops * std.view(1, 3, 1, 1).to(crops) + mean.view(1, 3, 1, 1).to(crops)
    return F.normalize(teacher.model.encode_image(teacher.normalize(unit)).float(), dim=-1)


@dataclass
class AlignmentStats:
    """Regions of the last batch: how many there were, how many passed the filter, how many were things."""

    regions: int = 0
    kept: int = 0
    things: int = 0


def alignment_loss(student: torch.Tensor, teacher: torch.Tensor, *, text_student: torch.Tensor,
                   text_teacher: torch.Tensor, is_thing: torch.Tensor, scale: float = 100.0,
                   threshold: float = 0.3, stats: AlignmentStats | None = None) -> torch.Tensor:
    """Decoupled region-category alignment, ``KL(teacher || student)`` averaged over kept regions.

    Parameters
    ----------
    student, teacher
        ``(N, E_s)`` and ``(N, E_t)`` normalised region embeddings.
    text_student, text_teacher
        ``(V, E_s)`` and ``(V, E_t)`` normalised category embeddings (each model's text tower).
    is_thing
        ``(V,)`` bool.
    """
    s_logits = scale * student.float() @ text_student.float().T
    t_logits = scale * teacher.float() @ text_teacher.float().T
    conf, category = t_logits.softmax(dim=-1).max(dim=-1)
    keep = conf > threshold
    thing_region = is_thing[category] & keep
    stuff_region = ~is_thing[category] & keep
    if stats is not None:
        stats.regions, stats.kept, stats.things = len(conf), int(keep.sum()), int(thing_region.sum())
    total = s_logits.sum() * 0.0  # keeps the graph (and DDP's gradient hooks) when nothing is kept
    for rows, cols in ((thing_region, is_thing), (stuff_region, torch.ones_like(is_thing))):
        if rows.any():
            s = s_logits[rows][:, cols].log_softmax(dim=-1)
            t = t_logits[rows][:, cols].log_softmax(dim=-1)
            total = total + F.kl_div(s, t, log_target=True, reduction="sum")
    return total / keep.sum().clamp_min(1)
