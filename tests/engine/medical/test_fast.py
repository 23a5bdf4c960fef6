"""The fused inference network computes the official logits (fp32 rounding only)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.medical.fast import fuse_for_inference, tune_cpu_allocator
from engine.medical.mcanet import create_mcanet
from tests.engine.medical._seeded import seeded_input, seeded_state_dict

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("variant", ["t", "s", "b"])
@pytest.mark.parametrize("case", ["sigmoid", "softmax"])
def test_fused_equals_official(variant: str, case: str) -> None:
    ref = np.load(FIXTURES / f"official_mcanet_{variant}_{case}.npz")
    shapes = {k: tuple(v) for k, v in json.loads((FIXTURES / f"official_keys_{variant}.json").read_text()).items()}
    n = int(ref["num_classes"])
    shapes["decode_head.conv_seg.weight"] = (n,) + shapes["decode_head.conv_seg.weight"][1:]
    shapes["decode_head.conv_seg.bias"] = (n,)
    model = create_mcanet(variant, out_channels=n).eval()
    model.load_state_dict(seeded_state_dict(shapes))
    net = fuse_for_inference(model)
    with torch.inference_mode():
        out = net(seeded_input(int(ref["input_seed"]), tuple(ref["input_shape"]))).numpy()
    assert np.abs(out - ref["logits"]).max() <= 1e-4


@pytest.mark.parametrize("channels_last", [True, False])
def test_fused_equals_plain_for_other_shapes(channels_last: bool) -> None:
    """stride-4 feature size, one input channel, odd slice size, trained BN statistics."""
    torch.manual_seed(0)
    model = create_mcanet("t", feature_size="stride4", in_channels=1, out_channels=3)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(2, 1, 64, 96))  # move the BN running statistics off their defaults
    model.eval()
    net = fuse_for_inference(model)
    net.decode_head.channels_last = channels_last
    assert not model.training and model.backbone.patch_embed1.proj[1].running_mean.abs().sum() > 0
    x = torch.randn(2, 1, 72, 104)
    with torch.inference_mode():
        torch.testing.assert_close(net(x), model(x), rtol=1e-4, atol=1e-4)


def test_fusing_leaves_the_model_alone() -> None:
    model = create_mcanet("test").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fuse_for_inference(model)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_tune_cpu_allocator_is_harmless() -> None:
    assert tune_cpu_allocator() in (True, False)
    assert torch.ones(1000, 1000).sum() == 1e6
