"""CLIP models and photo data for the open-vocabulary recipes (Cascade-CLIP, DenseVLM)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
import torch.nn.functional as F

from engine.openvocab.clip_model import ClipModel, ClipSpec, clip_from_catalog, load_clip
from engine.openvocab.text import TextEncoder
from trainers.data import AnnotationSource, ClassMap, TrainingItem

__all__ = ["load_backbone", "class_text_embeddings", "read_photo_pairs", "model_slug", "default_stages"]

_logger = logging.getLogger(__name__)


def load_backbone(name: str, spec: ClipSpec | None = None) -> ClipModel:
    """The CLIP model: ``spec`` when given (tests: tiny random configs), else the catalog's ``name``
    through the weights manager (nothing downloads; a missing file says what to run)."""
    return load_clip(spec) if spec is not None else clip_from_catalog(name)


def class_text_embeddings(clip: ClipModel, prompts: Sequence[str], *,
                          templates: Sequence[str] | None = None) -> torch.Tensor:
    """``(K, E)`` float32 normalised embeddings, one per class: the mean of its synonyms' embeddings
    (``"cat; kitten"``), each through the prompt ``templates`` (default the 80 ImageNet ones),
    renormalised."""
    encoder = TextEncoder(clip, templates=templates)
    rows = []
    for prompt in prompts:
        names = [s.strip() for s in prompt.split(";") if s.strip()]
        rows.append(F.normalize(encoder.embed_names(names).float().mean(dim=0), dim=-1))
    return torch.stack(rows).cpu()


def read_photo_pairs(source: AnnotationSource, items: Sequence[TrainingItem], class_map: ClassMap | None, *,
                     max_side: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(rgb, channels)`` per item; without a class map (unlabelled use) the channels are zeros.

    Photos whose longer side exceeds ``max_side`` are shrunk (area filter; labels nearest) so that
    hundreds of camera photos fit in memory; training crops are much smaller anyway.
    """
    out = []
    for item in items:
        rgb = source.read_photo(item).rgb
        lab = (class_map.to_channels(source.read_labels(item)) if class_map is not None
               else np.zeros(rgb.shape[:2], dtype=np.uint8))
        scale = max_side / max(rgb.shape[:2]) if max_side else 1.0
        if scale < 1.0:
            size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
            rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX))
            lab = np.asarray(Image.fromarray(lab).resize(size, Image.Resampling.NEAREST))
        out.append((rgb, lab))
    return out


def model_slug(prefix: str, backbone: str) -> str:
    """A catalog-style ``family.tag`` name for checkpoints made on ``backbone``."""
    return f"{prefix}.{re.sub(r'[^A-Za-z0-9_-]+', '-', backbone).strip('-')}"


def default_stages(depth: int) -> tuple[tuple[int, ...], ...]:
    """Tapped blocks per stage: the paper's {5,6,7}, {8,9,10} for 12 blocks, the same share of
    the blocks (5/12 .. depth-2, in two halves) for other depths."""
    taps = list(range(depth * 5 // 12, depth - 1)) or [0]
    half = (len(taps) + 1) // 2
    return tuple(tuple(s) for s in (taps[:half], taps[half:]) if s)
