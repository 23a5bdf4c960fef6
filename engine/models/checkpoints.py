"""Catalog entries for checkpoints made on this machine (fine-tuning publishes them at run time).

Our own safetensors files say what they are in their metadata (``"format"``):

- ``maskwright.cascade_clip``: a Cascade-CLIP head (:func:`engine.openvocab.cascade_io.save_head`);
  its backbone is named in the head's config.
- ``maskwright.open_clip_visual``: fine-tuned image-encoder weights
  (:func:`engine.openvocab.densevlm_convert.save_visual_weights`); the base model is named in
  the ``"maskwright"`` metadata (``{"base": ...}``) or given by the caller.

Other files (e.g. medical checkpoints) need their ``architecture`` given explicitly.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Literal

from engine.errors import WeightsError
from engine.models.catalog import FileSource, ModelEntry
from engine.models.download import sha256_file

__all__ = ["entry_for_checkpoint", "read_metadata"]

_logger = logging.getLogger(__name__)

_ARCHITECTURE_OF_FORMAT = {
    "maskwright.cascade_clip": "cascade_clip",
    "maskwright.open_clip_visual": "open_clip_visual",
}


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a safetensors file (empty for other files).

    Raises :class:`~engine.errors.WeightsError` when the file is missing or a damaged
    safetensors file.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError("checkpoint not found", path)
    if path.suffix != ".safetensors":
        return {}
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return dict(f.metadata() or {})
    except Exception as err:  # safetensors raises its own error types
        raise WeightsError(f"not a safetensors file ({err})", path) from err


def entry_for_checkpoint(
    path: str | Path,
    *,
    name: str,
    base: str | None = None,
    architecture: str | None = None,
    kind: Literal["photo", "volume"] = "photo",
    description: str = "",
) -> ModelEntry:
    """A catalog entry for a checkpoint file, pinned to its current sha256.

    Parameters
    ----------
    path
        The checkpoint (used where it is, never copied).
    name
        Catalog name, ``family.tag`` (e.g. ``project.run-7``).
    base
        Base model for fine-tuned weights; default: what the file's metadata says.
    architecture
        Loader to use; default: deduced from the file's ``"format"`` metadata.
    kind, description
        As in :class:`~engine.models.catalog.ModelEntry`.

    Raises
    ------
    WeightsError
        Unreadable file, unknown format without ``architecture``, or fine-tuned weights whose
        base model is unknown.
    """
    path = Path(path)
    meta = read_metadata(path)
    fmt = meta.get("format", "")
    arch = architecture or _ARCHITECTURE_OF_FORMAT.get(fmt)
    if arch is None:
        raise WeightsError(f"cannot tell which model this checkpoint is for (format {fmt or 'unknown'!r}); "
                           "give its architecture", path)
    if base is None and arch == "cascade_clip" and "config" in meta:
        base = json.loads(meta["config"]).get("backbone")
    if base is None and arch == "open_clip_visual":
        base = json.loads(meta.get("maskwright", "{}")).get("base")
        if not base:
            raise WeightsError("fine-tuned image-encoder weights that do not name their base model; give base=",
                               path)
    entry = ModelEntry(name=name, kind=kind, architecture=arch, source=FileSource(path, sha256_file(path)),
                       size_bytes=path.stat().st_size, base=base, licence="project",
                       description=description or f"{arch} checkpoint {path.name}")
    _logger.info("checkpoint %s -> catalog entry %s (%s, base %s)", path, name, arch, base)
    return entry
