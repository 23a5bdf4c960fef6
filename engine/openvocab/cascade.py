"""Cascade-CLIP head: multi-level CLIP features, three cascaded text-query decoders.

Li et al., "Cascade-CLIP: Cascaded Vision-Language Embeddings Alignment for Zero-Shot Semantic
Segmentation", ICML 2024 (https://arxiv.org/abs/2406.00670; code HVision-NKU/Cascade-CLIP, on
ZegCLIP). The mathematics is ported; the layout (batch-first, any grid) is ours.

- The open_clip ViT stays frozen. Optional deep visual prompt tokens (VPT-deep, as the reference:
  ``prompt_embeddings`` before block 0, ``deep_prompt_embeddings[i-1]`` replacing them before
  block ``i``, a shared ``prompt_proj`` and ``prompt_norm``) are the only things that change
  what the backbone computes.
- Tapped blocks (default 0-based 5..10) each get their own LayerNorm and ``width -> dim``
  projection; tokens are L2-normalised per pixel. **Deliberate difference**: the reference keeps
  these projections frozen at random init; ours are trainable and start as a copy of CLIP's own
  ``ln_post``/``proj`` (:meth:`CascadeHead.init_from_clip`), so every tap starts in the joint
  image-text space.
- Stages: blocks {5,6,7}, {8,9,10}, then the final output; inside a stage the taps are mixed with
  learnable weights initialised to exp(-x^2/2), x = n-1..0.
- One decoder per stage: queries ``Linear(concat(global * text, text))``; 3 post-norm layers of
  cross-attention + FFN (no self-attention); the mask of a decoder is its last layer's
  pre-softmax attention logits averaged over heads. The stages' masks are summed.
- Queries are built from whatever text embeddings are passed, so class names never seen in
  training still get a map.
- **Layout fix**: the reference adds ``class_embedding`` to the CLS token twice (token and
  position); here it is added once, as in CLIP. With a zero ``class_embedding`` both agree.

Checkpoints, the reference's checkpoints and the catalog loader: :mod:`engine.openvocab.cascade_io`.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import ModelError

__all__ = [
    "CascadeConfig",
    "CascadeHead",
    "CascadeCLIP",
    "CascadeFeatures",
    "combine_probabilities",
    "slide_probabilities",
]

_logger = logging.getLogger(__name__)


def _gaussian_init(n: int) -> torch.Tensor:
    """exp(-x^2/2) for x = n-1, ..., 0 (the reference's 3-tap init is x = 2, 1, 0)."""
    x = torch.arange(n - 1, -1, -1, dtype=torch.float32)
    return torch.exp(-0.5 * x**2)


@dataclass(frozen=True)
class CascadeConfig:
    """Shape of a Cascade-CLIP head.

    Attributes
    ----------
    backbone
        Catalog name of the frozen open_clip model the head was built for.
    width, dim, depth
        Visual token width, text/joint embedding dim, number of ViT blocks of the backbone.
    stages
        0-based block indices tapped for each intermediate stage; the final output is always
        one more stage. Default: the paper's {5,6,7}, {8,9,10} + final.
    num_heads, num_layers, ffn_dim
        Per decoder: attention heads, layers, FFN hidden width.
    num_prompt_tokens
        Deep visual prompt tokens per block (0 disables prompts).
    dropout
        Dropout in the decoders and on the prompts (training only).
    double_class_embedding
        Add ``class_embedding`` to the CLS token twice, as the reference code does. Only for
        heads converted from the official checkpoints, which were trained on that input.
    """

    backbone: str = "ViT-B-16-quickgelu.openai"
    width: int = 768
    dim: int = 512
    depth: int = 12
    stages: tuple[tuple[int, ...], ...] = ((5, 6, 7), (8, 9, 10))
    num_heads: int = 8
    num_layers: int = 3
    ffn_dim: int = 2048
    num_prompt_tokens: int = 10
    dropout: float = 0.1
    double_class_embedding: bool = False

    @property
    def tap_layers(self) -> tuple[int, ...]:
        """All tapped block indices, stage by stage."""
        return tuple(i for s in self.stages for i in s)

    def to_json(self) -> str:
        """JSON text of the config (tuples become lists)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CascadeConfig:
        """Inverse of :meth:`to_json`."""
        raw = json.loads(text)
        raw["stages"] = tuple(tuple(s) for s in raw["stages"])
        return cls(**raw)


@dataclass
class CascadeFeatures:
    """What the frozen backbone gives the decoders.

    Attributes
    ----------
    taps
        One float tensor (B, h*w, dim) per tapped block, L2-normalised per token.
    final
        (B, h*w, dim): the last block through ``ln_post`` and ``proj``, L2-normalised.
    global_embedding
        (B, dim): the CLS token through ``ln_post`` and ``proj``, L2-normalised.
    grid
        (h, w) patch grid.
    """

    taps: list[torch.Tensor]
    final: torch.Tensor
    global_embedding: torch.Tensor
    grid: tuple[int, int]


class _CrossAttention(nn.Module):
    """Multi-head cross-attention that also returns its pre-softmax logits averaged over heads."""

    def __init__(self, dim: int, num_heads: int, attn_drop: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)

    def forward(self, xq: torch.Tensor, xkv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """xq (B, Nq, C), xkv (B, Nk, C) -> output (B, Nq, C), mean-over-heads logits (B, Nq, Nk)."""
        b, nq, c = xq.shape
        nk = xkv.shape[1]
        h = self.num_heads
        q = self.q(xq).reshape(b, nq, h, c // h).transpose(1, 2)
        k = self.k(xkv).reshape(b, nk, h, c // h).transpose(1, 2)
        v = self.v(xkv).reshape(b, nk, h, c // h).transpose(1, 2)
        logits = (q @ k.transpose(-2, -1)) * self.scale
        attn = self.attn_drop(logits.softmax(dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(b, nq, c)
        return self.proj(out), logits.mean(dim=1)


class _DecoderLayer(nn.Module):
    """Post-norm layer: cross-attention + residual + norm, FFN (ReLU) + residual + norm."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.cross_attn = _CrossAttention(dim, num_heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm3 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, logits = self.cross_attn(tgt, memory)
        tgt = self.norm2(tgt + self.dropout2(out))
        tgt = self.norm3(tgt + self.dropout3(self.linear2(self.dropout(F.relu(self.linear1(tgt))))))
        return tgt, logits


class _Decoder(nn.Module):
    def __init__(self, cfg: CascadeConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            _DecoderLayer(cfg.dim, cfg.num_heads, cfg.ffn_dim, cfg.dropout) for _ in range(cfg.num_layers)
        )

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """queries (B, C, dim), memory (B, N, dim) -> last layer's mask logits (B, C, N)."""
        logits = queries.new_zeros(())
        for layer in self.layers:
            queries, logits = layer(queries, memory)
        return logits


class CascadeHead(nn.Module):
    """The trainable part of Cascade-CLIP (prompts, tap norms/projections, mixing, decoders).

    Parameters
    ----------
    cfg
        Its shape; ``cfg.width``/``cfg.depth`` must match the backbone it is used with.
    """

    def __init__(self, cfg: CascadeConfig) -> None:
        super().__init__()
        if any(i < 0 or i >= cfg.depth for i in cfg.tap_layers):
            raise ValueError(f"tapped blocks {cfg.tap_layers} must lie in 0..{cfg.depth - 1}")
        self.cfg = cfg
        t, w = cfg.num_prompt_tokens, cfg.width
        if t > 0:
            bound = math.sqrt(6.0 / float(3 * 16 * 16 + w))  # the reference's uniform init (patch 16)
            self.prompt_embeddings = nn.Parameter(torch.empty(1, t, w).uniform_(-bound, bound))
            self.deep_prompt_embeddings = nn.Parameter(torch.empty(cfg.depth - 1, t, w).uniform_(-bound, bound))
            self.prompt_proj = nn.Linear(w, w)
            self.prompt_norm = nn.LayerNorm(w, eps=1e-6)
            self.prompt_dropout = nn.Dropout(cfg.dropout)
        self.tap_norms = nn.ModuleList(nn.LayerNorm(w) for _ in cfg.tap_layers)
        self.tap_projs = nn.Parameter(torch.randn(len(cfg.tap_layers), w, cfg.dim) * w**-0.5)
        self.mix = nn.ParameterList(nn.Parameter(_gaussian_init(len(s))) for s in cfg.stages)
        n_dec = len(cfg.stages) + 1
        self.q_projs = nn.ModuleList(nn.Linear(2 * cfg.dim, cfg.dim) for _ in range(n_dec))
        self.decoders = nn.ModuleList(_Decoder(cfg) for _ in range(n_dec))
        self._init_weights()

    def _init_weights(self) -> None:
        for module in [*self.q_projs, *self.decoders]:
            for m in module.modules():
                if isinstance(m, nn.Linear):
                    nn.init.trunc_normal_(m.weight, std=0.02)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.LayerNorm):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
        if self.cfg.num_prompt_tokens > 0:
            nn.init.kaiming_normal_(self.prompt_proj.weight, a=0, mode="fan_out")

    @torch.no_grad()
    def init_from_clip(self, visual: nn.Module) -> None:
        """Start every tap's LayerNorm and projection as a copy of CLIP's ``ln_post`` and ``proj``."""
        for norm in self.tap_norms:
            norm.load_state_dict(visual.ln_post.state_dict())
        self.tap_projs.copy_(visual.proj.detach().expand_as(self.tap_projs))

    # -- backbone pass ---------------------------------------------------------------------
    def _prompts(self, index: int, batch: int) -> torch.Tensor:
        raw = self.prompt_embeddings[0] if index == 0 else self.deep_prompt_embeddings[index - 1]
        return self.prompt_dropout(self.prompt_proj(raw)).expand(batch, -1, -1)

    def encode(self, visual: nn.Module, images: torch.Tensor) -> CascadeFeatures:
        """Run the frozen open_clip ``VisionTransformer`` with prompts and taps.

        Parameters
        ----------
        visual
            ``model.visual`` of an open_clip CLIP ViT (``conv1``, ``class_embedding``,
            ``positional_embedding``, ``ln_pre``, ``transformer.resblocks``, ``ln_post``, ``proj``).
        images
            (B, 3, H, W) float, normalised with the model's mean/std; H and W multiples of the
            patch size (any grid: the position embedding is resized bilinearly).
        """
        cfg = self.cfg
        blocks = visual.transformer.resblocks
        if len(blocks) != cfg.depth or visual.conv1.out_channels != cfg.width:
            raise ModelError(
                f"this head was built for depth {cfg.depth}, width {cfg.width}; the backbone has "
                f"{len(blocks)} blocks of width {visual.conv1.out_channels}"
            )
        x = visual.conv1(images.to(visual.conv1.weight.dtype))
        b, c, gh, gw = x.shape
        x = x.flatten(2).transpose(1, 2)
        pos = _resize_pos(visual.positional_embedding, (gh, gw)).to(x.dtype)
        cls_emb = visual.class_embedding * (2.0 if cfg.double_class_embedding else 1.0)
        cls = (cls_emb + pos[0]).expand(b, 1, c)
        x = visual.ln_pre(torch.cat([cls, x + pos[1:]], dim=1))
        n_patch = gh * gw
        t = cfg.num_prompt_tokens
        batch_first = getattr(visual.transformer, "batch_first", True)
        raw_taps: dict[int, torch.Tensor] = {}
        for i, blk in enumerate(blocks):
            if t > 0:
                x = torch.cat([x[:, :1], self._prompts(i, b), x[:, -n_patch:]], dim=1)
            x = blk(x) if batch_first else blk(x.transpose(0, 1)).transpose(0, 1)
            if i in cfg.tap_layers:
                raw_taps[i] = self.prompt_norm(x) if t > 0 else x
        if t > 0:
            x = self.prompt_norm(x)
        x = visual.ln_post(x) @ visual.proj
        taps = []
        for k, i in enumerate(cfg.tap_layers):
            f = self.tap_norms[k](raw_taps[i][:, -n_patch:]) @ self.tap_projs[k]
            taps.append(F.normalize(f, dim=-1))
        return CascadeFeatures(
            taps=taps,
            final=F.normalize(x[:, -n_patch:], dim=-1),
            global_embedding=F.normalize(x[:, 0], dim=-1),
            grid=(gh, gw),
        )

    # -- decoders ----------------------------------------------------------------------------
    def decode(self, feats: CascadeFeatures, text: torch.Tensor) -> torch.Tensor:
        """Mask logits on the patch grid.

        Parameters
        ----------
        feats
            From :meth:`encode`.
        text
            (C, dim) class text embeddings (L2-normalised here), for any class names.

        Returns
        -------
        torch.Tensor
            (B, C, h, w) float logits: the sum of the stages' decoders' masks.
        """
        text = F.normalize(text.to(feats.final.dtype), dim=-1)
        b = feats.final.shape[0]
        t = text.unsqueeze(0).expand(b, -1, -1)
        q_in = torch.cat([feats.global_embedding.unsqueeze(1) * t, t], dim=-1)  # (B, C, 2 dim)
        memories = []
        start = 0
        for k, stage in enumerate(self.cfg.stages):
            taps = feats.taps[start:start + len(stage)]
            start += len(stage)
            memories.append(sum(w * f for w, f in zip(self.mix[k], taps)))
        memories.append(feats.final)
        total = None
        for q_proj, decoder, memory in zip(self.q_projs, self.decoders, memories):
            logits = decoder(q_proj(q_in), memory)
            total = logits if total is None else total + logits
        assert total is not None
        h, w = feats.grid
        return total.reshape(b, -1, h, w)


def _resize_pos(pos: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(1 + n*n, C) position embedding -> (1 + gh*gw, C), bilinear on the patch part."""
    n = int(round(math.sqrt(pos.shape[0] - 1)))
    if (n, n) == grid:
        return pos
    spatial = pos[1:].reshape(1, n, n, -1).permute(0, 3, 1, 2)
    spatial = F.interpolate(spatial, size=grid, mode="bilinear", align_corners=False)
    return torch.cat([pos[:1], spatial.flatten(2).squeeze(0).T], dim=0)


class CascadeCLIP(nn.Module):
    """A frozen open_clip image encoder composed with a :class:`CascadeHead`.

    Parameters
    ----------
    visual
        ``model.visual`` of the open_clip model named in ``head.cfg.backbone``.
    head
        The trained (or fresh) head.
    freeze_backbone
        Set ``requires_grad=False`` on every backbone parameter (the default and the recipe).
    """

    def __init__(self, visual: nn.Module, head: CascadeHead, *, freeze_backbone: bool = True) -> None:
        super().__init__()
        self.visual = visual
        self.head = head
        if freeze_backbone:
            self.visual.requires_grad_(False)

    def forward(self, images: torch.Tensor, text: torch.Tensor, *, out_size: tuple[int, int] | None = None) -> torch.Tensor:
        """Class mask logits.

        Parameters
        ----------
        images
            (B, 3, H, W) float, normalised; H, W multiples of the patch size.
        text
            (C, dim) text embeddings of the classes, in the order of the output channels.
        out_size
            (height, width) to upsample to (bilinear); default the input size.

        Returns
        -------
        torch.Tensor
            (B, C, H, W) float logits; ``sigmoid`` gives per-class probabilities.
        """
        logits = self.head.decode(self.head.encode(self.visual, images), text)
        size = out_size or (images.shape[-2], images.shape[-1])
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def slide_probabilities(
    model: CascadeCLIP,
    image: torch.Tensor,
    text: torch.Tensor,
    *,
    window: int = 512,
    stride: int = 426,
    batch: int = 4,
) -> torch.Tensor:
    """Per-class probabilities of a whole photo by overlapping windows, as the reference infers.

    mmseg's ``slide_inference`` grid: windows of ``window`` pixels every ``stride``, the last one
    flush with the border; each window's mask logits are upsampled to the window, passed through
    ``sigmoid``, summed into the photo and divided by the number of windows covering each pixel.
    Windows are batched (the reference runs them one by one).

    Parameters
    ----------
    model
        The head on its backbone, in eval mode.
    image
        (3, H, W) float, normalised with the backbone's mean/std, any size (a photo smaller than
        ``window`` is one window).
    text
        (C, dim) class text embeddings.
    window, stride, batch
        Window side and step in pixels (the paper: 512 / 426 at 512-pixel training), windows per
        forward pass.

    Returns
    -------
    torch.Tensor
        (C, H, W) float32 probabilities in [0, 1], classes independent (not summing to 1).
    """
    if image.dim() != 3:
        raise ValueError(f"image must be (3, H, W), not {tuple(image.shape)}")
    from engine.openvocab.pipeline import window_boxes

    _, h, w = image.shape
    boxes = window_boxes(h, w, window, stride)
    probs = image.new_zeros((text.shape[0], h, w), dtype=torch.float32)
    count = image.new_zeros((1, h, w), dtype=torch.float32)
    for start in range(0, len(boxes), batch):
        chunk = boxes[start:start + batch]
        crops = torch.stack([image[:, y1:y2, x1:x2] for y1, y2, x1, x2 in chunk])
        window_probs = torch.sigmoid(model(crops, text).float())
        for (y1, y2, x1, x2), p in zip(chunk, window_probs):
            probs[:, y1:y2, x1:x2] += p
            count[:, y1:y2, x1:x2] += 1
    return probs / count


def combine_probabilities(
    cascade_probs: torch.Tensor, training_free_probs: torch.Tensor, *, weight: float = 0.5
) -> torch.Tensor:
    """Blend a Cascade-CLIP head with training-free dense CLIP, per pixel.

    The head scores every class independently (sigmoid probabilities, e.g. from
    :func:`slide_probabilities`); the training-free scores are a softmax over classes. The head's
    scores are renormalised to sum to 1 over classes, then
    ``weight * head + (1 - weight) * training_free``: a distribution over classes whose argmax is
    the head's at ``weight=1`` and the training-free one's at ``weight=0``.

    Parameters
    ----------
    cascade_probs, training_free_probs
        (..., C, H, W) float tensors of the same shape, classes in the same order.
    weight
        Share of the head, in [0, 1].

    Returns
    -------
    torch.Tensor
        (..., C, H, W) float32 probabilities summing to 1 over C.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must lie in [0, 1], not {weight}")
    if cascade_probs.shape != training_free_probs.shape:
        raise ValueError(f"shapes differ: {tuple(cascade_probs.shape)} vs {tuple(training_free_probs.shape)}")
    p = cascade_probs.float()
    p = p / p.sum(dim=-3, keepdim=True).clamp_min(1e-12)
    return weight * p + (1.0 - weight) * training_free_probs.float()
