"""Training-free dense CLIP: what the last visual block does, per published method.

All four methods run the first ``L-1`` blocks of the CLIP ViT unchanged and replace only the
last block, then compare every patch token (after ``ln_post`` and the visual projection,
L2-normalised) with the class text embeddings.

* MaskCLIP (Zhou et al., ECCV 2022; chongzhou96/MaskCLIP): value path only (identity
  attention); residual and FFN kept.
* SCLIP (Wang et al., 2023; wangf3014/SCLIP): ``softmax(q qᵀ) + softmax(k kᵀ)``; residual and
  FFN kept.
* ClearCLIP (Lan et al., ECCV 2024; mc-lan/ClearCLIP): ``softmax(q qᵀ)``; residual and FFN
  removed.
* NACLIP (Hajimiri et al., WACV 2025; sinahmr/NACLIP): ``softmax(k kᵀ + G)`` with ``G`` a
  Gaussian of the patch-grid distance (sigma 5 patches, zero on the CLS row and column);
  residual and FFN removed.

The references are sequence-first (OpenAI CLIP layout); open_clip is batch-first. The maths
is ported, not the layout. ``tests/engine/openvocab/test_strategies_fidelity.py`` checks the
patch-text logits against each reference's own code (fp32, relative error <= 1e-4).

Public entry point for other heads (e.g. Cascade-CLIP taps): :func:`encode_dense`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from engine.openvocab.clip_model import ClipModel, PosInterp

__all__ = [
    "Strategy",
    "STRATEGIES",
    "STUFF_NAMES",
    "get_strategy",
    "DenseFeatures",
    "encode_dense",
    "gaussian_addition",
]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Strategy:
    """One training-free method: its last-block rule and the settings its reference runs with.

    Attributes
    ----------
    name
        ``naclip``, ``sclip``, ``clearclip`` or ``maskclip``.
    attention
        ``"kk_gauss"`` (NACLIP), ``"qq_kk"`` (SCLIP), ``"qq"`` (ClearCLIP), ``"identity"``
        (MaskCLIP), or ``"vanilla"`` (plain CLIP, for comparison).
    keep_residual
        Whether the last block keeps its residual connection and FFN.
    gaussian_std
        NACLIP's neighbourhood sigma, in patches.
    logit_scale
        Multiplier of the cosine similarities before the softmax over names.
    short_side
        The photo's short side is resized to this many pixels before inference.
    window, stride
        Sliding-window size and stride in pixels; ``window=0`` runs the whole image at once.
    prob_threshold
        Pixels whose best class probability is below this become background (when a
        background is wanted).
    pos_interp
        How the position embedding is resized for non-native windows.
    background_names
        Names scored as background when a background is wanted (their reference name lists).
    """

    name: str
    attention: str
    keep_residual: bool
    gaussian_std: float = 5.0
    logit_scale: float = 40.0
    short_side: int = 336
    window: int = 224
    stride: int = 112
    prob_threshold: float = 0.1
    pos_interp: PosInterp = "offset"
    background_names: tuple[str, ...] = field(default=())


STUFF_NAMES: tuple[str, ...] = (
    "sky", "wall", "tree", "wood", "grass", "road", "sea", "river", "mountain", "sands", "desk", "bed", "building",
    "cloud", "lamp", "door", "window", "wardrobe", "ceiling", "shelf", "curtain", "stair", "floor", "hill", "rail",
    "fence",
)
"""The background names NACLIP and SCLIP score as background (their ``cls_voc21.txt``, line 0)."""

STRATEGIES: dict[str, Strategy] = {
    "naclip": Strategy("naclip", "kk_gauss", keep_residual=False, short_side=336, window=224, stride=112,
                       background_names=STUFF_NAMES),
    # SCLIP's configs that score a background use logit scale 50 (COCO-Object, Context-60)
    "sclip": Strategy("sclip", "qq_kk", keep_residual=True, logit_scale=50.0, short_side=336, window=224, stride=112,
                      background_names=STUFF_NAMES),
    "clearclip": Strategy("clearclip", "qq", keep_residual=False, logit_scale=50.0, short_side=448, window=448,
                          stride=224, prob_threshold=0.5, background_names=("background",)),
    "maskclip": Strategy("maskclip", "identity", keep_residual=True, short_side=512, window=0, stride=0,
                         prob_threshold=0.0, pos_interp="size"),
}
"""The four methods at their reference settings (ViT-B/16): NACLIP and SCLIP as their
COCO-Object/Context-60 configs (336 short side, 224/112 windows, stuff names as background,
threshold 0.1), ClearCLIP as its VOC-21 config, MaskCLIP as its 512x512 VOC config (whole image,
no threshold)."""


def get_strategy(name: str | Strategy) -> Strategy:
    """The :class:`Strategy` called ``name`` (case-insensitive); a Strategy passes through."""
    if isinstance(name, Strategy):
        return name
    try:
        return STRATEGIES[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}: use {', '.join(STRATEGIES)}") from None


@dataclass(frozen=True, eq=False)
class DenseFeatures:
    """What :func:`encode_dense` returns.

    Attributes
    ----------
    patches
        ``(B, rows, cols, E)`` float: L2-normalised patch embeddings in the joint image-text
        space (after the strategy's last block, ``ln_post`` and ``proj``).
    grid
        ``(rows, cols)`` of the patch grid.
    taps
        Raw token outputs of the requested blocks, ``{block_index: (B, 1 + rows*cols, width)}``
        (CLS first, then patches row-major; before any norm; blocks run unchanged).
    """

    patches: torch.Tensor
    grid: tuple[int, int]
    taps: dict[int, torch.Tensor]


_GAUSS_CACHE: dict[tuple[int, int, float, torch.device, torch.dtype], torch.Tensor] = {}


def gaussian_addition(grid: tuple[int, int], std: float, *, device: torch.device | None = None,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """NACLIP's attention addition ``G``, ``(1 + n, 1 + n)`` with ``n = rows*cols``.

    ``G[p, p'] = exp(-|p - p'|² / (2 std²))`` for patches ``p, p'`` (grid distance in patches),
    and 0 on the CLS row and column.
    """
    key = (grid[0], grid[1], float(std), device or torch.device("cpu"), dtype)
    cached = _GAUSS_CACHE.get(key)
    if cached is not None:
        return cached
    rows, cols = grid
    r = torch.arange(rows, dtype=torch.float64).repeat_interleave(cols)
    c = torch.arange(cols, dtype=torch.float64).repeat(rows)
    d2 = (r[:, None] - r[None, :]) ** 2 + (c[:, None] - c[None, :]) ** 2
    g = torch.exp(-d2 / (2.0 * std * std))
    out = torch.zeros(rows * cols + 1, rows * cols + 1, dtype=torch.float64)
    out[1:, 1:] = g
    out = out.to(device=device, dtype=dtype)
    if len(_GAUSS_CACHE) > 64:
        _GAUSS_CACHE.clear()
    _GAUSS_CACHE[key] = out
    return out


def _last_block(block: nn.Module, x: torch.Tensor, strategy: Strategy, grid: tuple[int, int]) -> torch.Tensor:
    """The strategy's replacement of the last residual block. ``x``: ``(B, L, D)`` batch-first."""
    attn: nn.MultiheadAttention = block.attn
    y = block.ln_1(x)
    b, n, d = y.shape
    heads = attn.num_heads
    hd = d // heads
    scale = hd ** -0.5
    qkv = F.linear(y, attn.in_proj_weight, attn.in_proj_bias).view(b, n, 3, heads, hd).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]  # (B, H, L, hd)
    kind = strategy.attention
    if kind == "identity":
        out = v
    elif kind == "qq":
        out = F.scaled_dot_product_attention(q, q, v, scale=scale)
    elif kind == "qq_kk":
        out = F.scaled_dot_product_attention(q, q, v, scale=scale) + F.scaled_dot_product_attention(k, k, v, scale=scale)
    elif kind == "kk_gauss":
        g = gaussian_addition(grid, strategy.gaussian_std, device=k.device, dtype=k.dtype)
        out = F.scaled_dot_product_attention(k, k, v, attn_mask=g, scale=scale)
    elif kind == "vanilla":
        out = F.scaled_dot_product_attention(q, k, v, scale=scale)
    else:
        raise ValueError(f"unknown last-block attention {kind!r}")
    out = out.transpose(1, 2).reshape(b, n, d)
    out = attn.out_proj(out)
    if not strategy.keep_residual:
        return out
    ls_1 = getattr(block, "ls_1", None)
    ls_2 = getattr(block, "ls_2", None)
    x = x + (ls_1(out) if ls_1 is not None else out)
    m = block.mlp(block.ln_2(x))
    return x + (ls_2(m) if ls_2 is not None else m)


def encode_dense(clip: ClipModel, images: torch.Tensor, strategy: str | Strategy = "naclip", *,
                 taps: Sequence[int] = ()) -> DenseFeatures:
    """Dense CLIP patch embeddings of a batch of windows.

    Parameters
    ----------
    clip
        The loaded model.
    images
        ``(B, 3, H, W)`` float, already normalised with ``clip.mean``/``clip.std`` (fp32; bf16
        or fp16 input runs a cached copy of the image tower in that dtype); ``H`` and
        ``W`` should be multiples of ``clip.patch_size`` (extra pixels are ignored, as in the
        references). Any size works: the position embedding is resized at run time.
    strategy
        A :class:`Strategy` or its name.
    taps
        Block indices (0-based) whose raw outputs are also returned (for trained heads such as
        Cascade-CLIP, which taps blocks 5-10). Blocks before the last run unchanged; tapping the
        last block returns its *unchanged* output too (it is computed only when asked).

    Returns
    -------
    DenseFeatures
        ``patches`` ``(B, H // p, W // p, E)``, L2-normalised; ``grid``; ``taps``.

    Notes
    -----
    Run it under ``torch.inference_mode()`` (or ``no_grad``) unless you train through it.
    Cosine logits against text embeddings ``T`` (``(C, E)``, normalised) are
    ``patches @ T.T``.
    """
    strategy = get_strategy(strategy)
    visual = clip.visual_in(images.dtype) if images.dtype in (torch.bfloat16, torch.float16) else clip.model.visual
    p = clip.patch_size
    rows, cols = images.shape[-2] // p, images.shape[-1] // p
    if rows < 1 or cols < 1:
        raise ValueError(f"a window of {tuple(images.shape[-2:])} pixels is smaller than one {p}-pixel patch")
    images = images[..., : rows * p, : cols * p]
    x = visual.conv1(images.to(visual.conv1.weight.dtype))
    b = x.shape[0]
    x = x.reshape(b, x.shape[1], -1).permute(0, 2, 1)
    cls = visual.class_embedding.to(x.dtype).view(1, 1, -1).expand(b, -1, -1)
    x = torch.cat([cls, x], dim=1)
    x = x + clip.position_embedding((rows, cols), strategy.pos_interp).to(x.dtype)
    x = visual.ln_pre(x)
    blocks = visual.transformer.resblocks
    last = len(blocks) - 1
    tapped: dict[int, torch.Tensor] = {}
    wanted = set(int(t) for t in taps)
    for i, block in enumerate(blocks):
        if i == last:
            if i in wanted:
                tapped[i] = block(x)
            x = _last_block(block, x, strategy, (rows, cols))
        else:
            x = block(x)
            if i in wanted:
                tapped[i] = x
    x = visual.ln_post(x[:, 1:])
    x = x @ visual.proj
    x = F.normalize(x.float(), dim=-1)
    return DenseFeatures(x.reshape(b, rows, cols, -1), (rows, cols), tapped)
