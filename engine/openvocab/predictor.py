"""The open-vocabulary photo predictor: ``set_image`` (expensive, cached) / ``predict`` (cheap).

``set_image`` resizes the photo and runs the image encoder over all windows once; ``predict``
embeds the typed classes (cached), scores every window's patches against them, and labels the
photo. Typing another class list and predicting again costs no image encoding.

With a trained Cascade-CLIP head (:mod:`engine.openvocab.photo_model`), ``set_image`` also runs
the head's encoder over its windows, and ``predict`` decodes them for the typed classes and
blends the head's probabilities with the training-free ones
(:func:`~engine.openvocab.cascade.combine_probabilities`, weight :attr:`HeadSettings.weight`).
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
from engine.openvocab.cascade import CascadeCLIP, CascadeHead, combine_probabilities
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
from engine.openvocab.photo_model import HeadSettings, HeadWindows, PhotoModel, encode_head_windows, head_probabilities
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
        renormalised to sum to 1 over the K channels; with a head, that blended with the head's
        (:func:`~engine.openvocab.cascade.combine_probabilities`), and the label map is their
        argmax (below ``prob_threshold``: 0).
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
    head
        A trained Cascade-CLIP head for ``clip``'s image encoder (``None``: training-free only).
    head_settings
        How the head's windows run and how much it weighs.
    """

    def __init__(self, clip: ClipModel, settings: SegmentSettings = SegmentSettings(), *,
                 text_encoder: TextEncoder | None = None, text_cache_dir: str | Path | None = None,
                 head: CascadeHead | None = None, head_settings: HeadSettings = HeadSettings()) -> None:
        self.clip = clip
        self.settings = settings
        self.head_settings = head_settings
        self.cascade: CascadeCLIP | None = None
        if head is not None:
            self.cascade = CascadeCLIP(clip.model.visual, head.to(clip.device), freeze_backbone=True).eval()
        self._head_windows: HeadWindows | None = None
        if text_encoder is None:
            text_encoder = TextEncoder(clip, templates=settings.templates, cache_dir=text_cache_dir)
        elif settings.templates is not None and tuple(settings.templates) != text_encoder.templates:
            raise ValueError("the text encoder's templates differ from settings.templates")
        self.text = text_encoder
        self._features: WindowFeatures | None = None
        self._rgb: np.ndarray | None = None
        self._source: Path | None = None

    @classmethod
    def from_photo_model(cls, model: PhotoModel, settings: SegmentSettings = SegmentSettings(), *,
                         text_encoder: TextEncoder | None = None, text_cache_dir: str | Path | None = None,
                         head_settings: HeadSettings = HeadSettings()) -> OpenVocabPredictor:
        """A predictor for a :class:`~engine.openvocab.photo_model.PhotoModel` (its head, if any)."""
        return cls(model.clip, settings, text_encoder=text_encoder, text_cache_dir=text_cache_dir, head=model.head,
                   head_settings=head_settings)

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
        if self.cascade is not None:
            self._head_windows = encode_head_windows(self.cascade, image[0].to(self.clip.device), self.head_settings,
                                                     cancel=cancel)
        self._rgb, self._source = rgb, source
        _logger.info("encoded %s: %d windows at %s in %.2f s", source or "photo", len(self._features.boxes),
                     self._features.size, time.perf_counter() - t0)

    def reset_image(self) -> None:
        """Forget the encoded photo."""
        self._features = None
        self._head_windows = None
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
        if self._head_windows is not None:
            data, probs = self._with_head(logits, queries.owner, queries.num_classes, classes, ids, photo_size,
                                          scale=scale, threshold=threshold, dtype=labels.dtype(), cancel=cancel)
            timings["labels"] = time.perf_counter() - t0
            return Segmentation(LabelMap(data, labels), probs.cpu().numpy(), tuple(ids), timings)
        data = label_photo(logits, queries.owner, class_ids, photo_size, logit_scale=scale,
                           prob_threshold=threshold, dtype=labels.dtype(), cancel=cancel)
        with torch.inference_mode():
            probs = class_probabilities(logits, queries.owner, queries.num_classes, scale)
            probs = probs / probs.sum(dim=0, keepdim=True)
        timings["labels"] = time.perf_counter() - t0
        return Segmentation(LabelMap(data, labels), probs.cpu().numpy(), tuple(ids), timings)

    @torch.inference_mode()
    def _with_head(self, logits: torch.Tensor, owner: torch.Tensor, num_classes: int, classes: list[list[str]],
                   ids: list[int], photo_size: tuple[int, int], *, scale: float, threshold: float, dtype: np.dtype,
                   cancel: CancelToken | None) -> tuple[np.ndarray, torch.Tensor]:
        """Labels and ``(K, h, w)`` probabilities of the training-free part blended with the head's.

        The head's query of a class is the mean of its names' text embeddings (as the recipe
        trains it); the background channel (id 0, when present) gets
        :attr:`HeadSettings.background`. Labels: the blend's argmax, upsampled as
        :func:`~engine.openvocab.labelling.label_photo` does (on its logarithm, scale 1, so its
        softmax is the blend itself).
        """
        assert self.cascade is not None and self._head_windows is not None
        free = class_probabilities(logits, owner, num_classes, scale)
        free = free / free.sum(dim=0, keepdim=True)
        fg = [k for k, i in enumerate(ids) if i != 0]
        text = torch.stack([torch.nn.functional.normalize(self.text.embed_names(classes[k]).float().mean(dim=0), dim=-1)
                            for k in fg])
        head = head_probabilities(self.cascade, self._head_windows, text.to(self.clip.device))
        if len(fg) < len(ids):
            bg = head.new_full((1, *head.shape[1:]), float(self.head_settings.background))
            head = torch.cat([bg, head], dim=0)
        if tuple(head.shape[-2:]) != tuple(free.shape[-2:]):
            head = torch.nn.functional.interpolate(head[None], size=free.shape[-2:], mode="bilinear",
                                                   align_corners=False)[0]
        check_cancelled(cancel)
        probs = combine_probabilities(head.to(free.device), free, weight=self.head_settings.weight)
        k = probs.shape[0]
        data = label_photo(probs.clamp_min(1e-12).log(), torch.arange(k), torch.tensor(ids, dtype=torch.int64),
                           photo_size, logit_scale=1.0, prob_threshold=threshold, dtype=dtype, cancel=cancel)
        return data, probs

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
                  progress: Progress | None = None, cancel: CancelToken | None = None,
                  head: CascadeHead | None = None, head_settings: HeadSettings = HeadSettings()) -> Segmentation:
    """One-shot :meth:`OpenVocabPredictor.set_image` + :meth:`~OpenVocabPredictor.predict`."""
    predictor = OpenVocabPredictor(clip, settings, text_encoder=text_encoder, head=head, head_settings=head_settings)
    predictor.set_image(photo, progress=progress, cancel=cancel)
    return predictor.predict(labels, cancel=cancel)
