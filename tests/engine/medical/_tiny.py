"""Tiny MCANet checkpoints for fast CPU tests (the registered ``test`` variant, random weights)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from engine.medical.checkpoint import (
    IntensityWindow,
    MCANetMeta,
    build_model,
    save_mcanet_checkpoint,
    sigmoid_classes,
    softmax_classes,
)
from engine.medical.mcanet import MCANet

CT_META = MCANetMeta(
    variant="test",
    classes=softmax_classes(["liver", "spleen"]),
    modality="CT",
    window=IntensityWindow("ct", center=40.0, width=400.0),
    spacing=(1.0, 1.0),
    tile_size=(64, 64),
    image_size=16,
)


def tiny_model(meta: MCANetMeta, seed: int = 0) -> MCANet:
    """A random ``test``-variant network shaped for ``meta`` (eval mode); biases nudged so that
    every class wins somewhere."""
    torch.manual_seed(seed)
    model = build_model(meta).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("conv_seg.weight"):
                p.mul_(20.0)
    return model


def tiny_checkpoint(folder: Path, name: str = "tiny.safetensors", seed: int = 0, **changes: object) -> Path:
    """Write a tiny checkpoint (``CT_META`` with ``changes``) and return its path."""
    meta = replace(CT_META, **changes)  # type: ignore[arg-type]
    path = folder / name
    save_mcanet_checkpoint(path, tiny_model(meta, seed), meta)
    return path


__all__ = ["CT_META", "tiny_model", "tiny_checkpoint", "sigmoid_classes", "softmax_classes"]
