"""Class ids at photo resolution from low-resolution logits, exactly and cheaply.

The references upsample the ``(Q, h, w)`` name logits bilinearly to the photo, take a softmax
over names, keep each class's best name, take the argmax, and set pixels whose best probability
is under a threshold to background. At 6000x4000 with 46 names that is ~1.1e9 floats per step.

Two facts make almost all of that unnecessary while giving the same labels:

* The class of the best name is the argmax of the logits themselves, and the best probability
  is ``1 / z`` with ``z = sum_r exp(s * (l_r - l_max))``: no softmax over classes is needed.
* A bilinearly upsampled pixel is a convex combination of its 4 source pixels. If the same name
  is the argmax at all 4, it is the argmax at every pixel between them (each difference
  ``l_q - l_r`` stays positive under convex combination); and ``z`` at such a pixel is at most
  the same combination of the corners' ``z`` (Jensen: exp is convex), so when all 4 corners
  pass the threshold, so does every pixel between them.

So each source cell whose 4 corners agree and pass is labelled without computing anything per
pixel; only the other output pixels (near class edges and uncertain areas) get their logits
interpolated, in bounded chunks. Row strips where most pixels are uncertain are upsampled whole
(still strip by strip), which is cheaper than gathering.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine.jobs import CancelToken, check_cancelled

__all__ = ["label_photo", "CHUNK_ELEMENTS"]

CHUNK_ELEMENTS = 1 << 23
"""Floats per chunk: ``names x pixels`` of ambiguous pixels, ``names x rows x W`` per row strip."""

_DENSE_FRACTION = 0.2  # above this share of ambiguous pixels, a strip is upsampled whole


def _source_coords(out_size: int, in_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PyTorch's bilinear (``align_corners=False``) source index, next index and weight per output."""
    x = ((torch.arange(out_size, dtype=torch.float32, device=device) + 0.5) * (in_size / out_size) - 0.5).clamp_(min=0)
    i0 = x.long().clamp_(max=in_size - 1)
    i1 = (i0 + 1).clamp_(max=in_size - 1)
    return i0, i1, x - i0.float()


def _ambiguous(src_hwq: torch.Tensor, name_ids: torch.Tensor, ys: tuple[torch.Tensor, ...],
               xs: tuple[torch.Tensor, ...], rows: torch.Tensor, cols: torch.Tensor, logit_scale: float,
               prob_threshold: float) -> torch.Tensor:
    """Exact ids of output pixels ``(rows, cols)`` (1-D index tensors); ``src_hwq`` is ``(h, w, Q)``."""
    y0, y1, ly = (t[rows] for t in ys)
    x0, x1, lx = (t[cols] for t in xs)
    ly, lx = ly.unsqueeze(1), lx.unsqueeze(1)
    top = torch.lerp(src_hwq[y0, x0], src_hwq[y0, x1], lx)
    bottom = torch.lerp(src_hwq[y1, x0], src_hwq[y1, x1], lx)
    logits = torch.lerp(top, bottom, ly)  # (n, Q)
    best, arg = logits.max(dim=1, keepdim=True)
    ids = name_ids[arg[:, 0]]
    if prob_threshold > 0:
        z = (logits - best).mul_(logit_scale).exp_().sum(dim=1)
        ids[z > 1.0 / prob_threshold] = 0
    return ids


def _dense_rows(src: torch.Tensor, name_ids: torch.Tensor, ys: tuple[torch.Tensor, ...], out_w: int, r0: int,
                r1: int, logit_scale: float, prob_threshold: float) -> torch.Tensor:
    """Exact ids of output rows ``r0:r1`` by upsampling them whole (for strips with few uniform cells)."""
    y0, y1, ly = (t[r0:r1] for t in ys)
    ly = ly.view(1, -1, 1)
    rows = src[:, y0] * (1 - ly) + src[:, y1] * ly  # (Q, rows, w)
    if rows.shape[-1] != out_w:
        rows = F.interpolate(rows[None], size=(r1 - r0, out_w), mode="bilinear", align_corners=False)[0]
    best, arg = rows.max(dim=0)
    ids = name_ids[arg]
    if prob_threshold > 0:
        z = (rows - best).mul_(logit_scale).exp_().sum(dim=0)
        ids[z > 1.0 / prob_threshold] = 0
    return ids


@torch.inference_mode()
def label_photo(logits: torch.Tensor, owner: torch.Tensor, class_ids: torch.Tensor, out_size: tuple[int, int], *,
                logit_scale: float, prob_threshold: float, dtype: np.dtype = np.dtype(np.uint8),
                cancel: CancelToken | None = None) -> np.ndarray:
    """Class ids of every photo pixel, as the references compute them (see the module docstring).

    Parameters
    ----------
    logits
        ``(Q, h, w)`` cosine logits of every name at the working resolution.
    owner
        ``(Q,)`` class index (0..K-1) of each name.
    class_ids
        ``(K,)`` label id of each class index; 0 for the background class.
    out_size
        ``(H, W)`` of the photo (any size; usually larger than ``(h, w)``).
    logit_scale
        Multiplier of the logits before the softmax.
    prob_threshold
        Pixels whose best probability is below it get id 0 (0 disables it).

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` ``dtype`` label ids.
    """
    out_h, out_w = out_size
    src = logits.float()
    q, h, w = src.shape
    dev = src.device
    name_ids = class_ids.to(dev)[owner.to(dev)]
    best, arg = src.max(dim=0)
    if prob_threshold > 0:
        sure = (src - best).mul_(logit_scale).exp_().sum(dim=0) <= 1.0 / prob_threshold
    else:
        sure = torch.ones(h, w, dtype=torch.bool, device=dev)
    down = torch.arange(h, device=dev).add_(1).clamp_(max=h - 1)
    right = torch.arange(w, device=dev).add_(1).clamp_(max=w - 1)
    same = (arg == arg[down]) & (arg == arg[:, right]) & (arg == arg[down][:, right])
    sure_cell = sure & sure[down] & sure[:, right] & sure[down][:, right]
    # the cell whose top-left corner is (i, j): its label when uniform, else -1
    cell = torch.where(same & sure_cell, name_ids[arg], torch.full_like(arg, -1))
    src_hwq = src.permute(1, 2, 0).contiguous()  # one name vector per pixel: cheap gathers
    ys = _source_coords(out_h, h, dev)
    xs = _source_coords(out_w, w, dev)
    labels = np.zeros((out_h, out_w), dtype=dtype)
    step = max(1, CHUNK_ELEMENTS // max(1, q * out_w))
    chunk = max(1, CHUNK_ELEMENTS // max(1, q))
    for r0 in range(0, out_h, step):
        check_cancelled(cancel)
        r1 = min(out_h, r0 + step)
        strip = cell[ys[0][r0:r1]][:, xs[0]]  # (rows, W)
        todo = strip < 0
        if float(todo.float().mean()) > _DENSE_FRACTION:  # gathers cost more than upsampling it all
            labels[r0:r1] = _dense_rows(src, name_ids, ys, out_w, r0, r1, logit_scale, prob_threshold).cpu().numpy()
            continue
        rows, cols = torch.nonzero(todo, as_tuple=True)
        for k in range(0, rows.numel(), chunk):
            rr, cc = rows[k: k + chunk], cols[k: k + chunk]
            strip[rr, cc] = _ambiguous(src_hwq, name_ids, ys, xs, rr + r0, cc, logit_scale, prob_threshold)
        labels[r0:r1] = strip.cpu().numpy().astype(dtype, copy=False)
    return labels
