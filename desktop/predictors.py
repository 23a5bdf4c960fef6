"""Pre-annotation models as the desktop sees them: ``predict(item, labels) -> Prediction``.

A predictor wraps an engine model (open-vocabulary CLIP for photos, MCANet for volumes). The
window asks :func:`make_predictor` for one per run, so a checkpoint made active by the training
dialog is used by the very next pre-annotation without a restart. Runs in a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from engine.errors import ModelError
from engine.items import LabelSet, Photo, Volume
from engine.jobs import CancelToken, Progress

__all__ = ["Prediction", "Predictor", "make_predictor", "PredictorFactory"]

_logger = logging.getLogger(__name__)


@dataclass
class Prediction:
    """A model's answer for one item.

    Attributes
    ----------
    labels
        ``(H, W)`` or ``(z, y, x)`` uint8/uint16 class ids of the project's label set.
    uncertainty
        Same grid, float32 in ``[0, 1]`` (normalised entropy), or ``None``.
    """

    labels: np.ndarray
    uncertainty: np.ndarray | None = None


class Predictor(Protocol):
    """What the window calls; ``name``/``checkpoint`` become the version's provenance."""

    name: str
    checkpoint: str

    def predict(self, item: Photo | Volume, labels: LabelSet, *, progress: Progress | None = None,
                cancel: CancelToken | None = None) -> Prediction: ...


PredictorFactory = Callable[[str, dict], Predictor]


def make_predictor(kind: str, config: dict) -> Predictor:
    """The predictor for ``kind`` ("photo" or "volume") with ``config`` (model, checkpoint, device...).

    Raises :class:`ModelError` when the engine model for that kind is not available.
    """
    if kind == "photo":
        from desktop.predictor_engines import photo_predictor

        return photo_predictor(config)
    if kind == "volume":
        from desktop.predictor_engines import volume_predictor

        return volume_predictor(config)
    raise ModelError(f"no model for items of kind {kind!r}")
