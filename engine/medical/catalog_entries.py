"""MCANet in the model catalog: the ``mcanet`` architecture loader and entries for checkpoints.

No trained MCANet weights were ever published, so there are no built-in entries: checkpoints
(fine-tuned in a project, or files a person imports) are added with :func:`checkpoint_entry`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from engine.medical.checkpoint import MCANetMeta, load_mcanet_checkpoint, read_mcanet_meta
from engine.medical.mcanet import MCANet
from engine.models.catalog import Catalog, FileSource, LoadContext, ModelEntry

__all__ = ["ARCHITECTURE", "register_entries", "load_entry", "checkpoint_entry"]

_logger = logging.getLogger(__name__)

ARCHITECTURE = "mcanet"


def load_entry(entry: ModelEntry, weights_path: Path, ctx: LoadContext) -> tuple[MCANet, MCANetMeta]:
    """Catalog loader: ``(model in eval mode on ctx.device, metadata)`` from a checkpoint file."""
    return load_mcanet_checkpoint(weights_path, device=ctx.device)


def register_entries(catalog: Catalog) -> None:
    """Add the ``mcanet`` loader to ``catalog`` (called by :func:`engine.models.catalog.default_catalog`)."""
    catalog.register_loader(ARCHITECTURE, load_entry)


def checkpoint_entry(path: str | Path, name: str | None = None, *, sha256: str | None = None,
                     base: str | None = None) -> ModelEntry:
    """A catalog entry for an MCANet checkpoint file (metadata read from its header).

    ``name`` defaults to ``mcanet-<variant>.<file stem>``.
    """
    path = Path(path)
    meta = read_mcanet_meta(path)
    th, tw = meta.tile_size
    return ModelEntry(
        name=name or f"mcanet-{meta.variant}.{path.stem.replace('.', '-')}",
        kind="photo" if meta.modality.lower() == "photo" else "volume",
        architecture=ARCHITECTURE,
        source=FileSource(path, sha256),
        config=f"mcanet_{meta.variant}",
        licence="weights trained by the user",
        size_bytes=path.stat().st_size,
        mean=tuple(m / 255.0 for m in meta.mean),
        std=tuple(s / 255.0 for s in meta.std),
        input_size=(meta.in_channels, th, tw),
        interpolation="bilinear",
        labels=tuple(c.name for c in sorted(meta.classes, key=lambda c: c.channel)),
        base=base,
        description=meta.description or f"MCANet-{meta.variant.upper()} {meta.modality}".strip(),
    )
