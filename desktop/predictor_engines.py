"""Adapters from the engine's models to :class:`desktop.predictors.Predictor`.

Photos: dense open-vocabulary CLIP (``engine.openvocab``). The model is chosen by the settings
(``model.photo``): a catalog name, a weights file, or (tests, benchmarks) an explicit open_clip
``clip_config`` with random weights. Loaded models are cached by their weights key, so a new
checkpoint (another key) is loaded on the next run, without a restart.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np

from desktop.predictors import Prediction, Predictor
from engine.edit import entropy_map
from engine.errors import ModelError
from engine.items import LabelSet, Photo, Volume
from engine.jobs import CancelToken, Progress

__all__ = ["photo_predictor", "volume_predictor", "DEFAULT_PHOTO_MODEL"]

_logger = logging.getLogger(__name__)

DEFAULT_PHOTO_MODEL = "ViT-B-16-quickgelu.openai"


def _resize_nearest(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Nearest-neighbour resize of a 2D/3D array to ``shape``."""
    idx = np.ix_(*[np.minimum((np.arange(n) * s / n).astype(np.int64), s - 1) for n, s in zip(shape, values.shape)])
    return values[idx]


def _stamp(name: str) -> int:
    """The weights file's mtime (ns) for a model name or path, 0 when unknown: a replaced file reloads."""
    path = Path(name)
    if not path.is_file():
        try:
            from engine.models.catalog import default_catalog
            from engine.models.weights import WeightsManager

            catalog = default_catalog()
            path = WeightsManager(catalog).path(name) if name in catalog else None  # type: ignore[assignment]
        except Exception:  # noqa: BLE001 - no stamp, the name alone keys the cache
            return 0
    try:
        return path.stat().st_mtime_ns if path is not None else 0
    except OSError:
        return 0


@lru_cache(maxsize=2)
def _load_clip(key: tuple, device: str):  # noqa: ANN202 - ClipModel
    from engine.openvocab.cli import load_model_arg
    from engine.openvocab.clip_model import ClipSpec, load_clip

    kind, value, seed, config_json = key
    if kind == "config":
        import json

        return load_clip(ClipSpec(name=str(value), pretrained=None, config=json.loads(config_json), seed=seed),
                         device=device)
    return load_model_arg(str(value), device=device)


class PhotoPredictor:
    """Dense CLIP on one photo; ``predict`` returns labels and a normalised-entropy map."""

    def __init__(self, config: dict) -> None:
        import json

        from engine.models.device import choose_device

        self.device = choose_device(str(config.get("device", "auto"))).device
        clip_config = config.get("clip_config")
        if clip_config is not None:
            self.name = str(config.get("model", "custom-clip"))
            self._key = ("config", self.name, int(config.get("seed", 0)), json.dumps(clip_config, sort_keys=True))
        else:
            self.name = str(config.get("model") or DEFAULT_PHOTO_MODEL)
            self._key = ("model", self.name, _stamp(self.name), "")
        # The training-free dense CLIP path has no trained head to load: a Cascade-CLIP checkpoint
        # made active by training is not applied to photos here (the engine has no head-based photo
        # predictor yet), so provenance must not name it.
        self.checkpoint = ""
        if config.get("checkpoint"):
            _logger.info("photo checkpoint %s is not used by the training-free CLIP predictor", config["checkpoint"])
        self.strategy = str(config.get("strategy", "naclip"))
        self.settings_overrides = {k: tuple(v) if isinstance(v, list) else v
                                   for k, v in dict(config.get("segment", {})).items()}  # JSON lists -> tuples

    def predict(self, item: Photo | Volume, labels: LabelSet, *, progress: Progress | None = None,
                cancel: CancelToken | None = None) -> Prediction:
        from engine.openvocab.pipeline import SegmentSettings
        from engine.openvocab.predictor import segment_photo

        if not isinstance(item, Photo):
            raise ModelError("the open-vocabulary model segments photos; use a volume model for volumes")
        clip = _load_clip(self._key, str(self.device))
        settings = SegmentSettings(strategy=self.strategy, **self.settings_overrides)
        seg = segment_photo(clip, item, labels, settings, progress=progress, cancel=cancel)
        uncertainty = None
        if seg.probabilities.shape[0] >= 2:
            uncertainty = _resize_nearest(entropy_map(seg.probabilities), item.shape).astype(np.float32)
        return Prediction(seg.label_map.data, uncertainty)


def photo_predictor(config: dict) -> Predictor:
    """The photo predictor for ``config`` (keys: model, clip_config, seed, checkpoint, strategy, device)."""
    return PhotoPredictor(config)


def volume_predictor(config: dict) -> Predictor:
    """The volume predictor (MCANet) for ``config`` (keys: checkpoint, device)."""
    from desktop.volume_predictor import VolumePredictor

    return VolumePredictor(config)
