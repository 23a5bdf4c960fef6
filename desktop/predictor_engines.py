"""Adapters from the engine's models to :class:`desktop.predictors.Predictor`.

Photos: dense open-vocabulary CLIP (``engine.openvocab``). The model is chosen by the settings
(``model.photo``): a catalog name, a weights file, or (tests, benchmarks) an explicit open_clip
``clip_config`` with random weights; the active photo ``checkpoint`` (a trained Cascade-CLIP head,
blended with the training-free probabilities, or DenseVLM-style image-encoder weights) is loaded
on top (:func:`engine.openvocab.photo_model.load_photo_model`; with ``clip_config`` that tiny
model is the backbone). Weights are looked up under ``weights_root`` (the desktop setting), else
:func:`engine.models.weights.default_root`. Loaded models are cached by their weights key and the
checkpoint file's mtime, so a new or rewritten checkpoint is loaded on the next run, without a
restart; the version's provenance names the checkpoint actually used.
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


def _weights_root(config: dict) -> Path | None:
    """The desktop's weights folder (``settings["weights_root"]``), else ``None`` (the default root)."""
    root = config.get("weights_root")
    return Path(root) if root else None


def _stamp(name: str, root: Path | None = None) -> int:
    """The weights file's mtime (ns) for a model name or path, 0 when unknown: a replaced file reloads."""
    path = Path(name)
    if not path.is_file():
        try:
            from engine.models.catalog import default_catalog
            from engine.models.weights import WeightsManager

            catalog = default_catalog()
            path = WeightsManager(catalog, root).path(name) if name in catalog else None  # type: ignore[assignment]
        except Exception:  # noqa: BLE001 - no stamp, the name alone keys the cache
            return 0
    try:
        return path.stat().st_mtime_ns if path is not None else 0
    except OSError:
        return 0


@lru_cache(maxsize=2)
def _load_model(key: tuple, device: str):  # noqa: ANN202 - PhotoModel
    """The photo model of ``key`` (cached: a new checkpoint, or a replaced file, is another key)."""
    import json

    from engine.openvocab.clip_model import ClipSpec, load_clip
    from engine.openvocab.photo_model import PhotoModel, load_photo_model

    kind, value, seed, config_json, checkpoint, _checkpoint_stamp, root, _stamp_ns = key
    backbone = None
    if kind == "config":
        backbone = load_clip(ClipSpec(name=str(value), pretrained=None, config=json.loads(config_json), seed=seed),
                             device=device)
    if checkpoint:
        return load_photo_model(checkpoint, device=device, weights_root=root, backbone=backbone)
    if backbone is not None:
        return PhotoModel(backbone)
    return load_photo_model(str(value), device=device, weights_root=root)


class PhotoPredictor:
    """Dense CLIP on one photo, with the active checkpoint's Cascade-CLIP head or fine-tuned image
    encoder when the config names one; ``predict`` returns labels and a normalised-entropy map."""

    def __init__(self, config: dict) -> None:
        import json

        from engine.models.device import choose_device

        self.device = choose_device(str(config.get("device", "auto"))).device
        self.weights_root = _weights_root(config)
        root = str(self.weights_root) if self.weights_root is not None else None
        # the checkpoint (head or image-encoder weights) the project made active; its mtime keys the
        # cache, so a checkpoint rewritten in place is reloaded on the next run, without a restart
        checkpoint = str(config.get("checkpoint") or "")
        ck_stamp = _stamp(checkpoint) if checkpoint else 0
        clip_config = config.get("clip_config")
        if clip_config is not None:
            self.name = str(config.get("model", "custom-clip"))
            self._key: tuple = ("config", self.name, int(config.get("seed", 0)), json.dumps(clip_config, sort_keys=True),
                                checkpoint, ck_stamp, root, 0)
        else:
            self.name = str(config.get("model") or DEFAULT_PHOTO_MODEL)
            self._key = ("model", self.name, 0, "", checkpoint, ck_stamp, root,
                         0 if checkpoint else _stamp(self.name, self.weights_root))
        # provenance: the checkpoint actually used (set once the model is loaded)
        self.checkpoint = ""
        self.strategy = str(config.get("strategy", "naclip"))
        self.settings_overrides = {k: tuple(v) if isinstance(v, list) else v
                                   for k, v in dict(config.get("segment", {})).items()}  # JSON lists -> tuples
        head = dict(config.get("head", {}))
        self.head_overrides = {k: head[k] for k in ("weight", "window", "stride", "batch", "background") if k in head}

    def predict(self, item: Photo | Volume, labels: LabelSet, *, progress: Progress | None = None,
                cancel: CancelToken | None = None) -> Prediction:
        from engine.openvocab.photo_model import HeadSettings
        from engine.openvocab.pipeline import SegmentSettings
        from engine.openvocab.predictor import segment_photo

        if not isinstance(item, Photo):
            raise ModelError("the open-vocabulary model segments photos; use a volume model for volumes")
        model = _load_model(self._key, str(self.device))
        self.checkpoint = str(model.checkpoint) if model.checkpoint is not None else ""
        settings = SegmentSettings(strategy=self.strategy, **self.settings_overrides)
        seg = segment_photo(model.clip, item, labels, settings, progress=progress, cancel=cancel, head=model.head,
                            head_settings=HeadSettings(**self.head_overrides))
        uncertainty = None
        if seg.probabilities.shape[0] >= 2:
            uncertainty = _resize_nearest(entropy_map(seg.probabilities), item.shape).astype(np.float32)
        return Prediction(seg.label_map.data, uncertainty)


def photo_predictor(config: dict) -> Predictor:
    """The photo predictor for ``config`` (keys: model, clip_config, seed, checkpoint, strategy, device,
    weights_root, segment, head)."""
    return PhotoPredictor(config)


def volume_predictor(config: dict) -> Predictor:
    """The volume predictor (MCANet) for ``config`` (keys: checkpoint, device)."""
    from desktop.volume_predictor import VolumePredictor

    return VolumePredictor(config)
