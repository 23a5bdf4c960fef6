"""Augmentations for training samples, each driven by one per-sample seed (exact on resume).

Slices (volumes): flips, rotation, scale, intensity scale/shift/gamma, then crop or pad to the
training size. Photos: random resized crop, horizontal flip, colour jitter. Images are float
tensors ``(C, H, W)``; targets are int64 ``(H, W)`` class indices with ``ignore`` (255) where a
pixel must not count (padding, outside the rotated image).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["SliceAugment", "PhotoAugment", "IGNORE", "augment_slice", "augment_photo", "fit_to_size"]

IGNORE = 255


@dataclass(frozen=True)
class SliceAugment:
    """Ranges for slice augmentation (set ``enabled=False`` for none).

    Attributes
    ----------
    flip
        Probability of a left-right and (independently) of an up-down flip.
    rotate_deg
        Rotation drawn uniformly in ``[-rotate_deg, rotate_deg]``.
    scale
        Zoom factor range.
    intensity_scale, intensity_shift
        ``x * a + b`` with ``a`` in ``1 +- intensity_scale`` and ``b`` in ``+- intensity_shift``
        (in units of the normalised intensities).
    shift
        Translation range as a fraction of the half-size of the slice.
    """

    enabled: bool = True
    flip: float = 0.5
    rotate_deg: float = 15.0
    scale: tuple[float, float] = (0.85, 1.2)
    intensity_scale: float = 0.1
    intensity_shift: float = 0.1
    shift: float = 0.1


@dataclass(frozen=True)
class PhotoAugment:
    """Ranges for photo augmentation.

    Attributes
    ----------
    crop_scale
        Area fraction of the random resized crop.
    crop_ratio
        Aspect-ratio range of the crop.
    flip
        Probability of a horizontal flip.
    brightness, contrast, saturation
        Colour jitter strengths (factor in ``1 +- value``).
    """

    enabled: bool = True
    crop_scale: tuple[float, float] = (0.35, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: float = 0.5
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.25


def _warp(image: torch.Tensor, target: torch.Tensor, theta: torch.Tensor, size: tuple[int, int]
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the affine ``theta`` (2x3, normalised coordinates) and sample at ``size``."""
    grid = F.affine_grid(theta[None], [1, image.shape[0], *size], align_corners=False)
    img = F.grid_sample(image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
    # Labels: nearest, outside the source -> ignore (one-off shift so 0 stays distinguishable).
    lab = F.grid_sample((target[None, None].float() + 1.0), grid, mode="nearest", padding_mode="zeros",
                        align_corners=False)[0, 0]
    lab = lab.long() - 1
    lab[lab < 0] = IGNORE
    return img, lab


def fit_to_size(image: torch.Tensor, target: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize keeping the aspect so the image fits ``size``, pad the rest (target: ``IGNORE``).

    Parameters
    ----------
    image
        ``(C, H, W)`` float.
    target
        ``(H, W)`` int64.
    """
    h, w = image.shape[-2:]
    s = min(size[0] / h, size[1] / w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    if (nh, nw) != (h, w):
        image = F.interpolate(image[None], size=(nh, nw), mode="bilinear", align_corners=False, antialias=s < 1)[0]
        target = F.interpolate(target[None, None].float(), size=(nh, nw), mode="nearest")[0, 0].long()
    out_img = image.new_zeros((image.shape[0], *size))
    out_lab = torch.full(size, IGNORE, dtype=torch.long)
    out_img[:, :nh, :nw] = image
    out_lab[:nh, :nw] = target
    return out_img, out_lab


def augment_slice(image: torch.Tensor, target: torch.Tensor, seed: int, *, cfg: SliceAugment,
                  size: tuple[int, int], normalise: Callable[[torch.Tensor], torch.Tensor] | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment one slice and bring it to ``size``.

    Intensity changes apply to ``image`` as given (unit range), then ``normalise``, then the
    geometric warp, whose outside is 0 *after* normalisation (as the inference padding is).

    Parameters
    ----------
    image
        ``(C, H, W)`` float32 intensities in ``[0, 1]`` (C = input channels, 2.5D neighbours).
    target
        ``(H, W)`` int64 class indices.
    seed
        The draw's seed: the same seed gives the same result.
    normalise
        ``(1, C, H, W) -> (1, C, H, W)``, the model's input normalisation (may work in place).
    """
    norm = normalise or (lambda x: x)
    if not cfg.enabled:
        return fit_to_size(norm(image[None].clone())[0], target, size)
    rng = np.random.default_rng(seed)
    h, w = image.shape[-2:]
    angle = math.radians(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg))
    zoom = rng.uniform(*cfg.scale)
    fx = -1.0 if rng.random() < cfg.flip else 1.0
    fy = -1.0 if rng.random() < cfg.flip else 1.0
    tx, ty = rng.uniform(-cfg.shift, cfg.shift, 2) if cfg.shift else (0.0, 0.0)
    a = 1.0 + rng.uniform(-cfg.intensity_scale, cfg.intensity_scale)
    b = rng.uniform(-cfg.intensity_shift, cfg.intensity_shift)
    image = norm((image * a + b)[None])[0]
    # Output normalised coords -> output pixels -> (rotate, flip, zoom) -> source pixels -> source normalised.
    fit = min(size[0] / h, size[1] / w)  # the whole slice fits the output at zoom 1
    c, s = math.cos(angle), math.sin(angle)
    rot = torch.tensor([[c * fx, -s * fy], [s * fx, c * fy]], dtype=torch.float64) / (zoom * fit)
    d_out = torch.diag(torch.tensor([size[1] / 2.0, size[0] / 2.0], dtype=torch.float64))
    d_in = torch.diag(torch.tensor([2.0 / w, 2.0 / h], dtype=torch.float64))
    theta = torch.cat([d_in @ rot @ d_out, torch.tensor([[tx], [ty]], dtype=torch.float64)], dim=1).float()
    return _warp(image, target, theta, size)


def augment_photo(rgb: np.ndarray, target: np.ndarray, seed: int, *, cfg: PhotoAugment,
                  size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Random resized crop, flip and colour jitter of a photo.

    Parameters
    ----------
    rgb
        ``(H, W, 3)`` uint8.
    target
        ``(H, W)`` int64 class indices.

    Returns
    -------
    image, target
        ``(3, size[0], size[1])`` float32 in ``[0, 1]`` (not yet normalised) and int64 labels.
    """
    if not cfg.enabled:
        image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)
        return fit_to_size(image, torch.from_numpy(np.ascontiguousarray(target)).long(), size)
    rng = np.random.default_rng(seed)
    h, w = rgb.shape[:2]
    area = h * w
    ch, cw = h, w
    for _ in range(10):  # torchvision's RandomResizedCrop sampling
        target_area = area * rng.uniform(*cfg.crop_scale)
        ratio = math.exp(rng.uniform(math.log(cfg.crop_ratio[0]), math.log(cfg.crop_ratio[1])))
        cw_try, ch_try = round(math.sqrt(target_area * ratio)), round(math.sqrt(target_area / ratio))
        if 0 < cw_try <= w and 0 < ch_try <= h:
            ch, cw = ch_try, cw_try
            break
    y0 = int(rng.integers(0, h - ch + 1))
    x0 = int(rng.integers(0, w - cw + 1))
    # Crop the uint8 pixels first: only the crop is converted to float.
    image = torch.from_numpy(np.ascontiguousarray(rgb[y0 : y0 + ch, x0 : x0 + cw])).permute(2, 0, 1).float() / 255.0
    lab = torch.from_numpy(np.ascontiguousarray(target[y0 : y0 + ch, x0 : x0 + cw])).long()
    image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    lab = F.interpolate(lab[None, None].float(), size=size, mode="nearest")[0, 0].long()
    if rng.random() < cfg.flip:
        image, lab = image.flip(-1), lab.flip(-1)
    bright = 1.0 + rng.uniform(-cfg.brightness, cfg.brightness)
    contrast = 1.0 + rng.uniform(-cfg.contrast, cfg.contrast)
    sat = 1.0 + rng.uniform(-cfg.saturation, cfg.saturation)
    image = image * bright
    mean = image.mean()
    image = (image - mean) * contrast + mean
    grey = (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None]
    image = (image - grey) * sat + grey
    return image.clamp_(0.0, 1.0), lab
