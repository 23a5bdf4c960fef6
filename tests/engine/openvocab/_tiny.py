"""The tiny random-weight CLIP every openvocab test (and the fidelity fixtures) use.

``TINY_CONFIG`` is an open_clip model config (QuickGELU like OpenAI's ViT-B/16, vocab 49408 for
the stock tokenizer); :func:`tiny_clip` builds it with random weights from ``TINY_SEED``.
"""

from __future__ import annotations

from engine.openvocab.clip_model import ClipModel, ClipSpec, load_clip

TINY_SEED = 1234
TINY_CONFIG = {
    "embed_dim": 32,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 128, "layers": 2, "head_width": 64},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1},
}


def tiny_spec(seed: int = TINY_SEED) -> ClipSpec:
    """A :class:`ClipSpec` of the tiny test model."""
    return ClipSpec(name="tiny-test-vit", pretrained=None, config=TINY_CONFIG, seed=seed)


def tiny_clip(seed: int = TINY_SEED) -> ClipModel:
    """The tiny model with random weights from ``seed``."""
    return load_clip(tiny_spec(seed))
