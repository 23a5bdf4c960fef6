"""Training samples from a project's corrected annotations.

* Only items whose status is ``corrected`` or ``approved`` train (:data:`TRAINABLE`).
* The split into training and validation is by item and stable: an item goes to validation when
  a hash of its key falls below ``val_fraction``, so adding items never moves the old ones.
* Class ids are stable; the model's output channels follow a :class:`ClassMap` (channel 0 is
  background, channel ``k`` is the ``k``-th class id in ascending order). When a class is added,
  :func:`grow_output_channels` gives the model a new channel and keeps every learned one.
* Volumes train slice by slice (:class:`SliceSamples`, 2D or 2.5D), with half of each batch drawn
  from slices that contain the rarest class; photos train on random resized crops
  (:class:`PhotoSamples`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from engine.items import LabelSet, Photo, Volume
from trainers.augment import PhotoAugment, SliceAugment, augment_photo, augment_slice
from trainers.sampling import Draw

__all__ = [
    "TRAINABLE",
    "ClassMap",
    "TrainingItem",
    "AnnotationSource",
    "split_by_item",
    "grow_output_channels",
    "PhotoSamples",
    "SliceSamples",
    "to_device",
]

_logger = logging.getLogger(__name__)

TRAINABLE = ("corrected", "approved")


@dataclass(frozen=True)
class ClassMap:
    """Which class id each output channel stands for (channel 0 is background).

    Attributes
    ----------
    ids
        Class id of channels ``1..K``, ascending.
    names
        Class names, same order (for metrics and the published metadata).
    prompts
        Class prompt texts (open-vocabulary heads read them).
    """

    ids: tuple[int, ...]
    names: tuple[str, ...]
    prompts: tuple[str, ...] = ()

    @classmethod
    def from_labels(cls, labels: LabelSet) -> ClassMap:
        """Channels for every class of ``labels``, in id order."""
        classes = list(labels)
        return cls(tuple(c.id for c in classes), tuple(c.name for c in classes), tuple(c.prompt for c in classes))

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> ClassMap:
        """The inverse of :meth:`as_dict`."""
        return cls(tuple(int(i) for i in value["ids"]), tuple(value["names"]), tuple(value.get("prompts", ())))

    def as_dict(self) -> dict[str, list[Any]]:
        """JSON-able form (stored with checkpoints)."""
        return {"ids": list(self.ids), "names": list(self.names), "prompts": list(self.prompts)}

    @property
    def num_channels(self) -> int:
        """Output channels: the classes plus background."""
        return len(self.ids) + 1

    @property
    def channel_names(self) -> list[str]:
        """``["background", *names]``."""
        return ["background", *self.names]

    def to_channels(self, labelmap: np.ndarray) -> np.ndarray:
        """Class ids -> channel indices (uint8); ids outside the map become background.

        Parameters
        ----------
        labelmap
            Any shape, uint8/uint16 class ids.
        """
        lut = np.zeros(max(max(self.ids, default=0), int(labelmap.max(initial=0))) + 1, dtype=np.uint8)
        for channel, class_id in enumerate(self.ids, start=1):
            lut[class_id] = channel
        return lut[labelmap]

    def to_ids(self, channels: np.ndarray) -> np.ndarray:
        """Channel indices -> class ids (uint16 when an id needs it, else uint8)."""
        table = np.asarray((0, *self.ids), dtype=np.uint16 if max(self.ids, default=0) > 255 else np.uint8)
        return table[channels]

    def growth_from(self, old: ClassMap) -> list[int | None]:
        """For each channel of this map, the channel of ``old`` with the same class id (or ``None``
        for a class ``old`` did not have). Background maps to background."""
        where = {class_id: ch for ch, class_id in enumerate(old.ids, start=1)}
        return [0, *(where.get(class_id) for class_id in self.ids)]


def grow_output_channels(weight: torch.Tensor, bias: torch.Tensor | None, mapping: Sequence[int | None], *,
                         binary: bool = False, init_std: float = 0.01, seed: int = 0
                         ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A classifier's weights for a new channel layout that keeps every learned channel.

    Parameters
    ----------
    weight, bias
        ``(C_old, ...)`` and ``(C_old,)`` of the final conv/linear layer.
    mapping
        From :meth:`ClassMap.growth_from`: for each new channel, its old channel or ``None``.
    binary
        The old layer is a single sigmoid channel (the official binary MCANet): it becomes
        softmax channels with background logit 0, which gives exactly the same probabilities.
    init_std
        New channels get ``N(0, init_std)`` weights and zero bias (mmseg's ``conv_seg`` init).

    Returns
    -------
    weight, bias
        ``(len(mapping), ...)`` and ``(len(mapping),)``.
    """
    gen = torch.Generator().manual_seed(seed)
    new_w = torch.randn((len(mapping), *weight.shape[1:]), generator=gen, dtype=torch.float32) * init_std
    new_w = new_w.to(weight.dtype)
    new_b = torch.zeros(len(mapping), dtype=bias.dtype) if bias is not None else None
    for ch, old in enumerate(mapping):
        if binary:
            if old is None or old == 0:
                if old == 0:
                    new_w[ch] = 0.0
                continue
            old = 0  # the single sigmoid channel is the foreground class
        elif old is None:
            continue
        new_w[ch] = weight[old]
        if new_b is not None and bias is not None:
            new_b[ch] = bias[old]
    return new_w, new_b


def split_by_item(keys: Sequence[str], val_fraction: float = 0.2) -> tuple[list[int], list[int]]:
    """Stable train/validation split of items by a hash of their keys.

    Parameters
    ----------
    keys
        One stable key per item (see :class:`TrainingItem.key`).
    val_fraction
        Expected share of validation items; 0 disables validation.

    Returns
    -------
    train, val
        Indices into ``keys``. With two or more items and ``val_fraction > 0`` both are non-empty
        (the item with the lowest hash goes to validation when the hash alone picks none, the
        highest to training when it picks all); a single item trains and nothing validates.
    """
    u = [int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8).digest(), "little") / 2.0**64 for k in keys]
    val = [i for i, x in enumerate(u) if x < val_fraction]
    train = [i for i, x in enumerate(u) if x >= val_fraction]
    if val_fraction > 0 and len(keys) >= 2:
        if not val:
            first = min(range(len(keys)), key=lambda i: u[i])
            val, train = [first], [i for i in train if i != first]
        elif not train:
            last = max(range(len(keys)), key=lambda i: u[i])
            train, val = [last], [i for i in val if i != last]
    return train, val


@dataclass(frozen=True)
class TrainingItem:
    """One annotated item that may train.

    Attributes
    ----------
    key
        Stable split key (``"<item id>:<series uid or file name>"``).
    item_id
        The project's item id.
    kind
        ``"photo"`` or ``"volume"``.
    name
        Display name.
    version
        The annotation version used.
    """

    key: str
    item_id: int
    kind: str
    name: str
    version: int


class AnnotationSource(Protocol):
    """What :mod:`trainers.data` needs from a project (see :class:`trainers.project.ProjectSource`)."""

    def labels(self) -> LabelSet: ...

    def trainable_items(self) -> list[TrainingItem]: ...

    def read_photo(self, item: TrainingItem) -> Photo: ...

    def read_volume(self, item: TrainingItem) -> Volume: ...

    def read_labels(self, item: TrainingItem) -> np.ndarray: ...


def _normalise(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    m = torch.tensor(mean, dtype=image.dtype).view(-1, 1, 1)
    s = torch.tensor(std, dtype=image.dtype).view(-1, 1, 1)
    return (image - m) / s


class PhotoSamples(Dataset):
    """Random resized crops of annotated photos.

    Parameters
    ----------
    photos
        ``(rgb, channels)`` pairs: ``(H, W, 3)`` uint8 and ``(H, W)`` channel indices.
    size
        Training crop ``(height, width)``.
    mean, std
        Normalisation of the model (in [0, 1] units, e.g. CLIP's).
    augment
        Crop/flip/jitter ranges; validation draws (``augment=False``) are resized to fit and padded.
    """

    def __init__(self, photos: Sequence[tuple[np.ndarray, np.ndarray]], size: tuple[int, int], *,
                 mean: Sequence[float], std: Sequence[float], augment: PhotoAugment = PhotoAugment()) -> None:
        self.photos = list(photos)
        self.size = size
        self.mean, self.std = tuple(mean), tuple(std)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, draw: Draw) -> dict[str, torch.Tensor]:
        rgb, channels = self.photos[draw.index]
        cfg = self.augment if draw.augment else PhotoAugment(enabled=False)
        image, target = augment_photo(rgb, channels.astype(np.int64), draw.seed, cfg=cfg, size=self.size)
        return {"image": _normalise(image, self.mean, self.std), "target": target}


class SliceSamples(Dataset):
    """Axial slices of annotated volumes (2D, or 2.5D with neighbouring slices as channels).

    Parameters
    ----------
    volumes
        ``(unit, channels)`` pairs: ``(z, y, x)`` intensities already windowed to ``[0, 1]`` and
        resampled in-plane as at inference (kept as float16), and ``(z, y, x)`` channel indices.
    size
        Training size ``(height, width)`` of a slice.
    channel_slices
        ``(z, depth) -> (C,)`` slice index feeding each input channel (the inference rule:
        ``engine.medical.preprocess.channel_indices``); default: the slice alone (1 channel).
    normalise
        ``(1, C, H, W) -> (1, C, H, W)`` input normalisation of the model (after intensity
        augmentation, before the geometric warp).
    augment
        Flip/rotation/scale/intensity ranges (validation draws are not augmented).
    """

    def __init__(self, volumes: Sequence[tuple[np.ndarray, np.ndarray]], size: tuple[int, int], *,
                 channel_slices: Callable[[int, int], np.ndarray] | None = None,
                 normalise: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 augment: SliceAugment = SliceAugment()) -> None:
        self.volumes = [(np.asarray(img, dtype=np.float16), np.asarray(lab, dtype=np.uint8)) for img, lab in volumes]
        self.size = size
        self.channel_slices = channel_slices or (lambda z, depth: np.asarray([z]))
        self.normalise = normalise
        self.augment = augment
        self.index = [(v, z) for v, (img, _) in enumerate(self.volumes) for z in range(img.shape[0])]

    def __len__(self) -> int:
        return len(self.index)

    def class_voxels(self, num_channels: int) -> np.ndarray:
        """``(num_channels,)`` int64 voxel count per channel over all volumes."""
        return sum((np.bincount(lab.ravel(), minlength=num_channels)[:num_channels] for _, lab in self.volumes),
                   np.zeros(num_channels, dtype=np.int64))

    def rarest_channel(self, num_channels: int) -> int | None:
        """The foreground channel with the fewest voxels among those present, or ``None``."""
        counts = self.class_voxels(num_channels)[1:]
        present = [c for c in range(len(counts)) if counts[c] > 0]
        return 1 + min(present, key=lambda c: counts[c]) if present else None

    def slices_with(self, channel: int) -> list[int]:
        """Dataset indices of the slices containing ``channel``."""
        return [i for i, (v, z) in enumerate(self.index) if (self.volumes[v][1][z] == channel).any()]

    def __getitem__(self, draw: Draw) -> dict[str, torch.Tensor]:
        v, z = self.index[draw.index]
        img, lab = self.volumes[v]
        zs = self.channel_slices(z, img.shape[0])
        image = torch.from_numpy(img[zs].astype(np.float32))
        target = torch.from_numpy(lab[z].astype(np.int64))
        cfg = self.augment if draw.augment else SliceAugment(enabled=False)
        image, target = augment_slice(image, target, draw.seed, cfg=cfg, size=self.size, normalise=self.normalise)
        return {"image": image, "target": target}


def to_device(batch: Any, device: torch.device) -> Any:  # noqa: ANN401 - batches are nested containers
    """Move every tensor of a (nested dict/list/tuple) batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch
