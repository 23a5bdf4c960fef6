"""Class-name text embeddings: prompt templates, synonyms, and a two-level cache.

As in the reference code (NACLIP, SCLIP, ClearCLIP, MaskCLIP): each name goes through every
prompt template (by default the 80 OpenAI ImageNet templates), each prompt embedding is
L2-normalised, the prompts are averaged and the mean is normalised again.

A class may have several names (``"cat; kitten"``). :class:`ClassQueries` keeps every name as
its own query plus the class each belongs to; the pipeline takes a softmax over all names and
each class keeps its best name (:func:`class_max`).

Embeddings are cached in memory and on disk, keyed by model, template set and name: a class
typed a second time costs nothing, also after a restart. Token sequences are cut to the
longest prompt before encoding (the causal text transformer gives identical embeddings and a
new name costs several times less).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.fsutil import atomic_path
from engine.openvocab.clip_model import ClipModel

__all__ = [
    "IMAGENET_TEMPLATES",
    "ClassQueries",
    "TextEncoder",
    "class_max",
    "encode_prompts",
]

_logger = logging.getLogger(__name__)


def _openai_templates() -> tuple[str, ...]:
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return tuple(t("{}") for t in OPENAI_IMAGENET_TEMPLATES)


IMAGENET_TEMPLATES: tuple[str, ...] = _openai_templates()
"""The 80 OpenAI ImageNet prompt templates; ``{}`` stands for the class name."""


@dataclass(frozen=True, eq=False)
class ClassQueries:
    """Text embeddings of every name of every class.

    Attributes
    ----------
    embeddings
        ``(Q, E)`` float32, L2-normalised, one row per name.
    owner
        ``(Q,)`` int64: the index (0..K-1) of the class each name belongs to.
    names
        The ``Q`` names, in row order.
    num_classes
        ``K``.
    """

    embeddings: torch.Tensor
    owner: torch.Tensor
    names: tuple[str, ...]
    num_classes: int


def class_max(probs: torch.Tensor, owner: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per-class best-name probability: ``(Q, ...)`` -> ``(K, ...)`` (max over each class's names)."""
    if probs.shape[0] == num_classes and bool((owner == torch.arange(num_classes, device=owner.device)).all()):
        return probs
    out = probs.new_full((num_classes, *probs.shape[1:]), float("-inf"))
    index = owner.to(probs.device).view(-1, *([1] * (probs.ndim - 1))).expand_as(probs)
    return out.scatter_reduce(0, index, probs, reduce="amax", include_self=True)


def _tokenizer_for(clip: ClipModel):  # noqa: ANN202 - open_clip tokenizer object
    """open_clip's tokenizer for the model's name; the stock CLIP BPE tokenizer for explicit configs."""
    import open_clip

    if clip.spec.config is None:
        try:
            return open_clip.get_tokenizer(clip.spec.name)
        except Exception as err:  # noqa: BLE001 - unknown names fall back to the CLIP tokenizer
            _logger.debug("no open_clip tokenizer for %s (%s); using the CLIP BPE tokenizer", clip.spec.name, err)
    return open_clip.get_tokenizer("ViT-B-16")


def encode_prompts(clip: ClipModel, tokens: torch.Tensor) -> torch.Tensor:
    """Text embeddings (unnormalised, ``(P, E)``) of ``(P, L)`` token ids.

    For open_clip's standard CLIP (causal mask, EOT pooling) the sequence is cut after the
    longest prompt's end token; the result equals ``model.encode_text`` on the full sequence.
    """
    model = clip.model
    pool = getattr(model, "text_pool_type", "argmax")
    mask = getattr(model, "attn_mask", None)
    if not hasattr(model, "token_embedding") or pool != "argmax" or mask is None:
        return model.encode_text(tokens)
    length = int(tokens.argmax(dim=-1).max()) + 1
    tokens = tokens[:, :length]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast)
    x = x + model.positional_embedding[:length].to(cast)
    x = model.transformer(x, attn_mask=mask[:length, :length])
    x = model.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
    proj = model.text_projection
    return proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj


class TextEncoder:
    """Embeds class names for one model, with an in-memory and an on-disk cache.

    Parameters
    ----------
    clip
        The model whose text tower embeds the names.
    templates
        Prompt templates with ``{}`` for the name; default :data:`IMAGENET_TEMPLATES`.
    cache_dir
        Folder for the on-disk cache (one small ``.npy`` per name); ``None`` = memory only.
    """

    def __init__(self, clip: ClipModel, *, templates: Sequence[str] | None = None,
                 cache_dir: str | Path | None = None) -> None:
        self.clip = clip
        self.templates = tuple(templates) if templates is not None else IMAGENET_TEMPLATES
        if not self.templates or any("{}" not in t for t in self.templates):
            raise ValueError("every prompt template needs a {} where the class name goes")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        digest = hashlib.sha1("\n".join([clip.key, *self.templates]).encode()).hexdigest()[:16]
        self._space = digest
        self._memory: dict[str, torch.Tensor] = {}
        self._tokenizer = _tokenizer_for(clip)
        self.encoded_count = 0  # names actually run through the text tower (not from a cache)

    def _disk_path(self, name: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / self._space / (hashlib.sha1(name.encode()).hexdigest()[:24] + ".npy")

    def _from_disk(self, name: str) -> torch.Tensor | None:
        path = self._disk_path(name)
        if path is None or not path.is_file():
            return None
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            _logger.warning("%s: unreadable cached text embedding, recomputing (%s)", path, err)
            return None
        if arr.shape != (self.clip.embed_dim,) or arr.dtype != np.float32:
            return None
        return torch.from_numpy(arr)

    def _to_disk(self, name: str, emb: torch.Tensor) -> None:
        path = self._disk_path(name)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, emb.detach().cpu().numpy().astype(np.float32), allow_pickle=False)
        except Exception as err:  # noqa: BLE001 - a cache that cannot be written is only slower
            _logger.warning("could not cache a text embedding in %s: %s", path, err)

    @torch.inference_mode()
    def _encode(self, names: Sequence[str]) -> torch.Tensor:
        prompts = [t.replace("{}", n) for n in names for t in self.templates]
        tokens = self._tokenizer(prompts).to(self.clip.device)
        emb = encode_prompts(self.clip, tokens).float()
        emb = F.normalize(emb, dim=-1).view(len(names), len(self.templates), -1).mean(dim=1)
        self.encoded_count += len(names)
        return F.normalize(emb, dim=-1).cpu()

    def embed_names(self, names: Sequence[str]) -> torch.Tensor:
        """``(N, E)`` float32 normalised embeddings of ``names`` (on the model's device)."""
        out: list[torch.Tensor | None] = []
        missing: list[str] = []
        for n in names:
            emb = self._memory.get(n)
            if emb is None:
                emb = self._from_disk(n)
                if emb is not None:
                    self._memory[n] = emb
            if emb is None and n not in missing:
                missing.append(n)
            out.append(emb)
        if missing:
            fresh = self._encode(missing)
            for n, emb in zip(missing, fresh):
                self._memory[n] = emb
                self._to_disk(n, emb)
        if not names:
            return torch.zeros(0, self.clip.embed_dim, device=self.clip.device)
        return torch.stack([self._memory[n] for n in names]).to(self.clip.device)

    def queries(self, classes: Sequence[Sequence[str]]) -> ClassQueries:
        """Embeddings of several classes, each given by its names (synonyms).

        Parameters
        ----------
        classes
            ``K`` sequences of names, e.g. ``[["cat", "kitten"], ["dog"]]``.
        """
        names: list[str] = []
        owner: list[int] = []
        for k, synonyms in enumerate(classes):
            clean = [s.strip() for s in synonyms if s.strip()]
            if not clean:
                raise ValueError(f"class {k} has no name")
            names += clean
            owner += [k] * len(clean)
        emb = self.embed_names(names)
        return ClassQueries(emb, torch.tensor(owner, dtype=torch.int64), tuple(names), len(classes))
