"""MSCAN, the multi-scale convolutional attention backbone of SegNeXt (T, S and B variants).

Paper: Guo et al., "SegNeXt: Rethinking Convolutional Attention Design for Semantic
Segmentation", NeurIPS 2022, https://arxiv.org/abs/2209.08575. Used as the encoder of MCANet
(Shao et al., "Multi-scale Cross-axis Attention for medical image segmentation").

Module and parameter names follow mmsegmentation's ``MSCAN`` exactly (``patch_embed{i}``,
``block{i}.{j}.attn.spatial_gating_unit.conv0_1`` ...), so mmseg checkpoints load strictly.
Feature maps stay ``(B, C, H, W)`` throughout (mmseg flattens to tokens between blocks; the
result is the same, without the reshapes).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["MSCAN", "StemConv", "OverlapPatchEmbed", "MSCABlock"]

_logger = logging.getLogger(__name__)

_LAYER_SCALE_INIT = 1e-2


class DropPath(nn.Module):
    """Stochastic depth: drop the residual branch of whole samples during training."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class Mlp(nn.Module):
    """1x1 conv ``C -> rC``, depthwise 3x3, GELU, 1x1 conv ``rC -> C`` on ``(B, C, H, W)``."""

    def __init__(self, channels: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.dwconv(self.fc1(x)))
        return self.drop(self.fc2(self.drop(x)))


class MSCAAttention(nn.Module):
    """The multi-scale gate: ``dw5x5``, three strip-conv pairs (7, 11, 21), 1x1 mix, times input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        c = channels
        self.conv0 = nn.Conv2d(c, c, 5, padding=2, groups=c)
        for i, k in enumerate((7, 11, 21)):
            self.add_module(f"conv{i}_1", nn.Conv2d(c, c, (1, k), padding=(0, k // 2), groups=c))
            self.add_module(f"conv{i}_2", nn.Conv2d(c, c, (k, 1), padding=(k // 2, 0), groups=c))
        self.conv3 = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn = self.conv0(x)
        a0 = self.conv0_2(self.conv0_1(attn))
        a1 = self.conv1_2(self.conv1_1(attn))
        a2 = self.conv2_2(self.conv2_1(attn))
        attn = self.conv3(attn + a0 + a1 + a2)
        return attn * x


class MSCASpatialAttention(nn.Module):
    """``proj_2(gate(GELU(proj_1(x)))) + x``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.proj_1 = nn.Conv2d(channels, channels, 1)
        self.activation = nn.GELU()
        self.spatial_gating_unit = MSCAAttention(channels)
        self.proj_2 = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.spatial_gating_unit(self.activation(self.proj_1(x)))
        return self.proj_2(y) + x


class MSCABlock(nn.Module):
    """``x += ls1 * DropPath(Attn(BN(x))); x += ls2 * DropPath(Mlp(BN(x)))`` on ``(B, C, H, W)``."""

    def __init__(self, channels: int, mlp_ratio: float, drop: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(channels)
        self.attn = MSCASpatialAttention(channels)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.BatchNorm2d(channels)
        self.mlp = Mlp(channels, int(channels * mlp_ratio), drop)
        self.layer_scale_1 = nn.Parameter(_LAYER_SCALE_INIT * torch.ones(channels))
        self.layer_scale_2 = nn.Parameter(_LAYER_SCALE_INIT * torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.layer_scale_1[:, None, None] * self.attn(self.norm1(x)))
        return x + self.drop_path(self.layer_scale_2[:, None, None] * self.mlp(self.norm2(x)))


class StemConv(nn.Module):
    """Stage-1 stem, stride 4: conv3x3 s2 (-> C/2) + BN + GELU + conv3x3 s2 (-> C) + BN."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        half = out_channels // 2
        self.proj = nn.Sequential(
            nn.Conv2d(in_channels, half, 3, 2, 1),
            nn.BatchNorm2d(half),
            nn.GELU(),
            nn.Conv2d(half, out_channels, 3, 2, 1),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class OverlapPatchEmbed(nn.Module):
    """Stages 2-4 downsampling: conv3x3 stride 2 pad 1 + BN."""

    def __init__(self, in_channels: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, 3, 2, 1)
        self.norm = nn.BatchNorm2d(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x))


class _ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of ``(B, C, H, W)`` (mmseg applies it to ``(B, HW, C)`` tokens;
    the parameters and the result are the same)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class MSCAN(nn.Module):
    """The MSCAN encoder: four stages at strides 4, 8, 16, 32.

    Parameters
    ----------
    embed_dims
        Channels of the four stages, e.g. ``(32, 64, 160, 256)`` for T.
    depths
        Blocks per stage, e.g. ``(3, 3, 5, 2)`` for T.
    mlp_ratios
        Hidden-size ratio of each stage's MLP, ``(8, 8, 4, 4)`` for every variant.
    in_channels
        Input channels of the stem. mmseg's MSCAN always builds a 3-channel stem (it ignores its
        ``in_channels`` argument); 3 is the default here for checkpoint parity.
    drop_rate, drop_path_rate
        Dropout in the MLPs and the stochastic-depth rate, rising linearly over all blocks.

    Forward: ``(B, in_channels, H, W)`` float -> list of four ``(B, C_i, ceil(H/2^(i+2)), ...)``.
    """

    def __init__(
        self,
        embed_dims: Sequence[int],
        depths: Sequence[int],
        mlp_ratios: Sequence[float] = (8, 8, 4, 4),
        *,
        in_channels: int = 3,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
    ) -> None:
        super().__init__()
        self.embed_dims = tuple(int(d) for d in embed_dims)
        self.depths = tuple(int(d) for d in depths)
        self.num_stages = len(self.embed_dims)
        self.in_channels = int(in_channels)
        dpr = torch.linspace(0, drop_path_rate, sum(self.depths)).tolist()
        cur = 0
        for i, (dim, depth) in enumerate(zip(self.embed_dims, self.depths)):
            if i == 0:
                patch_embed: nn.Module = StemConv(self.in_channels, dim)
            else:
                patch_embed = OverlapPatchEmbed(self.embed_dims[i - 1], dim)
            blocks = nn.ModuleList(
                MSCABlock(dim, mlp_ratios[i], drop_rate, dpr[cur + j]) for j in range(depth)
            )
            cur += depth
            setattr(self, f"patch_embed{i + 1}", patch_embed)
            setattr(self, f"block{i + 1}", blocks)
            setattr(self, f"norm{i + 1}", _ChannelLayerNorm(dim))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f"patch_embed{i}")(x)
            for blk in getattr(self, f"block{i}"):
                x = blk(x)
            x = getattr(self, f"norm{i}")(x)
            outs.append(x)
        return outs
