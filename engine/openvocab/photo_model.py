"""The photo model of pre-annotation: a dense CLIP, optionally with a trained Cascade-CLIP head
or fine-tuned (DenseVLM-style) image-encoder weights.

:func:`load_photo_model` takes what a person names (``maskwright segment --model``, the desktop's
photo model or active checkpoint):

* a catalog name (``ViT-B-16-quickgelu.openai``; an ``open_clip_visual`` entry; a ``cascade_clip``
  entry, put on its backbone), ``local-dir:FOLDER`` or a full CLIP weights file (for
  ``ViT-B-16-quickgelu``), as before;
* one of our checkpoints, recognised by its safetensors metadata through
  :func:`engine.models.checkpoints.entry_for_checkpoint`: a Cascade-CLIP head
  (:func:`engine.openvocab.cascade_io.save_head`; the backbone is the catalog name, folder or file
  its config names) or fine-tuned image-encoder weights
  (:func:`engine.openvocab.densevlm_convert.save_visual_weights`; loaded on the base model they
  name with :func:`~engine.openvocab.densevlm_convert.load_visual_weights`).

A head's probabilities are blended with the training-free ones by
:func:`engine.openvocab.cascade.combine_probabilities` (:class:`HeadSettings`); its queries come
from the typed classes' text embeddings, so class names it never saw still get a map.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from engine.errors import WeightsError
from engine.jobs import CancelToken, check_cancelled
from engine.openvocab.cascade import CascadeCLIP, CascadeFeatures, CascadeHead
from engine.openvocab.clip_model import ClipModel, ClipSpec, clip_from_catalog, load_clip
from engine.openvocab.pipeline import window_boxes

__all__ = [
    "HeadSettings",
    "PhotoModel",
    "HeadWindows",
    "load_photo_model",
    "load_clip_arg",
    "encode_head_windows",
    "head_probabilities",
    "CHECKPOINT_SUFFIXES",
]

_logger = logging.getLogger(__name__)

CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
"""File suffixes read as weights files (not catalog names)."""


@dataclass(frozen=True)
class HeadSettings:
    """How a Cascade-CLIP head joins the training-free dense CLIP.

    Attributes
    ----------
    weight
        Share of the head in :func:`~engine.openvocab.cascade.combine_probabilities`
        (``weight * head + (1 - weight) * training_free``); 0.5 by default, 1 = the head alone.
    window, stride, batch
        The head's sliding windows on the resized photo (pixels; the paper's 512 / 426) and
        windows per forward pass.
    background
        The head's score of the background channel, when the predictor has one: the head scores
        each class independently (sigmoid) and was trained without a background channel, so a
        constant makes its argmax the trainer's rule (background where no class reaches it; the
        Cascade-CLIP recipe's validation threshold, 0.3).
    """

    weight: float = 0.5
    window: int = 512
    stride: int = 426
    batch: int = 4
    background: float = 0.3

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"head weight must lie in [0, 1], not {self.weight}")
        if self.window < 1 or self.stride < 1 or self.batch < 1:
            raise ValueError("head window, stride and batch must be positive")


@dataclass(frozen=True, eq=False)
class PhotoModel:
    """A loaded photo model.

    Attributes
    ----------
    clip
        The dense CLIP (with fine-tuned image-encoder weights when a checkpoint brought them).
    head
        The Cascade-CLIP head on ``clip``'s image encoder, or ``None`` (training-free only).
    checkpoint
        The checkpoint file actually used (head or image-encoder weights), or ``None``.
    extra
        The metadata saved with a head (classes trained on, metrics), else empty.
    """

    clip: ClipModel
    head: CascadeHead | None = None
    checkpoint: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cascade(self) -> CascadeCLIP | None:
        """The head on the backbone's image encoder (frozen), or ``None``."""
        if self.head is None:
            return None
        return CascadeCLIP(self.clip.model.visual, self.head, freeze_backbone=True).eval()


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def load_clip_arg(name: str, *, device: torch.device | str = "cpu", weights_root: str | Path | None = None) -> ClipModel:
    """A plain dense CLIP from a catalog name, ``local-dir:FOLDER`` or a full CLIP weights file
    (``ViT-B-16-quickgelu``).

    Raises
    ------
    WeightsError
        A named file that does not exist, or missing/unfit weights.
    ModelError
        An unknown catalog name, or an entry dense CLIP cannot host.
    """
    if name.startswith("local-dir:"):
        return load_clip(ClipSpec(name=name, pretrained=None), device=device)
    path = Path(name)
    if path.suffix in CHECKPOINT_SUFFIXES or path.is_file():
        if not path.is_file():
            raise WeightsError("no such weights file", path)
        return load_clip(ClipSpec(name="ViT-B-16-quickgelu", pretrained=str(path)), device=device)
    return clip_from_catalog(name, device=device, weights_root=weights_root)


def _with_visual_weights(base: ClipModel, path: Path, *, copy_model: bool) -> ClipModel:
    from engine.openvocab.densevlm_convert import load_visual_weights

    model = copy.deepcopy(base.model) if copy_model else base.model
    load_visual_weights(model, path)
    model = model.float().eval().requires_grad_(False)
    clip = ClipModel(model, base.spec, mean=tuple(base.mean.tolist()), std=tuple(base.std.tolist()),
                     key=f"{base.key}|visual:{_stamp(path)}")
    return clip.to(base.device)


def _from_checkpoint(path: Path, architecture: str, base: str | None, *, backbone: ClipModel | None,
                     device: torch.device | str, weights_root: str | Path | None) -> PhotoModel:
    if architecture == "cascade_clip":
        from engine.openvocab.cascade_io import load_head

        head, extra = load_head(path)
        clip = backbone if backbone is not None else load_clip_arg(base or head.cfg.backbone, device=device,
                                                                   weights_root=weights_root)
        _logger.info("photo model: Cascade-CLIP head %s on %s", path, clip.key)
        return PhotoModel(clip, head.to(clip.device).eval(), path, extra)
    if architecture == "open_clip_visual":
        if backbone is None:
            if not base:
                raise WeightsError("fine-tuned image-encoder weights that do not name their base model", path)
            backbone = load_clip_arg(base, device=device, weights_root=weights_root)
            clip = _with_visual_weights(backbone, path, copy_model=False)
        else:
            clip = _with_visual_weights(backbone, path, copy_model=True)
        _logger.info("photo model: image-encoder weights %s", path)
        return PhotoModel(clip, None, path)
    raise WeightsError(f"a {architecture} checkpoint is not a photo model", path)


def load_photo_model(model: str | Path, *, device: torch.device | str = "cpu", weights_root: str | Path | None = None,
                     backbone: ClipModel | None = None) -> PhotoModel:
    """Load what ``model`` names (see the module docstring).

    Parameters
    ----------
    model
        A catalog name, ``local-dir:FOLDER``, a full CLIP weights file, or one of our head /
        image-encoder checkpoints.
    device
        Where to put it.
    weights_root
        The weights manager's folder; ``None`` = :func:`engine.models.weights.default_root`.
    backbone
        Use this CLIP instead of the base a checkpoint names (tests and the desktop's explicit
        ``clip_config``); image-encoder weights are loaded into a copy of it.

    Raises
    ------
    WeightsError
        Missing, unreadable or unfit weights (the message names the file).
    ModelError
        An unknown catalog name, or a model dense CLIP cannot host.
    """
    from engine.models.checkpoints import entry_for_checkpoint, read_metadata

    name = str(model)
    path = Path(name)
    if path.suffix == ".safetensors" and path.is_file():
        fmt = read_metadata(path).get("format", "")
        if fmt.startswith("maskwright."):
            entry = entry_for_checkpoint(path, name="checkpoint.photo")
            return _from_checkpoint(path, entry.architecture, entry.base, backbone=backbone, device=device,
                                    weights_root=weights_root)
    if not name.startswith("local-dir:") and path.suffix not in CHECKPOINT_SUFFIXES and not path.is_file():
        from engine.models.catalog import default_catalog
        from engine.models.weights import WeightsManager

        catalog = default_catalog()
        if name in catalog and catalog.get(name).architecture == "cascade_clip":
            entry = catalog.get(name)
            file = WeightsManager(catalog, weights_root).ensure_local(name)
            return _from_checkpoint(file, "cascade_clip", entry.base, backbone=backbone, device=device,
                                    weights_root=weights_root)
    return PhotoModel(load_clip_arg(name, device=device, weights_root=weights_root))


# -- the head on a photo: windows encoded once, decoded per class list ------------------------------
@dataclass(frozen=True, eq=False)
class HeadWindows:
    """A photo's windows through the head's encoder (what ``predict`` decodes for any classes).

    Attributes
    ----------
    size
        ``(h, w)`` of the (normalised, resized) photo the windows cover.
    boxes
        ``(y1, y2, x1, x2)`` of each window, in :func:`~engine.openvocab.cascade.slide_probabilities`'
        order (mmseg's slide grid).
    features
        One :class:`~engine.openvocab.cascade.CascadeFeatures` per batch of ``batch`` windows.
    batch
        Windows per batch.
    """

    size: tuple[int, int]
    boxes: list[tuple[int, int, int, int]]
    features: list[CascadeFeatures]
    batch: int


@torch.inference_mode()
def encode_head_windows(model: CascadeCLIP, image: torch.Tensor, settings: HeadSettings = HeadSettings(), *,
                        cancel: CancelToken | None = None) -> HeadWindows:
    """Run the head's encoder (frozen backbone with prompts and taps) over a photo's windows.

    Parameters
    ----------
    model
        The head on its backbone, eval mode.
    image
        ``(3, H, W)`` float, normalised with the backbone's mean/std.
    """
    if image.dim() != 3:
        raise ValueError(f"image must be (3, H, W), not {tuple(image.shape)}")
    _, h, w = image.shape
    boxes = window_boxes(h, w, settings.window, settings.stride)
    feats = []
    for start in range(0, len(boxes), settings.batch):
        check_cancelled(cancel)
        crops = torch.stack([image[:, y1:y2, x1:x2] for y1, y2, x1, x2 in boxes[start:start + settings.batch]])
        feats.append(model.head.encode(model.visual, crops))
    return HeadWindows((int(h), int(w)), boxes, feats, settings.batch)


@torch.inference_mode()
def head_probabilities(model: CascadeCLIP, windows: HeadWindows, text: torch.Tensor) -> torch.Tensor:
    """``(C, H, W)`` float32 per-class sigmoid probabilities of the encoded photo, classes independent.

    The same mathematics as :func:`~engine.openvocab.cascade.slide_probabilities` (each window's
    logits upsampled to the window, sigmoid, overlap-averaged), with the encoding reused.
    """
    h, w = windows.size
    probs = torch.zeros((text.shape[0], h, w), dtype=torch.float32, device=text.device)
    count = torch.zeros((1, h, w), dtype=torch.float32, device=text.device)
    for k, feats in enumerate(windows.features):
        chunk = windows.boxes[k * windows.batch:(k + 1) * windows.batch]
        logits = model.head.decode(feats, text)
        y1, y2, x1, x2 = chunk[0]
        logits = F.interpolate(logits, size=(y2 - y1, x2 - x1), mode="bilinear", align_corners=False)
        for (y1, y2, x1, x2), p in zip(chunk, torch.sigmoid(logits.float())):
            probs[:, y1:y2, x1:x2] += p
            count[:, y1:y2, x1:x2] += 1
    return probs / count
