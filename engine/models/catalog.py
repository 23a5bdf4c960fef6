"""The model catalog: every model Maskwright knows, as frozen entries, plus architecture loaders.

An entry is named ``family.tag`` (``ViT-B-16-quickgelu.openai``), says what it segments
(``photo`` or ``volume``), which architecture builds it, where its weights come from (an
open_clip pretrained tag resolved through the Hugging Face hub, a URL with its sha256, or a
local file), its size, licence and preprocessing. Loading goes through one table
``architecture -> loader``: the rest of the app calls :meth:`Catalog.load` and never branches on
model types.

There is no global catalog: :func:`default_catalog` builds a fresh one with the built-in entries
and the entries of every module named in :data:`ENTRY_MODULES` (each exposes
``register_entries(catalog)``). Checkpoints published by fine-tuning are added at run time with
:meth:`Catalog.register`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from engine.errors import ModelError

if TYPE_CHECKING:
    import torch

    from engine.models.weights import WeightsManager

__all__ = [
    "HubSource",
    "UrlSource",
    "FileSource",
    "Source",
    "ModelEntry",
    "LoadContext",
    "Loader",
    "Catalog",
    "split_name",
    "default_catalog",
    "ENTRY_MODULES",
    "DEFAULT_PHOTO_MODEL",
    "OPENAI_MEAN",
    "OPENAI_STD",
]

_logger = logging.getLogger(__name__)

OPENAI_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

DEFAULT_PHOTO_MODEL = "ViT-B-16-quickgelu.openai"

# Modules that add entries (and loaders) to the default catalog, each with
# ``register_entries(catalog: Catalog) -> None``. Add one line per model family.
ENTRY_MODULES: tuple[str, ...] = ("engine.models.open_clip_entries", "engine.medical.catalog_entries")


@dataclass(frozen=True)
class HubSource:
    """Weights in a Hugging Face hub repository (how open_clip resolves its pretrained tags).

    Attributes
    ----------
    repo_id
        ``org/name`` of the hub repository, e.g. ``timm/vit_base_patch16_clip_224.openai``.
    filename
        The file inside the repository; safetensors, so loading never unpickles.
    revision
        A branch, tag or commit; ``None`` means ``main``.
    open_clip_model, open_clip_tag
        The open_clip model name and pretrained tag this file is, for the record.
    """

    repo_id: str
    filename: str = "open_clip_model.safetensors"
    revision: str | None = None
    open_clip_model: str = ""
    open_clip_tag: str = ""


@dataclass(frozen=True)
class UrlSource:
    """Weights at a plain HTTP(S) URL, verified against ``sha256`` (hex, lower case)."""

    url: str
    sha256: str
    filename: str


@dataclass(frozen=True)
class FileSource:
    """Weights already on this machine (a project checkpoint, a file the person chose).

    ``sha256`` is checked when given; the file is used where it is, never copied.
    """

    path: Path
    sha256: str | None = None


Source = HubSource | UrlSource | FileSource


@dataclass(frozen=True)
class ModelEntry:
    """One model the app knows.

    Attributes
    ----------
    name
        ``family.tag``; the family is usually the architecture's model config name.
    kind
        ``"photo"`` (open-vocabulary, RGB) or ``"volume"`` (medical, 3-D).
    architecture
        Key of the loader that builds it (``"open_clip"``, ``"mcanet"``...).
    source
        Where the weights come from.
    config
        Architecture-specific model config name (for ``open_clip`` the open_clip model name,
        e.g. ``ViT-B-16-quickgelu``).
    licence
        SPDX identifier or short licence text of the weights.
    size_bytes
        Size of the weights file, when known (shown before a download).
    mean, std
        Per-channel normalisation of inputs scaled to [0, 1], RGB order.
    input_size
        Native input size (channels, height, width) for photos, (depth, height, width) patch
        size for volumes.
    interpolation
        Resize interpolation the weights were trained with.
    labels
        Class names for closed-vocabulary models (empty for open-vocabulary ones).
    base
        For fine-tuned weights: the catalog name of the model they were fine-tuned from.
    description
        One line for ``maskwright models list``.
    """

    name: str
    kind: Literal["photo", "volume"]
    architecture: str
    source: Source
    config: str = ""
    licence: str = "unknown"
    size_bytes: int | None = None
    mean: tuple[float, ...] = OPENAI_MEAN
    std: tuple[float, ...] = OPENAI_STD
    input_size: tuple[int, ...] = (3, 224, 224)
    interpolation: str = "bicubic"
    labels: tuple[str, ...] = ()
    base: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        split_name(self.name)
        if self.kind not in ("photo", "volume"):
            raise ValueError(f"{self.name}: kind must be 'photo' or 'volume', not {self.kind!r}")
        if len(self.mean) != len(self.std):
            raise ValueError(f"{self.name}: mean and std have different lengths")

    @property
    def family(self) -> str:
        """The part of the name before the first dot."""
        return split_name(self.name)[0]

    @property
    def tag(self) -> str:
        """The part of the name after the first dot."""
        return split_name(self.name)[1]


def split_name(name: str) -> tuple[str, str]:
    """Split ``family.tag`` into ``(family, tag)``; raises ``ValueError`` without a dot."""
    family, dot, tag = name.partition(".")
    if not dot or not family or not tag:
        raise ValueError(f"model name {name!r} is not of the form family.tag")
    if any(ch in name for ch in '/\\:*?"<>|') or name != name.strip() or ".." in name:
        raise ValueError(f"model name {name!r} may not contain path characters (it names a folder)")
    return family, tag


@dataclass(frozen=True)
class LoadContext:
    """What a loader gets besides the entry and its file: the catalog (to load a base model),
    the weights manager and the torch device."""

    catalog: Catalog
    weights: WeightsManager
    device: torch.device


class Loader(Protocol):
    """``loader(entry, weights_path, ctx) -> model``: builds the model and loads the file strictly."""

    def __call__(self, entry: ModelEntry, weights_path: Path, ctx: LoadContext, /) -> Any: ...


@dataclass
class Catalog:
    """A registry of :class:`ModelEntry` and of architecture loaders.

    ``register`` raises ``ValueError`` on a duplicate name (pass ``replace=True`` to republish a
    fine-tuned checkpoint under the same name on purpose).
    """

    _entries: dict[str, ModelEntry] = field(default_factory=dict)
    _loaders: dict[str, Loader] = field(default_factory=dict)

    def register(self, entry: ModelEntry, *, replace: bool = False) -> ModelEntry:
        """Add ``entry``; returns it (so it can be used as ``e = catalog.register(ModelEntry(...))``)."""
        if entry.name in self._entries and not replace:
            raise ValueError(f"model {entry.name!r} is already in the catalog")
        self._entries[entry.name] = entry
        _logger.debug("catalog: registered %s (%s)", entry.name, entry.architecture)
        return entry

    def register_loader(self, architecture: str, loader: Loader) -> None:
        """Say how to build models of ``architecture``; raises ``ValueError`` on a duplicate."""
        if architecture in self._loaders:
            raise ValueError(f"a loader for architecture {architecture!r} is already registered")
        self._loaders[architecture] = loader

    def loader_decorator(self, architecture: str) -> Callable[[Loader], Loader]:
        """``@catalog.loader_decorator("open_clip")`` form of :meth:`register_loader`."""

        def wrap(fn: Loader) -> Loader:
            self.register_loader(architecture, fn)
            return fn

        return wrap

    def get(self, name: str) -> ModelEntry:
        """The entry called ``name``; :class:`~engine.errors.ModelError` lists the known ones."""
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise ModelError(f"unknown model {name!r}; known models: {known}") from None

    def list(self, kind: str | None = None) -> list[ModelEntry]:
        """All entries (of ``kind`` if given), sorted by name."""
        return [e for n, e in sorted(self._entries.items()) if kind is None or e.kind == kind]

    def architectures(self) -> list[str]:
        """Architectures that have a loader."""
        return sorted(self._loaders)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._entries)

    def load(
        self,
        name: str,
        weights: WeightsManager,
        *,
        device: torch.device | str = "cpu",
    ) -> Any:
        """Build model ``name`` with its weights on ``device``.

        Nothing is downloaded: a missing file raises :class:`~engine.errors.WeightsError` saying
        which ``maskwright models download/import`` command fixes it.
        """
        import torch

        entry = self.get(name)
        loader = self._loaders.get(entry.architecture)
        if loader is None:
            raise ModelError(
                f"model {name!r} has architecture {entry.architecture!r}, which has no loader "
                f"(known: {', '.join(self.architectures()) or 'none'})"
            )
        path = weights.ensure_local(name)
        ctx = LoadContext(catalog=self, weights=weights, device=torch.device(device))
        _logger.info("loading %s from %s", name, path)
        return loader(entry, path, ctx)


def default_catalog() -> Catalog:
    """A new catalog with the built-in entries and loaders of every module in :data:`ENTRY_MODULES`."""
    catalog = Catalog()
    for module_name in ENTRY_MODULES:
        module = importlib.import_module(module_name)
        module.register_entries(catalog)
    return catalog
