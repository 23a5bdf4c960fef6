"""Deterministic weights from parameter names, shared by the parity test and the fixture maker.

Every tensor of a state dict is drawn from a ``torch.Generator`` seeded with the CRC32 of its
key, so two implementations with the same key names and shapes get identical weights without
exchanging any files. Scales keep activations O(1) through a random network.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping

import torch


def seeded_tensor(name: str, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The tensor for key ``name`` of ``shape`` (same name and shape -> same values, everywhere)."""
    g = torch.Generator().manual_seed(zlib.crc32(name.encode("utf-8")))
    if name.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=dtype)
    if name.endswith("running_var"):
        return 0.5 + torch.rand(shape, generator=g)
    if name.endswith("running_mean"):
        return 0.1 * torch.randn(shape, generator=g)
    if "layer_scale" in name:
        return 0.1 + 0.02 * torch.randn(shape, generator=g)
    if name.endswith("temperature"):
        return 1.0 + torch.rand(shape, generator=g)
    if name.endswith("bias"):
        return 0.1 * torch.randn(shape, generator=g)
    if len(shape) == 1:  # norm weights
        return 1.0 + 0.1 * torch.randn(shape, generator=g)
    fan_in = int(math.prod(shape[1:]))
    return torch.randn(shape, generator=g) / math.sqrt(fan_in)


def seeded_state_dict(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """A state dict with :func:`seeded_tensor` for each ``key -> shape``."""
    return {k: seeded_tensor(k, tuple(s), torch.int64 if k.endswith("num_batches_tracked") else torch.float32)
            for k, s in shapes.items()}


def seeded_input(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """The deterministic fp32 input ``randn(shape)`` from ``torch.Generator().manual_seed(seed)``."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))
