"""The dense-CLIP photo pipeline, as the reference code runs it, batched.

Stages (each a function, so the predictor can cache the expensive one):

1. :func:`resize_photo` - the short side to the strategy's size (long side at most 2048), the
   way mmseg's ``Resize(scale=(2048, S), keep_ratio=True)`` does.
2. :func:`encode_windows` - sliding windows (the references' window grid), batched through
   :func:`~engine.openvocab.strategies.encode_dense`; crops that are not patch multiples are
   padded symmetrically (as ClearCLIP does). Class-independent: computed once per photo.
3. :func:`window_logits` - patch-text cosine logits of every window, bilinearly upsampled to
   the window and averaged where windows overlap: ``(Q, h, w)`` at the working resolution.
4. Optional :func:`~engine.openvocab.pamr.pamr` refinement at the photo's size (capped) or half.
5. :func:`~engine.openvocab.labelling.label_photo` - bilinear upsampling to the photo,
   ``softmax(logit_scale * logits)`` over all names, each class keeps its best name, argmax, and
   pixels under the probability threshold become background (id 0); the same labels computed
   without ever building a full-resolution ``(Q, H, W)`` tensor (6000x4000 photos fit).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from engine.errors import ModelError
from engine.jobs import CancelToken, Progress, check_cancelled, report
from engine.openvocab.clip_model import ClipModel
from engine.openvocab.labelling import label_photo
from engine.openvocab.strategies import Strategy, encode_dense, get_strategy
from engine.openvocab.text import class_max

__all__ = [
    "SegmentSettings",
    "WindowFeatures",
    "resize_photo",
    "window_boxes",
    "encode_windows",
    "window_logits",
    "class_probabilities",
    "label_photo",
    "pamr_size",
    "patch_padding",
]

_logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class SegmentSettings:
    """How to segment a photo. ``None`` means "the strategy's reference setting".

    Attributes
    ----------
    strategy
        ``naclip`` (default), ``sclip``, ``clearclip`` or ``maskclip``.
    short_side, max_long_side
        The photo is resized so its short side is ``short_side`` and its long side at most
        ``max_long_side`` pixels (aspect kept) before inference.
    window, stride
        Sliding windows in pixels of the resized photo; ``window=0`` = the whole image at once.
    logit_scale
        Multiplier of the cosine similarities before the softmax.
    background
        Whether a background (id 0) is wanted: background names are scored too and pixels whose
        best probability is under ``prob_threshold`` become background.
    background_names
        Names scored as background; a name that is also one of the person's classes is dropped.
    prob_threshold
        See ``background``; 0 disables the threshold.
    pamr
        ``"off"``, ``"full"`` (at the photo's size, capped at ``pamr_max_side``) or ``"half"``.
    pamr_iterations, pamr_dilations
        PAMR's steps and neighbour distances (10 and (8, 16) in the references).
    batch_windows
        Windows per forward pass.
    precision
        Autocast of the image encoder: ``"fp32"``, ``"bf16"``, ``"fp16"`` (GPU only) or
        ``"auto"`` (:func:`engine.models.device.autocast_dtype`: bf16/fp16 on CUDA, fp32 on CPU).
    templates
        Prompt templates (``{}`` = the name); ``None`` = the 80 ImageNet templates.
    """

    strategy: str = "naclip"
    short_side: int | None = None
    max_long_side: int = 2048
    window: int | None = None
    stride: int | None = None
    logit_scale: float | None = None
    background: bool = True
    background_names: tuple[str, ...] | None = None
    prob_threshold: float | None = None
    pamr: str = "off"
    pamr_iterations: int = 10
    pamr_dilations: tuple[int, ...] = (8, 16)
    pamr_max_side: int = 2048
    batch_windows: int = 8
    precision: str = "auto"
    templates: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        get_strategy(self.strategy)
        if self.pamr not in ("off", "full", "half"):
            raise ValueError(f"pamr must be off, full or half, not {self.pamr!r}")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be auto, fp32, bf16 or fp16, not {self.precision!r}")
        if self.batch_windows < 1:
            raise ValueError("batch_windows must be at least 1")

    @property
    def method(self) -> Strategy:
        """The :class:`Strategy` object."""
        return get_strategy(self.strategy)

    def pick(self, name: str) -> object:
        """The effective value of a setting that defaults to the strategy's (``short_side``...)."""
        value = getattr(self, name)
        return getattr(self.method, name) if value is None else value


@dataclass(frozen=True, eq=False)
class WindowFeatures:
    """Dense features of every window of one photo (the class-independent, expensive part).

    Attributes
    ----------
    features
        ``(N, rows, cols, E)`` float32 normalised patch embeddings, one entry per window.
    boxes
        ``N`` windows as ``(y1, y2, x1, x2)`` pixel bounds in the resized photo.
    pad
        ``(left, right, top, bottom)`` padding added to every crop to reach patch multiples.
    size
        ``(h, w)`` of the resized photo.
    """

    features: torch.Tensor
    boxes: tuple[tuple[int, int, int, int], ...]
    pad: tuple[int, int, int, int]
    size: tuple[int, int]


def resize_photo(rgb: np.ndarray, short_side: int, max_long_side: int = 2048) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(1, 3, h, w)`` float32 in 0..1, resized as mmseg's keep-ratio Resize.

    The scale is ``min(max_long_side / long, short_side / short)``; sizes round half up.
    Resampling is Pillow's bilinear (antialiased when shrinking).
    """
    h, w = rgb.shape[:2]
    scale = min(max_long_side / max(h, w), short_side / min(h, w))
    nh, nw = max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5))
    if (nh, nw) != (h, w):
        rgb = np.array(Image.fromarray(rgb).resize((nw, nh), Image.Resampling.BILINEAR))
    else:
        rgb = np.array(rgb)  # a private, writable copy
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div_(255.0)


def window_boxes(h: int, w: int, window: int, stride: int) -> list[tuple[int, int, int, int]]:
    """The references' sliding-window grid over an ``h x w`` image, ``(y1, y2, x1, x2)`` each.

    ``window=0`` gives one window covering the image. Windows larger than the image shrink to it.
    """
    if window <= 0:
        return [(0, h, 0, w)]
    h_grids = max(h - window + stride - 1, 0) // stride + 1
    w_grids = max(w - window + stride - 1, 0) // stride + 1
    boxes = []
    for hi in range(h_grids):
        for wi in range(w_grids):
            y1, x1 = hi * stride, wi * stride
            y2, x2 = min(y1 + window, h), min(x1 + window, w)
            boxes.append((max(y2 - window, 0), y2, max(x2 - window, 0), x2))
    return boxes


def patch_padding(h: int, w: int, patch: int) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` padding to patch multiples, split as ClearCLIP does."""
    lr, tb = (-w) % patch, (-h) % patch
    return lr // 2, lr - lr // 2, tb // 2, tb - tb // 2


def _low_precision(clip: ClipModel, precision: str) -> tuple[torch.dtype | None, bool]:
    """``(dtype, autocast?)``: autocast on GPUs; on CPU bf16 runs a bf16 copy of the weights."""
    from engine.models.device import autocast_dtype

    try:
        dtype = autocast_dtype(clip.device, precision)
    except ValueError as err:
        raise ModelError(str(err)) from err
    return dtype, clip.device.type != "cpu"


@torch.inference_mode()
def encode_windows(clip: ClipModel, image: torch.Tensor, strategy: str | Strategy, *, window: int, stride: int,
                   batch_windows: int = 8, precision: str = "fp32", progress: Progress | None = None,
                   cancel: CancelToken | None = None) -> WindowFeatures:
    """Dense features of all sliding windows of one image, computed in batches.

    Parameters
    ----------
    image
        ``(1, 3, h, w)`` float, already normalised with the model's mean/std.
    window, stride
        In pixels; ``window=0`` runs the whole image as one window.
    """
    strategy = get_strategy(strategy)
    h, w = image.shape[-2:]
    boxes = window_boxes(h, w, window, stride)
    ch, cw = boxes[0][1] - boxes[0][0], boxes[0][3] - boxes[0][2]
    pad = patch_padding(ch, cw, clip.patch_size)
    image = image.to(clip.device)
    out: list[torch.Tensor] = []
    for start in range(0, len(boxes), batch_windows):
        check_cancelled(cancel)
        chunk = boxes[start: start + batch_windows]
        crops = torch.cat([image[..., y1:y2, x1:x2] for y1, y2, x1, x2 in chunk], dim=0)
        if any(pad):
            crops = F.pad(crops, pad)
        dtype, use_autocast = _low_precision(clip, precision)
        if dtype is None:
            feats = encode_dense(clip, crops, strategy).patches
        elif use_autocast:
            with torch.autocast(device_type=clip.device.type, dtype=dtype):
                feats = encode_dense(clip, crops, strategy).patches
        else:
            feats = encode_dense(clip, crops.to(dtype), strategy).patches
        out.append(feats.float())
        report(progress, min(start + batch_windows, len(boxes)), len(boxes), "encoding windows")
    return WindowFeatures(torch.cat(out, dim=0), tuple(boxes), pad, (int(h), int(w)))


@torch.inference_mode()
def window_logits(wf: WindowFeatures, text: torch.Tensor, *, chunk: int = 16) -> torch.Tensor:
    """Cosine logits of every name over the resized photo, ``(Q, h, w)`` float32.

    Each window's ``(Q, rows, cols)`` logits are upsampled bilinearly to its padded crop size,
    the padding is cut off, and overlapping windows are averaged (the references'
    ``forward_slide``).
    """
    text = text.to(wf.features.device, torch.float32)
    h, w = wf.size
    q = text.shape[0]
    left, right, top, bottom = wf.pad
    y1, y2, x1, x2 = wf.boxes[0]
    ph, pw = (y2 - y1) + top + bottom, (x2 - x1) + left + right
    if len(wf.boxes) == 1:
        lg = (wf.features[0] @ text.T).permute(2, 0, 1)[None]
        lg = F.interpolate(lg, size=(ph, pw), mode="bilinear", align_corners=False)
        return lg[0, :, top: top + h, left: left + w].contiguous()
    preds = torch.zeros(q, h, w, device=text.device)
    count = torch.zeros(1, h, w, device=text.device)
    for start in range(0, len(wf.boxes), chunk):
        feats = wf.features[start: start + chunk]
        lg = (feats @ text.T).permute(0, 3, 1, 2)
        lg = F.interpolate(lg, size=(ph, pw), mode="bilinear", align_corners=False)
        lg = lg[:, :, top: ph - bottom, left: pw - right]
        for i, (y1, y2, x1, x2) in enumerate(wf.boxes[start: start + chunk]):
            preds[:, y1:y2, x1:x2] += lg[i]
            count[:, y1:y2, x1:x2] += 1
    return preds / count


def class_probabilities(logits: torch.Tensor, owner: torch.Tensor, num_classes: int, logit_scale: float) -> torch.Tensor:
    """``softmax(logit_scale * logits)`` over names, best name per class: ``(Q, ...)`` -> ``(K, ...)``."""
    probs = torch.softmax(logits.float() * logit_scale, dim=0)
    return class_max(probs, owner, num_classes)


def pamr_size(photo_size: tuple[int, int], mode: str, max_side: int) -> tuple[int, int]:
    """The ``(H, W)`` PAMR runs at: the photo's size capped at ``max_side`` (``full``), or half."""
    h, w = photo_size
    scale = min(1.0, max_side / max(h, w))
    if mode == "half":
        scale *= 0.5
    return max(1, int(math.floor(h * scale + 0.5))), max(1, int(math.floor(w * scale + 0.5)))
