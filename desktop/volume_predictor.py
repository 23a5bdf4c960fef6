"""The volume predictor: an MCANet checkpoint (``engine.medical``) through the desktop's Predictor API.

The checkpoint is the settings' ``model.volume.checkpoint`` (a fine-tuned file the training
dialog made active) or the weights of a catalog model (``model.volume.model``) in the weights
folder (``weights_root``: the settings' folder, shown by the Models dialog, or
:func:`engine.models.weights.default_root`). Each run loads
the file it names, so a new checkpoint applies to the next pre-annotation without a restart.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from desktop.predictors import Prediction
from engine.errors import ModelError, WeightsError
from engine.items import LabelSet, Photo, Volume
from engine.jobs import CancelToken, Progress, check_cancelled

__all__ = ["VolumePredictor", "uncertainty_from_probabilities"]

_logger = logging.getLogger(__name__)


def uncertainty_from_probabilities(probs: np.ndarray, *, sigmoid: bool) -> np.ndarray:
    """Normalised entropy in ``[0, 1]`` from uint8 probabilities ``(K, ...)`` (``round(255 p)``).

    Computed plane by plane along the first grid axis to keep memory at one float slice; returns
    float16 on the grid.
    """
    out = np.empty(probs.shape[1:], dtype=np.float16)
    for z in range(probs.shape[1]):
        p = probs[:, z].astype(np.float32) / 255.0
        if sigmoid:
            q = np.clip(p[0], 1e-6, 1 - 1e-6)
            h = -(q * np.log(q) + (1 - q) * np.log(1 - q)) / np.log(2.0)
        else:
            p = np.clip(p / np.maximum(p.sum(axis=0, keepdims=True), 1e-6), 1e-6, 1.0)
            h = -(p * np.log(p)).sum(axis=0) / np.log(max(p.shape[0], 2))
        out[z] = h
    return out


class VolumePredictor:
    """MCANet segmentation of a volume (slice by slice in the engine)."""

    def __init__(self, config: dict) -> None:
        self.device = str(config.get("device", "auto"))
        self.checkpoint = str(config.get("checkpoint", ""))
        root = config.get("weights_root")
        self.weights_root = Path(root) if root else None  # None: weights.default_root() at each run
        self.name = str(config.get("model") or (Path(self.checkpoint).stem if self.checkpoint else "mcanet"))

    def _checkpoint_path(self) -> Path:
        if self.checkpoint:
            path = Path(self.checkpoint)
            if not path.is_file():
                raise WeightsError("the active checkpoint file is missing; pick another model in Model > Models…",
                                   path)
            return path
        from engine.models.catalog import default_catalog
        from engine.models.weights import WeightsManager

        catalog = default_catalog()
        if self.name not in catalog:
            raise ModelError("no volume model is chosen yet: fine-tune one (Model > Fine-tune) or pick one in "
                             "Model > Models")
        weights = WeightsManager(catalog, self.weights_root)
        path = weights.path(self.name)
        if path is None:
            raise WeightsError(f"the weights of {self.name} are not on this computer. Open Model > Models… "
                               f"(Ctrl+M), select {self.name} and press Download, or use Import file… with a copy "
                               "you already have", weights.file_slot(self.name))
        return path

    def predict(self, item: Photo | Volume, labels: LabelSet, *, progress: Progress | None = None,
                cancel: CancelToken | None = None) -> Prediction:
        from engine.medical.infer import InferenceOptions, segment

        if not isinstance(item, Volume):
            raise ModelError("this is a volume model; photos use the open-vocabulary model")
        path = self._checkpoint_path()
        seg = segment(item, path, labels, options=InferenceOptions(device=self.device), progress=progress,
                      cancel=cancel)
        check_cancelled(cancel)
        uncertainty = None
        if seg.probabilities is not None:
            uncertainty = uncertainty_from_probabilities(seg.probabilities, sigmoid=seg.meta.sigmoid)
        return Prediction(seg.label_map.data, uncertainty)
