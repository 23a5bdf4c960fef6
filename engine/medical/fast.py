"""An inference-only MCANet with the same function and less work (eval mode, exact algebra).

:func:`fuse_for_inference` turns a trained :class:`~engine.medical.mcanet.MCANet` into a
:class:`FusedMCANet` whose logits equal the original's up to fp32 rounding. Each rewrite is an
identity of linear algebra, not an approximation:

* BatchNorm folded into the convolution next to it (stem, patch embeddings, ``norm1`` into
  ``proj_1``, ``norm2`` into ``mlp.fc1``); the layer scales folded into ``proj_2``/``mlp.fc2``
  (the attention shortcut becomes a per-channel ``x * (1 + ls1 * s1)``).
* Head ``squeeze``: a 1x1 conv commutes with bilinear resizing, so the 480-channel concat at
  128x128 becomes three 1x1 convs on the small maps, resized and summed.
* The three horizontal (and three vertical) strip convs of the MCA block read the same input:
  their kernels are zero-padded to 21 taps and summed into one conv per axis.
* ``P(o1) + P(o2) = P(o1 + o2) + b`` for the shared 1x1 conv ``P``.
* Row/column attention without layout copies: the token features ``(W c)`` are contracted as
  a batched matmul over the channel axis, then summed.
* Channels-last (NHWC) memory everywhere except the attention: oneDNN's depthwise convolutions
  run about 2.5x faster on it.

On glibc, :func:`tune_cpu_allocator` keeps large freed blocks in the heap instead of returning
them to the OS, which removes the page faults that dominate element-wise ops on big maps.
"""

from __future__ import annotations

import copy
import ctypes
import logging
import sys

import torch
import torch.nn.functional as F
from torch import nn

from engine.medical.mca_head import MCAHead
from engine.medical.mcanet import MCANet
from engine.medical.mscan import MSCABlock, MSCAN

__all__ = ["FusedMCANet", "fuse_for_inference", "tune_cpu_allocator"]

_logger = logging.getLogger(__name__)


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """``bn(x) == x * s + b`` per channel (eval)."""
    s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return s, bn.bias - bn.running_mean * s


def _fold_bn_after(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A conv equal to ``bn(conv(x))``."""
    s, b = _bn_affine(bn)
    out = copy.deepcopy(conv)
    out.weight = nn.Parameter(conv.weight * s.view(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(s)
    out.bias = nn.Parameter(bias * s + b)
    return out


def _fold_bn_before(bn: nn.BatchNorm2d, conv: nn.Conv2d) -> nn.Conv2d:
    """A 1x1 conv equal to ``conv(bn(x))``."""
    s, b = _bn_affine(bn)
    out = copy.deepcopy(conv)
    w = conv.weight
    out.weight = nn.Parameter(w * s.view(1, -1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros(w.shape[0], dtype=w.dtype)
    out.bias = nn.Parameter(bias + w[:, :, 0, 0] @ b)
    return out


def _scale_out(conv: nn.Conv2d, scale: torch.Tensor, extra_bias: torch.Tensor | None = None) -> nn.Conv2d:
    """A conv equal to ``scale * conv(x) + extra_bias`` (per output channel)."""
    out = copy.deepcopy(conv)
    out.weight = nn.Parameter(conv.weight * scale.view(-1, 1, 1, 1))
    bias = conv.bias * scale if conv.bias is not None else torch.zeros_like(scale)
    out.bias = nn.Parameter(bias + (extra_bias if extra_bias is not None else 0.0))
    return out


class _FusedBlock(nn.Module):
    """An :class:`MSCABlock` with norms and layer scales folded (eval only)."""

    def __init__(self, blk: MSCABlock) -> None:
        super().__init__()
        s1, b1 = _bn_affine(blk.norm1)
        ls1, ls2 = blk.layer_scale_1, blk.layer_scale_2
        self.proj_1 = _fold_bn_before(blk.norm1, blk.attn.proj_1)
        self.gate = copy.deepcopy(blk.attn.spatial_gating_unit)
        self.proj_2 = _scale_out(blk.attn.proj_2, ls1, ls1 * b1)
        self.register_buffer("shortcut_scale", (1.0 + ls1 * s1).view(1, -1, 1, 1).detach().clone())
        self.fc1 = _fold_bn_before(blk.norm2, blk.mlp.fc1)
        self.dwconv = copy.deepcopy(blk.mlp.dwconv)
        self.fc2 = _scale_out(blk.mlp.fc2, ls2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gate(F.gelu(self.proj_1(x)))
        x = torch.addcmul(self.proj_2(y), x, self.shortcut_scale)
        return x + self.fc2(F.gelu(self.dwconv(self.fc1(x))))


class _FusedBackbone(nn.Module):
    def __init__(self, bb: MSCAN) -> None:
        super().__init__()
        self.num_stages = bb.num_stages
        stem = bb.patch_embed1.proj
        self.embeds = nn.ModuleList()
        self.embeds.append(nn.Sequential(_fold_bn_after(stem[0], stem[1]), nn.GELU(), _fold_bn_after(stem[3], stem[4])))
        for i in range(2, bb.num_stages + 1):
            pe = getattr(bb, f"patch_embed{i}")
            self.embeds.append(_fold_bn_after(pe.proj, pe.norm))
        self.blocks = nn.ModuleList(nn.Sequential(*(_FusedBlock(b) for b in getattr(bb, f"block{i}")))
                                    for i in range(1, bb.num_stages + 1))
        self.norms = nn.ModuleList(copy.deepcopy(getattr(bb, f"norm{i}")) for i in range(1, bb.num_stages + 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for embed, blocks, norm in zip(self.embeds, self.blocks, self.norms):
            x = norm(blocks(embed(x)))
            outs.append(x)
        return outs


def _merge_strips(convs: list[nn.Conv2d], horizontal: bool) -> nn.Conv2d:
    """One depthwise strip conv equal to the sum of ``convs`` (kernels centred, zero-padded)."""
    k = max(max(c.kernel_size) for c in convs)
    dim = convs[0].out_channels
    shape = (1, k) if horizontal else (k, 1)
    merged = nn.Conv2d(dim, dim, shape, padding=(0, k // 2) if horizontal else (k // 2, 0), groups=dim)
    w = torch.zeros_like(merged.weight)
    b = torch.zeros_like(merged.bias)
    for c in convs:
        n = max(c.kernel_size)
        off = (k - n) // 2
        if horizontal:
            w[:, :, :, off:off + n] += c.weight
        else:
            w[:, :, off:off + n, :] += c.weight
        b += c.bias
    merged.weight = nn.Parameter(w)
    merged.bias = nn.Parameter(b)
    return merged


def _rows_attention(q: torch.Tensor, kv: torch.Tensor, heads: int) -> torch.Tensor:
    """Branch 1 (tokens = rows) on ``(B, C, H, W)``; equals ``_axis_attention(rows=True)``."""
    b, c, h, w = q.shape
    q5 = q.reshape(b, heads, c // heads, h, w)
    v5 = kv.reshape(b, heads, c // heads, h, w)
    qn = q5 / torch.linalg.vector_norm(q5, dim=(2, 4), keepdim=True).clamp_min(1e-12)
    kn = v5 / torch.linalg.vector_norm(v5, dim=(2, 4), keepdim=True).clamp_min(1e-12)
    attn = torch.matmul(qn, kn.transpose(-1, -2)).sum(2, keepdim=True).softmax(dim=-1)  # (B, h, 1, H, H)
    return torch.matmul(attn, v5).add_(qn).reshape(b, c, h, w)


def _columns_attention(q: torch.Tensor, kv: torch.Tensor, heads: int) -> torch.Tensor:
    """Branch 2 (tokens = columns); equals ``_axis_attention(rows=False)``."""
    b, c, h, w = q.shape
    q5 = q.reshape(b, heads, c // heads, h, w)
    v5 = kv.reshape(b, heads, c // heads, h, w)
    qn = q5 / torch.linalg.vector_norm(q5, dim=(2, 3), keepdim=True).clamp_min(1e-12)
    kn = v5 / torch.linalg.vector_norm(v5, dim=(2, 3), keepdim=True).clamp_min(1e-12)
    attn = torch.matmul(qn.transpose(-1, -2), kn).sum(2, keepdim=True).softmax(dim=-1)  # (B, h, 1, W, W)
    return torch.matmul(v5, attn.transpose(-1, -2)).add_(qn).reshape(b, c, h, w)


class _FusedHead(nn.Module):
    def __init__(self, head: MCAHead) -> None:
        super().__init__()
        c = head.in_channels
        self.size_mode = head.feature_size
        self.image_size = head.image_size
        w = head.squeeze.conv.weight
        self.sq = nn.ParameterList(nn.Parameter(p.clone()) for p in torch.split(w, [c[1], c[2], c[3]], dim=1))
        self.sq_gn = copy.deepcopy(head.squeeze.gn)
        mca = head.decoder_level
        self.heads = mca.num_heads
        self.ln = copy.deepcopy(mca.norm1.body)
        self.strip_h = _merge_strips([mca.conv0_1, mca.conv1_1, mca.conv2_1], horizontal=True)
        self.strip_v = _merge_strips([mca.conv0_2, mca.conv1_2, mca.conv2_2], horizontal=False)
        self.project_out = copy.deepcopy(mca.project_out)
        self.register_buffer("project_bias2", (2.0 * mca.project_out.bias).detach().clone())
        self.sep = copy.deepcopy(head.sep_bottleneck)
        self.align = copy.deepcopy(head.align)
        self.conv_seg = copy.deepcopy(head.conv_seg)
        self.channels_last = True

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        cl = torch.channels_last if self.channels_last else torch.contiguous_format
        e1 = feats[0]
        size = tuple(e1.shape[-2:]) if self.size_mode == "stride4" else (self.image_size, self.image_size)
        y = None
        for f, wt in zip(feats[1:], self.sq):
            z = F.interpolate(F.conv2d(f, wt), size=size, mode="bilinear", align_corners=False)
            y = z.contiguous(memory_format=cl) if y is None else y.add_(z)
        x = F.relu_(self.sq_gn(y))
        n = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.ln.weight, self.ln.bias, 1e-5)
        n = n.permute(0, 3, 1, 2).contiguous(memory_format=cl)
        fx = self.project_out(self.strip_h(n)).contiguous()  # the attention wants (B, C, H, W) rows
        fy = self.project_out(self.strip_v(n)).contiguous()
        o = _rows_attention(fy, fx, self.heads).add_(_columns_attention(fx, fy, self.heads))
        x = F.conv2d(o.contiguous(memory_format=cl), self.project_out.weight, self.project_bias2).add_(x)
        if tuple(e1.shape[-2:]) != size:
            e1 = F.interpolate(e1, size=size, mode="bilinear", align_corners=False)
        x = self.align(self.sep(torch.cat([x, e1.contiguous(memory_format=cl)], dim=1)))
        return self.conv_seg(x)


class FusedMCANet(nn.Module):
    """Eval-only MCANet with folded norms and merged convs; same input/output as
    :class:`~engine.medical.mcanet.MCANet` (``(B, C, H, W)`` -> logits at the input size)."""

    def __init__(self, model: MCANet) -> None:
        super().__init__()
        with torch.no_grad():
            self.backbone = _FusedBackbone(model.backbone)
            self.decode_head = _FusedHead(model.decode_head)
        self.out_channels = model.decode_head.out_channels
        self.in_channels = model.backbone.in_channels
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.decode_head.channels_last:  # oneDNN's depthwise convs are much faster on NHWC
            x = x.contiguous(memory_format=torch.channels_last)
        out = self.decode_head(self.backbone(x))
        if tuple(out.shape[-2:]) != tuple(x.shape[-2:]):
            out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return out


def fuse_for_inference(model: MCANet) -> FusedMCANet:
    """A :class:`FusedMCANet` built from ``model``'s current weights (``model`` is not changed)."""
    was_training = model.training
    try:
        return FusedMCANet(model.eval())
    finally:
        model.train(was_training)


_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_cpu_allocator(mmap_threshold: int = 256 << 20, trim_threshold: int = 1 << 30) -> bool:
    """Ask glibc's malloc to serve blocks below ``mmap_threshold`` bytes from the heap and to keep
    up to ``trim_threshold`` bytes of freed memory, so the feature maps of every forward pass
    reuse already-mapped pages (a process-wide setting; the resident size stays near the peak).

    Returns whether the setting was applied (only on Linux with glibc; elsewhere a no-op).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)))
    except (OSError, AttributeError):
        return False
    _logger.debug("glibc malloc tuned for large tensors: %s", ok)
    return ok
