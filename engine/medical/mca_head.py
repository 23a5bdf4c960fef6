"""The MCA decode head of MCANet (multi-scale cross-axis attention).

Paper: Shao et al., "Multi-scale Cross-axis Attention for medical image segmentation" (MCANet).
This is our own implementation of what the official code (an mmsegmentation fork) computes,
with its module and parameter names (``squeeze.conv``, ``squeeze.gn``, ``decoder_level.*``,
``sep_bottleneck.{0,1}.{depthwise,pointwise}_conv.*``, ``align.*``, ``conv_seg``), so official
checkpoints load strictly. Where the paper's figure and the code differ, this follows the code:

* all four feature maps are bilinearly resized to one fixed size (``image_size=128``) — the
  stride-4 map only at 512x512 inputs; ``feature_size="stride4"`` instead resizes to the stride-4
  map of the actual input (keeps the aspect ratio of non-square slices; not checkpoint-parity);
* one LayerNorm and one 1x1 conv (``project_out``) are shared by both axes and used four times;
* queries and keys are L2-normalised, ``softmax(q k^T)`` has no temperature (the ``temperature``
  parameter exists and is loaded, but the official forward never reads it), and each branch adds
  its query back: ``o = softmax(q k^T) v + q``;
* branch 1 attends over rows (q from the vertical strips, k = v from the horizontal ones),
  branch 2 over columns (q horizontal, k = v vertical); the channels are split into heads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MCAHead", "CrossAxisAttention", "FeatureSize"]

_logger = logging.getLogger(__name__)

FeatureSize = Literal["fixed", "stride4"]


class _ConvModule(nn.Module):
    """mmcv's ``ConvModule`` with GroupNorm: conv (no bias) -> GN -> ReLU, keys ``conv``/``gn``."""

    def __init__(self, cin: int, cout: int, kernel: int, *, padding: int = 0, groups: int = 1,
                 num_groups: int = 32) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=padding, groups=groups, bias=False)
        self.gn = nn.GroupNorm(num_groups, cout)
        self.activate = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.gn(self.conv(x)))


class _DepthwiseSeparable(nn.Module):
    """mmcv's ``DepthwiseSeparableConvModule``: dw kxk ConvModule then pw 1x1 ConvModule."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, *, num_groups: int = 32) -> None:
        super().__init__()
        self.depthwise_conv = _ConvModule(cin, cin, kernel, padding=kernel // 2, groups=cin, num_groups=num_groups)
        self.pointwise_conv = _ConvModule(cin, cout, 1, num_groups=num_groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class _WithBiasLayerNorm(nn.Module):
    """LayerNorm over the last axis, eps 1e-5, biased variance (official ``WithBias_LayerNorm``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.weight, self.bias, 1e-5)


class _ChannelNorm(nn.Module):
    """Holds the LayerNorm as ``body`` (official key ``norm1.body.*``); normalises ``(B, C, H, W)``
    over C."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = _WithBiasLayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _axis_attention(q: torch.Tensor, kv: torch.Tensor, heads: int, *, rows: bool) -> torch.Tensor:
    """One cross-axis branch on ``(B, C, H, W)`` maps; returns ``(B, C, H, W)``.

    Tokens are rows (``rows=True``: ``b (h c) H W -> b h H (W c)``) or columns
    (``b (h c) H W -> b h W (H c)``); q and k are L2-normalised over the token features,
    ``out = softmax(q k^T) v + q``.
    """
    b, c, h, w = q.shape
    ch = c // heads
    # (B, heads, ch, H, W) -> tokens: rows (B, heads, H, W, ch) or columns (B, heads, W, H, ch)
    perm = (0, 1, 3, 4, 2) if rows else (0, 1, 4, 3, 2)
    n_tok, n_feat = (h, w * ch) if rows else (w, h * ch)
    qt = q.reshape(b, heads, ch, h, w).permute(perm).reshape(b, heads, n_tok, n_feat)
    vt = kv.reshape(b, heads, ch, h, w).permute(perm).reshape(b, heads, n_tok, n_feat)
    qn = F.normalize(qt, dim=-1)
    kn = F.normalize(vt, dim=-1)
    attn = torch.softmax(qn @ kn.transpose(-2, -1), dim=-1)
    out = attn @ vt + qn
    out = out.reshape((b, heads, h, w, ch) if rows else (b, heads, w, h, ch))
    inv = (0, 1, 4, 2, 3) if rows else (0, 1, 4, 3, 2)
    return out.permute(inv).reshape(b, c, h, w)


class CrossAxisAttention(nn.Module):
    """The MCA block (official class ``Attention``, key prefix ``decoder_level``).

    Forward: ``(B, dim, H, W)`` -> ``(B, dim, H, W)``.
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))  # unused, as in the official code
        self.norm1 = _ChannelNorm(dim)
        self.project_out = nn.Conv2d(dim, dim, 1)
        for i, k in enumerate((7, 11, 21)):
            self.add_module(f"conv{i}_1", nn.Conv2d(dim, dim, (1, k), padding=(0, k // 2), groups=dim))
            self.add_module(f"conv{i}_2", nn.Conv2d(dim, dim, (k, 1), padding=(k // 2, 0), groups=dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.norm1(x)
        fx = self.project_out(self.conv0_1(n) + self.conv1_1(n) + self.conv2_1(n))  # horizontal strips
        fy = self.project_out(self.conv0_2(n) + self.conv1_2(n) + self.conv2_2(n))  # vertical strips
        o1 = _axis_attention(fy, fx, self.num_heads, rows=True)
        o2 = _axis_attention(fx, fy, self.num_heads, rows=False)
        return self.project_out(o1) + self.project_out(o2) + x


class MCAHead(nn.Module):
    """The MCA decode head.

    Parameters
    ----------
    in_channels
        Channels of the four encoder maps (E1..E4), e.g. ``(32, 64, 160, 256)`` for T.
    channels
        Channels before ``conv_seg`` (official config: 32 for T, 64 for S/B = ``in_channels[0]``).
    out_channels
        Logit channels: 1 for a sigmoid (binary) head, the number of classes for softmax.
    heads
        Attention heads of the MCA block (8 in every official config).
    image_size
        The fixed size every feature map is resized to (official: 128).
    feature_size
        ``"fixed"`` (official) or ``"stride4"`` (resize to E1's size; aspect-preserving).
    dropout_ratio
        ``Dropout2d`` before ``conv_seg`` (training only).

    Forward: four maps ``(B, C_i, H_i, W_i)`` -> logits ``(B, out_channels, S, S)`` with ``S`` the
    feature size (128x128 in the official setting).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        channels: int,
        out_channels: int,
        *,
        heads: int = 8,
        image_size: int = 128,
        feature_size: FeatureSize = "fixed",
        dropout_ratio: float = 0.1,
        num_groups: int = 32,
    ) -> None:
        super().__init__()
        c = tuple(int(v) for v in in_channels)
        if feature_size not in ("fixed", "stride4"):
            raise ValueError(f"feature_size must be 'fixed' or 'stride4', got {feature_size!r}")
        self.in_channels = c
        self.channels = int(channels)
        self.out_channels = int(out_channels)
        self.image_size = int(image_size)
        self.feature_size: FeatureSize = feature_size
        self.decoder_level = CrossAxisAttention(c[1], heads)
        self.align = _ConvModule(c[3], c[0], 1, num_groups=num_groups)
        self.squeeze = _ConvModule(c[1] + c[2] + c[3], c[1], 1, num_groups=num_groups)
        self.sep_bottleneck = nn.Sequential(
            _DepthwiseSeparable(c[1] + c[0], c[3], 3, num_groups=num_groups),
            _DepthwiseSeparable(c[3], c[3], 3, num_groups=num_groups),
        )
        self.conv_seg = nn.Conv2d(self.channels, self.out_channels, 1)
        self.dropout = nn.Dropout2d(dropout_ratio) if dropout_ratio > 0 else None

    def _size(self, e1: torch.Tensor) -> tuple[int, int]:
        if self.feature_size == "stride4":
            return (int(e1.shape[-2]), int(e1.shape[-1]))
        return (self.image_size, self.image_size)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        size = self._size(feats[0])
        e = [f if tuple(f.shape[-2:]) == size else
             F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in feats]
        x = self.squeeze(torch.cat([e[1], e[2], e[3]], dim=1))
        x = self.decoder_level(x)
        x = self.sep_bottleneck(torch.cat([x, e[0]], dim=1))
        x = self.align(x)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.conv_seg(x)
