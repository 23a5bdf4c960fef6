"""Synthetic training material: shape volumes in noise, two-class photos, and projects holding them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk
from PIL import Image

from engine.items import LabelSet, Volume
from engine.store import Project, Provenance


def shapes_volume(seed: int, *, depth: int = 8, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``(z, y, x)`` float32 "HU" volume and uint8 labels: a bright ball (class 1) and, on some
    slices, a brighter box (class 2), in Gaussian noise."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:depth, :size, :size]
    arr = rng.normal(0.0, 25.0, (depth, size, size)).astype(np.float32)
    lab = np.zeros((depth, size, size), dtype=np.uint8)
    c = rng.uniform(size * 0.3, size * 0.7, 2)
    cz = rng.uniform(depth * 0.3, depth * 0.7)
    r = rng.uniform(size * 0.15, size * 0.25)
    ball = ((y - c[0]) ** 2 + (x - c[1]) ** 2 + ((z - cz) * size / depth * 0.5) ** 2) < r**2
    arr[ball] += 120.0
    lab[ball] = 1
    h = int(rng.integers(size // 6, size // 4))
    by, bx = (int(v) for v in rng.integers(2, size - h - 2, 2))
    bz = int(rng.integers(0, max(depth - 4, 1)))
    box = np.zeros_like(ball)
    box[bz : bz + 4, by : by + h, bx : bx + h] = True
    arr[box] = rng.normal(260.0, 25.0, int(box.sum()))
    lab[box] = 2
    return arr, lab


def volume_project(folder: Path, seeds: list[int], *, status: str = "corrected", **kw: int) -> Path:
    """A project with one NIfTI volume per seed, annotated and marked ``status``."""
    with Project.create(folder, labels=LabelSet.from_text("organ, lesion")) as project:
        for seed in seeds:
            arr, lab = shapes_volume(seed, **kw)
            path = folder / f"vol{seed}.nii.gz"
            sitk.WriteImage(sitk.GetImageFromArray(arr), str(path))
            item = project.add_volume(Volume(arr, source=path))
            project.save_annotation(item.id, lab, provenance=Provenance.from_person("t"), status=status)  # type: ignore[arg-type]
    return folder


def two_class_photo(seed: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``(H, W, 3)`` uint8 photo and labels: a red disc (class 1) and a blue square (class 2) on
    a noisy grey background."""
    rng = np.random.default_rng(seed)
    rgb = np.clip(rng.normal(128, 20, (size, size, 3)), 0, 255).astype(np.uint8)
    lab = np.zeros((size, size), dtype=np.uint8)
    y, x = np.mgrid[:size, :size]
    cy, cx = rng.uniform(size * 0.25, size * 0.75, 2)
    r = rng.uniform(size * 0.12, size * 0.2)
    disc = (y - cy) ** 2 + (x - cx) ** 2 < r**2
    rgb[disc] = (220, 40, 40)
    lab[disc] = 1
    h = int(rng.integers(size // 6, size // 4))
    sy, sx = (int(v) for v in rng.integers(0, size - h, 2))
    sq = np.zeros_like(disc)
    sq[sy : sy + h, sx : sx + h] = True
    sq &= ~disc
    rgb[sq] = (40, 40, 220)
    lab[sq] = 2
    return rgb, lab


def photo_project(folder: Path, seeds: list[int], *, classes: str = "red disc, blue square", size: int = 64) -> Path:
    """A project with one PNG per seed, annotated and marked corrected."""
    with Project.create(folder, labels=LabelSet.from_text(classes)) as project:
        for seed in seeds:
            rgb, lab = two_class_photo(seed, size)
            path = folder / f"photo{seed}.png"
            Image.fromarray(rgb).save(path)
            item = project.add_photo(path)
            project.save_annotation(item.id, lab, provenance=Provenance.from_person("t"), status="corrected")
    return folder
