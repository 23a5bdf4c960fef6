"""The open-vocabulary photo predictor: ``set_image`` (expensive, cached) / ``predict`` (cheap).

``set_image`` resizes the photo and runs the image encoder over all windows once; ``predict``
embeds the typed classes (cached), scores every window's patches against them, and labels the
photo. Typing another class list and predicting again costs no image encoding.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine.errors import LabelError, ModelError
from engine.items import LabelMap, LabelSet, Photo
from engine.jobs import CancelToken, Progress, check_cancelled
from engine.openvocab.clip_model import ClipModel
from engine.openvocab.pamr import pamr as run_pamr
from engine.openvocab.pipeline import (
    SegmentSettings,
    WindowFeatures,
    class_probabilities,
    encode_windows,
    label_photo,
    pamr_size,
    resize_photo,
    window_logits,
)
from engine.openvocab.text import TextEncoder

__all__ = ["Segmentation", "OpenVocabPredictor", "segment_photo"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Segmentation:
    """What :meth:`OpenVocabPredictor.predict` returns.

    Attributes
    ----------
    label_map
        ``(H, W)`` class ids on the photo's grid (0 = background / below the threshold).
    probabilities
        ``(K, h, w)`` float32 per-class probabilities at the working resolution (the resized
        photo, or PAMR's size when PAMR ran): softmax over all names, best name per class,
        renormalised to sum to 1 over the K channels.
    class_ids
        The label id of each channel of ``probabilities`` (0 = the background names).
    timings
        Seconds per stage (``text``, ``logits``, ``pamr``, ``labels``).
    """

    label_map: LabelMap
    probabilities: np.ndarray
    class_ids: tuple[int, ...]
    timings: dict[str, float] = field(default_factory=dict)


class OpenVocabPredictor:
    """Dense-CLIP segmentation of one photo at a time.

    Parameters
    ----------
    clip
        The loaded model.
    settings
        Strategy and pipeline settings (fixed for this predictor; make another for others).
    text_encoder
        Share one between predictors of the same model to share its embedding cache; by
        default one is made with ``settings.templates`` and ``text_cache_dir``.
    text_cache_dir
        On-disk cache of text embeddings (``None`` = memory only).
    """

    def __init__(self, clip: ClipModel, settings: SegmentSettings = SegmentSettings(), *,
                 text_encoder: TextEncoder | None = None, text_cache_dir: str | Path | None = None) -> None:
        self.clip = clip
        self.settings = settings
        if text_encoder is None:
            text_encoder = TextEncoder(clip, templates=settings.templates, cache_dir=text_cache_dir)
        elif settings.templates is not None and tuple(settings.templates) != text_encoder.templates:
            raise ValueError("the text encoder's templates differ from settings.templates")
        self.text = text_encoder
        self._features: WindowFeatures | None = None
        self._rgb: np.ndarray | None = None
        self._source: Path | None = None

    @property
    def is_image_set(self) -> bool:
        """Whether :meth:`set_image` has run since the last :meth:`reset_image`."""
        return self._features is not None

    def set_image(self, photo: Photo | np.ndarray, *, progress: Progress | None = None,
                  cancel: CancelToken | None = None) -> None:
        """Encode a photo (the expensive step).

        Parameters
        ----------
        photo
            A :class:`~engine.items.Photo` or an ``(H, W, 3)`` uint8 RGB array.
        """
        if isinstance(photo, Photo):
            rgb, source = photo.rgb, photo.source
        else:
            rgb, source = np.asarray(photo), None
            if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
                raise ModelError(f"a photo must be (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
        s = self.settings
        t0 = time.perf_counter()
        image = resize_photo(rgb, int(s.pick("short_side")), s.max_long_side)
        image = self.clip.normalize(image)
        window, stride = int(s.pick("window")), int(s.pick("stride"))
        self._features = encode_windows(self.clip, image, s.method, window=window, stride=stride,
                                        batch_windows=s.batch_windows, precision=s.precision,
                                        progress=progress, cancel=cancel)
        self._rgb, self._source = rgb, source
        _logger.info("encoded %s: %d windows at %s in %.2f s", source or "photo", len(self._features.boxes),
                     self._features.size, time.perf_counter() - t0)

    def reset_image(self) -> None:
        """Forget the encoded photo."""
        self._features = None
        self._rgb = None
        self._source = None

    def _queries(self, labels: LabelSet) -> tuple[list[list[str]], list[int]]:
        s = self.settings
        classes = [list(c.synonyms) for c in labels]
        ids = [c.id for c in labels]
        if s.background:
            names = s.background_names if s.background_names is not None else s.method.background_names
            taken = {n.casefold() for syn in classes for n in syn}
            bg = [n for n in names if n.strip() and n.strip().casefold() not in taken]
            if bg:
                classes.insert(0, bg)
                ids.insert(0, 0)
        return classes, ids

    def predict(self, labels: LabelSet | str, *, prob_threshold: float | None = None,
                cancel: CancelToken | None = None) -> Segmentation:
        """Label the encoded photo with the given classes (cheap; repeatable).

        Parameters
        ----------
        labels
            A :class:`~engine.items.LabelSet` or typed text such as ``"cat; kitten, dog, sky"``.
        prob_threshold
            Overrides the settings' threshold for this call (a threshold slider needs no new
            image encoding); ignored when ``settings.background`` is off.

        Raises
        ------
        RuntimeError
            No image was set.
        LabelError
            No classes were given.
        """
        if self._features is None or self._rgb is None:
            raise RuntimeError("call set_image() before predict()")
        if isinstance(labels, str):
            labels = LabelSet.from_text(labels)
        if len(labels) == 0:
            raise LabelError("type at least one class name")
        s = self.settings
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        classes, ids = self._queries(labels)
        queries = self.text.queries(classes)
        timings["text"] = time.perf_counter() - t0
        check_cancelled(cancel)
        t0 = time.perf_counter()
        logits = window_logits(self._features, queries.embeddings)
        timings["logits"] = time.perf_counter() - t0
        photo_size = (int(self._rgb.shape[0]), int(self._rgb.shape[1]))
        if s.pamr != "off":
            t0 = time.perf_counter()
            logits = self._refine(logits, photo_size)
            timings["pamr"] = time.perf_counter() - t0
        check_cancelled(cancel)
        t0 = time.perf_counter()
        scale = float(s.pick("logit_scale"))
        if not s.background:
            threshold = 0.0
        else:
            threshold = float(s.pick("prob_threshold") if prob_threshold is None else prob_threshold)
        class_ids = torch.tensor(ids, dtype=torch.int64)
        data = label_photo(logits, queries.owner, class_ids, photo_size, logit_scale=scale,
                           prob_threshold=threshold, dtype=labels.dtype(), cancel=cancel)
        with torch.inference_mode():
            probs = class_probabilities(logits, queries.owner, queries.num_classes, scale)
            probs = probs / probs.sum(dim=0, keepdim=True)
        timings["labels"] = time.perf_counter() - t0
        return Segmentation(LabelMap(data, labels), probs.cpu().numpy(), tuple(ids), timings)

    @torch.inference_mode()
    def _refine(self, logits: torch.Tensor, photo_size: tuple[int, int]) -> torch.Tensor:
        assert self._rgb is not None
        s = self.settings
        ph, pw = pamr_size(photo_size, s.pamr, s.pamr_max_side)
        image = resize_photo(self._rgb, min(ph, pw), max(ph, pw))
        if tuple(image.shape[-2:]) != (ph, pw):  # aspect rounding: take the exact size
            image = torch.nn.functional.interpolate(image, size=(ph, pw), mode="bilinear", align_corners=False)
        image = self.clip.normalize(image).to(logits.device)
        lg = torch.nn.functional.interpolate(logits[None], size=(ph, pw), mode="bilinear", align_corners=False)
        return run_pamr(image, lg, iterations=s.pamr_iterations, dilations=s.pamr_dilations)[0]


def segment_photo(clip: ClipModel, photo: Photo | np.ndarray, labels: LabelSet | str,
                  settings: SegmentSettings = SegmentSettings(), *, text_encoder: TextEncoder | None = None,
                  progress: Progress | None = None, cancel: CancelToken | None = None) -> Segmentation:
    """One-shot :meth:`OpenVocabPredictor.set_image` + :meth:`~OpenVocabPredictor.predict`."""
    predictor = OpenVocabPredictor(clip, settings, text_encoder=text_encoder)
    predictor.set_image(photo, progress=progress, cancel=cancel)
    return predictor.predict(labels, cancel=cancel)
