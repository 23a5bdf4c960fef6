"""MCANet checkpoints: safetensors weights plus JSON metadata in the safetensors header.

One file (``*.safetensors``): the tensors are the model's ``state_dict`` (official key names),
and the header's ``__metadata__["maskwright"]`` holds :class:`MCANetMeta` as JSON — the
architecture, the classes and their ids, the input channels (and 2.5D context), the intensity
window and normalisation the model was trained with, the in-plane spacing and tile size, and the
format version. Loading never unpickles; official mmseg ``.pth`` files are read with
``torch.load(weights_only=True)`` and get default metadata (:func:`import_official_checkpoint`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch

from engine import __version__
from engine.errors import ModelError, WeightsError
from engine.fsutil import atomic_path
from engine.medical.mcanet import VARIANTS, MCANet, _load_strict, checkpoint_filter_fn, create_mcanet

__all__ = [
    "FORMAT_VERSION",
    "IntensityWindow",
    "ModelClass",
    "MCANetMeta",
    "save_mcanet_checkpoint",
    "load_mcanet_checkpoint",
    "read_mcanet_meta",
    "import_official_checkpoint",
    "variant_from_state_dict",
    "sigmoid_classes",
    "softmax_classes",
    "build_model",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

_logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_META_KEY = "maskwright"
IMAGENET_MEAN = (123.675, 116.28, 103.53)  # the official data preprocessor, 0..255 units
IMAGENET_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class IntensityWindow:
    """How raw intensities become ``[0, 1]`` before normalisation.

    Attributes
    ----------
    kind
        ``"ct"``: linear window ``[center - width/2, center + width/2]`` (HU);
        ``"percentile"``: the volume's ``low``..``high`` percentiles (MR);
        ``"range"``: fixed ``[low, high]`` (``0..255`` for photos and 8-bit images).
    center, width
        CT window in HU (e.g. abdomen 40/400).
    low, high
        Percentiles (``"percentile"``) or values (``"range"``).
    """

    kind: Literal["ct", "percentile", "range"] = "range"
    center: float = 40.0
    width: float = 400.0
    low: float = 0.0
    high: float = 255.0

    def __post_init__(self) -> None:
        if self.kind not in ("ct", "percentile", "range"):
            raise ValueError(f"unknown window kind {self.kind!r}: use ct, percentile or range")
        if self.kind == "ct" and self.width <= 0:
            raise ValueError("a CT window needs a positive width")
        if self.kind != "ct" and not self.high > self.low:
            raise ValueError(f"window high ({self.high}) must be above low ({self.low})")


@dataclass(frozen=True)
class ModelClass:
    """A class the model predicts: output channel ``channel`` means class ``id`` called ``name``."""

    id: int
    name: str
    channel: int


@dataclass(frozen=True)
class MCANetMeta:
    """Everything needed to use a checkpoint exactly as it was trained.

    Attributes
    ----------
    variant
        ``"t"``, ``"s"``, ``"b"`` (or ``"test"``).
    classes
        Foreground classes. Sigmoid models (``out_channels == 1``) have one, on channel 0;
        softmax models have ``out_channels - 1``, on channels ``1..`` (channel 0 is background).
    in_channels
        Input channels of the network (3 for ImageNet-initialised models).
    context_slices
        2.5D: ``n`` neighbours on each side stacked as channels (``2n + 1 == in_channels``);
        0 for 2D models (a grey slice is repeated over the input channels).
    modality
        ``"CT"``, ``"MR"``, ``"photo"`` or ``""`` (any).
    window
        Intensity window to ``[0, 1]``.
    mean, std
        Per-channel normalisation in 0..255 units after the window: ``(255 v - mean) / std``.
    spacing
        In-plane ``(sx, sy)`` mm the model was trained at, or ``None`` (no resampling).
    tile_size
        ``(H, W)`` network input; larger slices are tiled, smaller ones padded.
    resize_scale
        For items without a physical spacing (photos): mmseg's keep-ratio test ``Resize`` scale;
        the image is scaled by ``min(max(scale) / long side, min(scale) / short side)`` (the
        official recipe: ``(512, 512)``). ``None``: photos are used at their own size.
    threshold
        Probability threshold of sigmoid models (mmseg's default 0.3).
    feature_size, image_size
        Head settings (see :class:`~engine.medical.mca_head.MCAHead`); ``image_size=None`` means
        the variant's own (128 for T/S/B, as in the official configs).
    format_version, engine_version
        Of the file.
    description
        Free text (data, training run).
    """

    variant: str
    classes: tuple[ModelClass, ...]
    in_channels: int = 3
    context_slices: int = 0
    modality: str = ""
    window: IntensityWindow = field(default_factory=IntensityWindow)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    spacing: tuple[float, float] | None = None
    tile_size: tuple[int, int] = (512, 512)
    resize_scale: tuple[int, int] | None = None
    threshold: float = 0.3
    feature_size: str = "fixed"
    image_size: int | None = None
    format_version: int = FORMAT_VERSION
    engine_version: str = __version__
    description: str = ""

    def __post_init__(self) -> None:
        if not self.classes:
            raise ValueError("a checkpoint needs at least one class")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise ValueError(f"mean/std need {self.in_channels} values (one per input channel)")
        if self.context_slices and 2 * self.context_slices + 1 != self.in_channels:
            raise ValueError(f"2.5D with {self.context_slices} neighbours per side needs "
                             f"{2 * self.context_slices + 1} input channels, not {self.in_channels}")
        channels = sorted(c.channel for c in self.classes)
        expected = [0] if len(self.classes) == 1 and channels == [0] else list(range(1, len(self.classes) + 1))
        if channels != expected:
            raise ValueError(f"class channels {channels} must be [0] (sigmoid) or 1..{len(self.classes)} (softmax)")

    @property
    def out_channels(self) -> int:
        """1 for a sigmoid model, classes + 1 for a softmax model."""
        return 1 if self.sigmoid else len(self.classes) + 1

    @property
    def sigmoid(self) -> bool:
        return len(self.classes) == 1 and self.classes[0].channel == 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MCANetMeta:
        raw = json.loads(text)
        version = int(raw.get("format_version", 0))
        if version > FORMAT_VERSION:
            raise ValueError(f"format version {version} is newer than this Maskwright reads ({FORMAT_VERSION})")
        raw["classes"] = tuple(ModelClass(**c) for c in raw["classes"])
        raw["window"] = IntensityWindow(**raw.get("window", {}))
        for key in ("mean", "std", "tile_size"):
            raw[key] = tuple(raw[key])
        for key in ("spacing", "resize_scale"):
            if raw.get(key) is not None:
                raw[key] = tuple(raw[key])
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            _logger.warning("ignoring unknown checkpoint metadata fields: %s", ", ".join(unknown))
        return cls(**{k: v for k, v in raw.items() if k in known})


def sigmoid_classes(name: str, class_id: int = 1) -> tuple[ModelClass, ...]:
    """The one class of a binary (sigmoid) model."""
    return (ModelClass(class_id, name, 0),)


def softmax_classes(names: list[str] | tuple[str, ...], ids: list[int] | None = None) -> tuple[ModelClass, ...]:
    """Classes of a softmax model: channel ``i + 1`` is ``names[i]`` (id ``ids[i]`` or ``i + 1``)."""
    ids = ids or list(range(1, len(names) + 1))
    return tuple(ModelClass(i, n, ch + 1) for ch, (i, n) in enumerate(zip(ids, names)))


def build_model(meta: MCANetMeta) -> MCANet:
    """An MCANet with random weights shaped as ``meta`` says."""
    extra = {} if meta.image_size is None else {"image_size": meta.image_size}
    return create_mcanet(meta.variant, out_channels=meta.out_channels, in_channels=meta.in_channels,
                         feature_size=meta.feature_size, **extra)


def save_mcanet_checkpoint(path: str | Path, model: MCANet, meta: MCANetMeta) -> None:
    """Write ``model``'s weights and ``meta`` as one safetensors file, atomically."""
    from safetensors.torch import save_file

    _check_model_matches(model, meta, Path(path))
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path, error=WeightsError) as tmp:
        save_file(tensors, str(tmp), metadata={_META_KEY: meta.to_json(), "format": "pt"})


def read_mcanet_meta(path: str | Path) -> MCANetMeta:
    """Only the metadata of a checkpoint (cheap: reads the header)."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except FileNotFoundError as err:
        raise WeightsError("the checkpoint file does not exist", path) from err
    except Exception as err:  # safetensors raises its own error types
        raise WeightsError(f"not a safetensors checkpoint ({err})", path) from err
    if _META_KEY not in header:
        raise WeightsError("no Maskwright MCANet metadata in this safetensors file", path)
    try:
        return MCANetMeta.from_json(header[_META_KEY])
    except (ValueError, KeyError, TypeError) as err:
        raise WeightsError(f"the checkpoint metadata is invalid ({err})", path) from err


def load_mcanet_checkpoint(path: str | Path, *, device: torch.device | str = "cpu") -> tuple[MCANet, MCANetMeta]:
    """Load a checkpoint written by :func:`save_mcanet_checkpoint`; the model is in eval mode.

    Raises :class:`WeightsError` (unreadable file, bad metadata, weights that do not fit the
    architecture — missing, unexpected and wrongly shaped keys are listed) naming the file.
    """
    from safetensors.torch import load_file

    path = Path(path)
    if path.suffix in (".pth", ".pt", ".bin"):
        return import_official_checkpoint(path, device=device)
    meta = read_mcanet_meta(path)
    if meta.variant not in VARIANTS.list():
        raise WeightsError(f"unknown MCANet variant {meta.variant!r}", path)
    try:
        sd = load_file(str(path))
    except Exception as err:
        raise WeightsError(f"the weights cannot be read ({err})", path) from err
    model = build_model(meta)
    try:
        _load_strict(model, sd, what=f"MCANet-{meta.variant.upper()} as its metadata describes it")
    except WeightsError as err:
        raise WeightsError(err.reason, path) from err
    return model.to(device).eval(), meta


def variant_from_state_dict(sd: Mapping[str, torch.Tensor]) -> str:
    """``"t"``, ``"s"`` or ``"b"`` from the shapes and depths of an official state dict."""
    try:
        dim = int(sd["backbone.patch_embed1.proj.3.weight"].shape[0])
    except KeyError:
        raise ValueError("no backbone.patch_embed1 weights: not an MCANet/MSCAN segmentor checkpoint") from None
    depth3 = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("backbone.block3."))
    for name in ("t", "s", "b"):
        cfg = VARIANTS.get(name)
        if cfg.embed_dims[0] == dim and cfg.depths[2] == depth3:
            return name
    raise ValueError(f"no MCANet variant has stem width {dim} and {depth3} stage-3 blocks")


def import_official_checkpoint(path: str | Path, *, device: torch.device | str = "cpu",
                               **meta_fields: Any) -> tuple[MCANet, MCANetMeta]:
    """Load an official mmseg MCANet checkpoint (``.pth``) strictly, without conversion.

    The file carries no Maskwright metadata: the defaults are the official recipe's
    (3 channels, ImageNet normalisation, 0..255 range, photos rescaled to fit 512x512, classes
    ``class 1..N``); ``meta_fields``
    override any :class:`MCANetMeta` field (``classes=...``, ``modality="CT"``, ``window=...``).
    """
    path = Path(path)
    raw = _load_pth(path)
    if not isinstance(raw, Mapping):
        raise WeightsError("the checkpoint is not a dictionary of tensors", path)
    try:
        sd = checkpoint_filter_fn(raw)
        variant = variant_from_state_dict(sd)
    except ValueError as err:
        raise WeightsError(str(err), path) from err
    out = int(sd["decode_head.conv_seg.weight"].shape[0])
    classes = sigmoid_classes("class 1") if out == 1 else softmax_classes([f"class {i}" for i in range(1, out)])
    meta = MCANetMeta(variant=variant, classes=classes, resize_scale=(512, 512),
                      description=f"imported from {path.name}")
    meta = replace(meta, **meta_fields)
    model = build_model(meta)
    try:
        _load_strict(model, sd, what=f"MCANet-{variant.upper()}")
    except WeightsError as err:
        raise WeightsError(err.reason, path) from err
    return model.to(device).eval(), meta


class _Inert:
    """Stands in for a class an mmengine checkpoint pickles outside its weights (mmengine's
    ``HistoryBuffer`` in ``message_hub``, numpy arrays in ``meta``): accepts any arguments and
    state, runs no code, holds nothing anyone reads."""

    def __new__(cls, *args: object, **kwargs: object) -> _Inert:  # noqa: D102
        return super().__new__(cls)

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __setstate__(self, state: object) -> None:
        self._state = state


def _load_pth(path: Path) -> Mapping[str, Any]:
    """``torch.load(weights_only=True)``; when the file also pickles other objects (an mmengine
    checkpoint's ``message_hub``/``meta``), those are read as inert placeholders, never as the
    classes they name. Raises :class:`WeightsError` naming the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        raise WeightsError("the checkpoint file does not exist", path) from err
    except Exception as first:  # pickle.UnpicklingError for a non-allowlisted global, or a damaged file
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception as err:
            raise WeightsError(f"not a readable PyTorch checkpoint ({first})", path) from err
        if not names:
            raise WeightsError(f"not a readable PyTorch checkpoint ({first})", path) from first
        stubs = [(type(n.rpartition(".")[2], (_Inert,), {"__module__": n.rpartition(".")[0]}), n) for n in names]
        _logger.info("%s: reading %s as inert placeholders", path, ", ".join(names))
        try:
            with torch.serialization.safe_globals(stubs):
                return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise WeightsError(f"not a readable PyTorch checkpoint ({err})", path) from err


def _check_model_matches(model: MCANet, meta: MCANetMeta, path: Path) -> None:
    if model.decode_head.out_channels != meta.out_channels:
        raise ModelError(f"the model has {model.decode_head.out_channels} output channels but the metadata "
                         f"lists {len(meta.classes)} classes ({meta.out_channels} channels)", path)
    if model.backbone.in_channels != meta.in_channels:
        raise ModelError(f"the model takes {model.backbone.in_channels} input channels, the metadata says "
                         f"{meta.in_channels}", path)
