"""Segment a volume (slice by slice) or a photo with an MCANet checkpoint.

:func:`segment` runs the whole path: intensity window exactly as the checkpoint was trained,
in-plane resampling to the model's spacing, 2.5D channel stacking, padding or tiling to the
network input, batched forward passes (autocast on GPU), resampling of the logits back to the
item's grid, per-class probabilities kept as uint8, and a :class:`~engine.items.LabelMap` on the
item's own grid. Memory stays bounded: only one batch of slices is ever converted to float.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from engine.errors import ModelError
from engine.items import LabelMap, LabelSet, Photo, Volume
from engine.jobs import CancelToken, Progress, check_cancelled, report
from engine.medical.checkpoint import MCANetMeta, load_mcanet_checkpoint
from engine.medical.fast import FusedMCANet, fuse_for_inference, tune_cpu_allocator
from engine.medical.mcanet import MCANet
from engine.medical.preprocess import (
    channel_indices,
    count_nans,
    intensity_range,
    normalise,
    pad_to_multiple,
    resampled_size,
    resize,
    tile_starts,
    to_unit,
)
from engine.models.device import autocast_dtype, choose_device

__all__ = ["InferenceOptions", "Segmentation", "segment", "forward_slices"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InferenceOptions:
    """How to run.

    Attributes
    ----------
    batch_size
        Slices per forward pass.
    device, precision
        See :func:`engine.models.device.choose_device` / :func:`~engine.models.device.autocast_dtype`
        (``"auto"``: bf16/fp16 autocast on CUDA, fp32 elsewhere; ``"bf16"`` also on CPU).
    fused
        Run the fused inference network (:mod:`engine.medical.fast`; same logits up to fp32
        rounding) instead of the plain module.
    tile_overlap
        Overlap of neighbouring tiles when a slice is larger than the model input.
    keep_probabilities
        Also return the per-class probabilities (uint8, 255 = 1.0).
    nan_policy
        ``"error"``: a float volume with NaN voxels raises :class:`ModelError`; ``"zero"``: NaN
        voxels are treated as the bottom of the window.
    """

    batch_size: int = 8
    device: str = "auto"
    precision: str = "auto"
    fused: bool = True
    tile_overlap: float = 0.25
    keep_probabilities: bool = True
    nan_policy: Literal["error", "zero"] = "error"


@dataclass(frozen=True, eq=False)
class Segmentation:
    """The result of :func:`segment`.

    Attributes
    ----------
    label_map
        Class ids on the item's grid: ``(z, y, x)`` for volumes, ``(H, W)`` for photos.
    probabilities
        ``(K, *grid)`` uint8 (``round(255 p)``), one plane per entry of ``class_ids``, or ``None``.
    class_ids
        The class id of each probability plane (ids of ``label_map.labels``).
    meta
        The checkpoint's metadata.
    seconds
        Wall-clock time of the run.
    """

    label_map: LabelMap
    probabilities: np.ndarray | None
    class_ids: tuple[int, ...]
    meta: MCANetMeta
    seconds: float


def _resolve_labels(meta: MCANetMeta, labels: LabelSet | None, source: Path | None) -> tuple[LabelSet, np.ndarray]:
    """The label set and a lookup ``channel -> class id`` (``(out_channels,)`` int64)."""
    lut = np.zeros(max(meta.out_channels, 1), dtype=np.int64)
    if labels is None:
        labels = LabelSet()
        for c in sorted(meta.classes, key=lambda c: c.id):
            labels.add(c.name, id=c.id)
    missing = [c.name for c in meta.classes if labels.find(c.name) is None]
    if missing:
        known = ", ".join(c.name for c in labels) or "none"
        raise ModelError(f"the model predicts {', '.join(missing)}, which the label set does not have "
                         f"(it has: {known}); add the classes or pick another model", source)
    for c in meta.classes:
        lut[c.channel] = labels.find(c.name).id  # type: ignore[union-attr]
    return labels, lut


def _check_modality(item: Volume | Photo, meta: MCANetMeta, source: Path | None) -> None:
    want = meta.modality.upper()
    if isinstance(item, Photo):
        if want not in ("", "PHOTO"):
            raise ModelError(f"the model was trained on {meta.modality} volumes, not photos; "
                             "pick a model for photos", source)
        if meta.in_channels != 3 or meta.context_slices:
            raise ModelError(f"the model takes {meta.in_channels} channels; photos have 3", source)
        return
    have = item.modality.upper()
    if want == "PHOTO":
        raise ModelError(f"the model was trained on photos, not on {have or 'volume'} data; "
                         "pick a model for this modality", source)
    if want and have and want != have:
        raise ModelError(f"this volume is {have}, but the model was trained on {want}; "
                         f"there is no model for {have} here", source)
    if want and not have:
        _logger.warning("the volume has no modality; using the %s model anyway", want)


def _prepare(model: MCANet | FusedMCANet, meta: MCANetMeta, options: InferenceOptions,
             source: Path | None) -> tuple[torch.nn.Module, torch.device, torch.dtype | None]:
    try:
        device = choose_device(options.device).device
        amp = autocast_dtype(device, options.precision)
    except ValueError as err:
        raise ModelError(str(err), source) from err
    out_ch = model.out_channels if isinstance(model, FusedMCANet) else model.decode_head.out_channels
    in_ch = model.in_channels if isinstance(model, FusedMCANet) else model.backbone.in_channels
    if out_ch != meta.out_channels or in_ch != meta.in_channels:
        raise ModelError(f"the network ({in_ch} input / {out_ch} output channels) does not match its "
                         f"metadata ({meta.in_channels} / {meta.out_channels} for {len(meta.classes)} classes)",
                         source)
    if options.fused and isinstance(model, MCANet):
        model = fuse_for_inference(model)
    if device.type == "cpu":
        tune_cpu_allocator()
    return model.to(device).eval(), device, amp


def forward_slices(net: torch.nn.Module, x: torch.Tensor, meta: MCANetMeta, *, overlap: float = 0.25,
                   amp: torch.dtype | None = None) -> torch.Tensor:
    """Logits of normalised slices ``x`` ``(B, C, h, w)``: one padded pass when the slice fits
    the model's tile, else overlapping tiles averaged. Returns ``(B, out, h, w)`` float32."""
    h, w = x.shape[-2:]
    th, tw = meta.tile_size
    ctx = torch.autocast(x.device.type, dtype=amp) if amp is not None else contextlib.nullcontext()
    with ctx:
        if h <= th and w <= tw:
            return net(pad_to_multiple(x, 32))[..., :h, :w].float()
        acc = torch.zeros((x.shape[0], meta.out_channels, h, w), dtype=torch.float32, device=x.device)
        count = torch.zeros((1, 1, h, w), dtype=torch.float32, device=x.device)
        for y0 in tile_starts(h, th, overlap):
            for x0 in tile_starts(w, tw, overlap):
                crop = x[..., y0:y0 + th, x0:x0 + tw]
                ch, cw = crop.shape[-2:]
                acc[..., y0:y0 + ch, x0:x0 + cw] += net(pad_to_multiple(crop, 32))[..., :ch, :cw].float()
                count[..., y0:y0 + ch, x0:x0 + cw] += 1.0
        return acc.div_(count)


def _decide(logits: torch.Tensor, meta: MCANetMeta, lut: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, out, H, W)`` logits -> class ids ``(B, H, W)`` int64 and foreground probabilities
    ``(B, K, H, W)`` uint8 (channel order of ``meta.classes`` sorted by channel)."""
    if meta.sigmoid:
        p = torch.sigmoid(logits)
        ids = torch.where(p[:, 0] >= meta.threshold, lut[0], torch.zeros((), dtype=lut.dtype, device=lut.device))
        fg = p
    else:
        p = torch.softmax(logits, dim=1)
        ids = lut[p.argmax(dim=1)]
        fg = p[:, 1:]
    return ids, fg.mul_(255.0).add_(0.5).clamp_(0, 255).to(torch.uint8)


def segment(
    item: Volume | Photo,
    model: MCANet | FusedMCANet | str | Path,
    labels: LabelSet | None = None,
    *,
    meta: MCANetMeta | None = None,
    options: InferenceOptions = InferenceOptions(),
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> Segmentation:
    """Segment ``item`` with an MCANet.

    Parameters
    ----------
    item
        A :class:`Volume` (``(z, y, x)``, any dtype; segmented slice by slice along z) or a
        :class:`Photo` (``(H, W, 3)`` uint8 RGB, one slice).
    model
        A checkpoint path (:func:`~engine.medical.checkpoint.load_mcanet_checkpoint`), or a
        network together with ``meta``.
    labels
        The project's classes: the model's classes are matched by name and written with these
        ids. ``None``: the checkpoint's own names and ids.
    meta
        Required when ``model`` is a network.
    options
        See :class:`InferenceOptions`.
    progress, cancel
        See :mod:`engine.jobs`; progress counts slices.

    Raises
    ------
    ModelError
        Wrong modality, classes the label set lacks, channels that do not match, NaN voxels
        (with ``nan_policy="error"``), an unusable device.
    """
    t0 = time.perf_counter()
    source = Path(model) if isinstance(model, (str, Path)) else None
    if source is not None:
        model, meta = load_mcanet_checkpoint(source)
    if meta is None:
        raise ModelError("segment() needs the checkpoint metadata (meta=...) with a bare network")
    item_path = item.source
    _check_modality(item, meta, source)
    labels, lut_np = _resolve_labels(meta, labels, source)
    net, device, amp = _prepare(model, meta, options, source)
    lut = torch.as_tensor(lut_np, device=device)
    if isinstance(item, Photo):
        out = _segment_photo(item, net, meta, lut, device, amp, options, labels)
    else:
        out = _segment_volume(item, net, meta, lut, device, amp, options, labels, item_path, progress, cancel)
    label_map, probs = out
    seconds = time.perf_counter() - t0
    _logger.info("MCANet-%s segmented %s in %.2f s", meta.variant.upper(), label_map.shape, seconds)
    class_ids = tuple(int(lut_np[c.channel]) for c in sorted(meta.classes, key=lambda c: c.channel))
    return Segmentation(label_map, probs, class_ids, meta, seconds)


def _segment_photo(photo: Photo, net: torch.nn.Module, meta: MCANetMeta, lut: torch.Tensor, device: torch.device,
                   amp: torch.dtype | None, options: InferenceOptions,
                   labels: LabelSet) -> tuple[LabelMap, np.ndarray | None]:
    lo, hi = intensity_range(photo.rgb, meta.window)
    h, w = photo.shape
    size = (h, w)
    if meta.resize_scale is not None:  # mmseg's Resize(scale, keep_ratio=True)
        factor = min(max(meta.resize_scale) / max(h, w), min(meta.resize_scale) / min(h, w))
        size = (max(1, int(h * factor + 0.5)), max(1, int(w * factor + 0.5)))
    with torch.inference_mode():
        x = to_unit(photo.rgb, lo, hi, device=device).permute(2, 0, 1)[None].contiguous()
        x = normalise(resize(x, size, antialias=False), meta.mean, meta.std)  # as mmseg's cv2 Resize
        logits = resize(forward_slices(net, x, meta, overlap=options.tile_overlap, amp=amp), (h, w))
        ids, fg = _decide(logits, meta, lut)
    data = ids[0].to("cpu").numpy().astype(labels.dtype())
    probs = fg[0].to("cpu").numpy() if options.keep_probabilities else None
    return LabelMap(data, labels), probs


def _segment_volume(vol: Volume, net: torch.nn.Module, meta: MCANetMeta, lut: torch.Tensor, device: torch.device,
                    amp: torch.dtype | None, options: InferenceOptions, labels: LabelSet, path: Path | None,
                    progress: Progress | None, cancel: CancelToken | None) -> tuple[LabelMap, np.ndarray | None]:
    arr = vol.array
    depth, height, width = arr.shape
    if depth == 0 or height == 0 or width == 0:
        raise ModelError(f"the volume is empty (shape {arr.shape})", path)
    if arr.dtype.kind not in "biuf":
        raise ModelError(f"voxels of type {arr.dtype} cannot be segmented", path)
    nans = count_nans(arr)
    if nans and options.nan_policy == "error":
        raise ModelError(f"the volume has {nans} NaN voxels (of {arr.size}); they have no intensity to "
                         "segment (use nan_policy='zero' to treat them as background)", path)
    if depth > 1 and depth < 3:
        _logger.info("a %d-slice volume: segmented slice by slice like any other", depth)
    lo, hi = intensity_range(arr, meta.window)
    spacing_xy = (vol.spacing[0], vol.spacing[1])
    size = resampled_size((height, width), spacing_xy, meta.spacing)
    out = np.zeros((depth, height, width), dtype=labels.dtype())
    k = len(meta.classes)
    probs = np.zeros((k, depth, height, width), dtype=np.uint8) if options.keep_probabilities else None
    bs = max(1, int(options.batch_size))
    report(progress, 0, depth, "segmenting")
    with torch.inference_mode():
        for z0 in range(0, depth, bs):
            check_cancelled(cancel)
            z = np.arange(z0, min(depth, z0 + bs))
            idx = channel_indices(z, depth, in_channels=meta.in_channels, context=meta.context_slices)
            need = np.unique(idx)
            slab = to_unit(np.ascontiguousarray(arr[need[0]:need[-1] + 1]), lo, hi, device=device)
            x = slab[torch.as_tensor(idx - need[0], device=device)]  # (B, C, H, W)
            x = normalise(resize(x, size), meta.mean, meta.std)
            logits = resize(forward_slices(net, x, meta, overlap=options.tile_overlap, amp=amp), (height, width))
            ids, fg = _decide(logits, meta, lut)
            out[z0:z0 + len(z)] = ids.to("cpu").numpy()
            if probs is not None:
                probs[:, z0:z0 + len(z)] = fg.to("cpu").numpy().transpose(1, 0, 2, 3)
            report(progress, int(z[-1]) + 1, depth, "segmenting")
    return LabelMap(out, labels), probs
