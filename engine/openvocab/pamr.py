"""PAMR: pixel-adaptive mask refinement (Araslanov & Roth, CVPR 2020), as NACLIP and SCLIP use it.

Each iteration replaces every pixel's class scores by an average of its neighbours' scores (8
neighbours at each dilation), weighted by a softmax over the neighbours of their colour
similarity: ``-|I(p) - I(n)| / (0.1 * local std)``, averaged over the image channels.

This implementation computes the same thing as the reference ``pamr.py`` (visinf/1-stage-wseg,
copied into NACLIP and SCLIP) without materialising the ``(B, C, 8 * len(dilations), H, W)``
neighbour tensor: it loops over the neighbours and accumulates, so memory stays at a few
``(B, C, H, W)`` buffers (the reference needs 16x that with two dilations).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["pamr"]

_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def _shifted(padded: torch.Tensor, pad: int, dy: int, dx: int, h: int, w: int) -> torch.Tensor:
    """The ``(B, C, h, w)`` view of ``padded`` whose pixel ``p`` holds the input at ``p + (dy, dx)``."""
    return padded[..., pad + dy: pad + dy + h, pad + dx: pad + dx + w]


def pamr(image: torch.Tensor, mask: torch.Tensor, *, iterations: int = 10,
         dilations: Sequence[int] = (8, 16), class_chunk: int = 8) -> torch.Tensor:
    """Refine class scores along image edges.

    Parameters
    ----------
    image
        ``(B, K, H, W)`` float image (normalised RGB in the references).
    mask
        ``(B, C, h, w)`` float class scores; resized to ``(H, W)`` first (bilinear,
        ``align_corners=True``, as the reference).
    iterations
        Number of propagation steps (10 in NACLIP/SCLIP).
    dilations
        Neighbour distances in pixels ((8, 16) in NACLIP/SCLIP).
    class_chunk
        Classes refined together (memory: about ``3 * class_chunk`` ``(H, W)`` planes).

    Returns
    -------
    torch.Tensor
        ``(B, C, H, W)`` refined scores, same dtype as ``image``.
    """
    b, k, h, w = image.shape
    mask = F.interpolate(mask.to(image.dtype), size=(h, w), mode="bilinear", align_corners=True)
    pad = max(dilations)
    img_p = F.pad(image, [pad] * 4, mode="replicate")
    # local standard deviation over the 3x3 neighbourhoods of every dilation (centre included each time)
    samples = [(d * dy, d * dx) for d in dilations for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    mean = torch.zeros_like(image)
    for dy, dx in samples:
        mean += _shifted(img_p, pad, dy, dx, h, w)
    mean /= len(samples)
    var = torch.zeros_like(image)
    for dy, dx in samples:
        var += (_shifted(img_p, pad, dy, dx, h, w) - mean) ** 2
    std = (var / (len(samples) - 1)).sqrt()
    denom = 1e-8 + 0.1 * std
    neighbours = [(d * dy, d * dx) for d in dilations for dy, dx in _OFFSETS]
    logits = torch.stack(
        [(-(image - _shifted(img_p, pad, dy, dx, h, w)).abs() / denom).mean(dim=1) for dy, dx in neighbours], dim=1
    )  # (B, P, H, W)
    weights = torch.softmax(logits, dim=1)
    del logits, img_p, mean, var, std, denom
    # classes are refined independently: a few at a time keeps memory flat for many classes
    return torch.cat([_propagate(mask[:, c: c + class_chunk], weights, neighbours, pad, iterations)
                      for c in range(0, mask.shape[1], class_chunk)], dim=1)


def _propagate(mask: torch.Tensor, weights: torch.Tensor, neighbours: list[tuple[int, int]], pad: int,
               iterations: int) -> torch.Tensor:
    """``iterations`` steps of ``mask(p) <- sum_n weights[n](p) * mask(p + offset_n)``."""
    h, w = mask.shape[-2:]
    for _ in range(iterations):
        mask_p = F.pad(mask, [pad] * 4, mode="replicate")
        out = torch.zeros_like(mask)
        for i, (dy, dx) in enumerate(neighbours):
            out += _shifted(mask_p, pad, dy, dx, h, w) * weights[:, i: i + 1]
        mask = out
    return mask
