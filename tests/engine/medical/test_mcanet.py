"""MCANet: official key names, parameter counts, and logits equal to the official implementation.

How the fixtures in ``fixtures/`` were made (the official code is not in this repository):
the official ``mmseg/models/backbones/mscan.py`` and ``mmseg/models/decode_heads/MCANet.py`` of
github.com/haoshao-nku/medical_seg (commit 9a18e12) were run unchanged in a scratch folder outside
the repo, with minimal stand-ins for the mmcv/mmengine/mmseg imports they need (mmcv's
``ConvModule``/``DepthwiseSeparableConvModule``/``build_norm_layer``/``build_activation_layer``
re-created with mmcv's semantics, ``BaseDecodeHead``'s ``conv_seg``/``dropout``/``cls_seg``, mmseg's
``resize``, a no-op ``MODELS`` registry; the real ``einops``). The models were built with the
arguments of the official configs ``local_config/MCANet/main/MCANet_mscan_{t,s,b}_*``
(BN backbone, GN(32) head, ``image_size=128``, 8 heads, ``channels`` 32/64/64), once with
``num_classes=1`` (sigmoid) and once with ``num_classes=5`` (softmax). Every state-dict entry
was filled by :func:`tests.engine.medical._seeded.seeded_tensor` (a generator seeded by the
CRC32 of the key: the same function this test uses), the models set to eval, and the input
``seeded_input(seed, shape)`` run through ``backbone`` -> ``decode_head.forward`` -> bilinear resize to
the input size (mmseg's ``EncoderDecoder.encode_decode``). Saved: input seed and shape, the fp32
logits, and the official state-dict key -> shape lists (``official_keys_{t,s,b}.json``).
In float64 the two implementations agree to 1e-13; fp32 differs by rounding only (< 1e-4).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import WeightsError
from engine.medical.mcanet import (
    VARIANTS,
    create_mcanet,
    load_backbone_weights,
    load_official_state_dict,
)
from tests.engine.medical._seeded import seeded_input, seeded_state_dict

FIXTURES = Path(__file__).parent / "fixtures"


def _official_shapes(variant: str) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v) for k, v in json.loads((FIXTURES / f"official_keys_{variant}.json").read_text()).items()}


@pytest.mark.parametrize("variant", ["t", "s", "b"])
def test_state_dict_keys_and_shapes_equal_official(variant: str) -> None:
    model = create_mcanet(variant)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == _official_shapes(variant)


@pytest.mark.parametrize("variant", ["t", "s", "b"])
@pytest.mark.parametrize("case", ["sigmoid", "softmax"])
def test_logits_equal_official(variant: str, case: str) -> None:
    ref = np.load(FIXTURES / f"official_mcanet_{variant}_{case}.npz")
    shapes = _official_shapes(variant)
    classes = int(ref["num_classes"])
    if classes != 1:
        shapes["decode_head.conv_seg.weight"] = (classes,) + shapes["decode_head.conv_seg.weight"][1:]
        shapes["decode_head.conv_seg.bias"] = (classes,)
    model = create_mcanet(variant, out_channels=classes).eval()
    checkpoint = {"meta": {"mmseg_version": "1.2.2"}, "state_dict": seeded_state_dict(shapes)}
    load_official_state_dict(model, checkpoint)  # strict, no conversion
    x = seeded_input(int(ref["input_seed"]), tuple(int(s) for s in ref["input_shape"]))
    with torch.no_grad():
        logits = model(x).numpy()
    assert logits.shape == ref["logits"].shape
    assert np.abs(logits - ref["logits"]).max() <= 1e-4


def test_parity_fails_when_the_model_differs() -> None:
    """The parity check has teeth: a 0.01 change of one head bias moves the logits past it."""
    ref = np.load(FIXTURES / "official_mcanet_t_sigmoid.npz")
    sd = seeded_state_dict(_official_shapes("t"))
    sd["decode_head.decoder_level.project_out.bias"] = sd["decode_head.decoder_level.project_out.bias"] + 0.01
    model = create_mcanet("t").eval()
    model.load_state_dict(sd)
    with torch.no_grad():
        logits = model(seeded_input(int(ref["input_seed"]), tuple(ref["input_shape"]))).numpy()
    assert np.abs(logits - ref["logits"]).max() > 1e-4


def test_t_has_4_05_m_parameters() -> None:
    model = create_mcanet("t")
    total = sum(p.numel() for p in model.parameters())
    assert round(total / 1e6, 2) == 4.05
    assert round(sum(p.numel() for p in model.backbone.parameters()) / 1e6, 2) == 3.90
    assert round(sum(p.numel() for p in model.decode_head.parameters()) / 1e6, 3) == 0.144


@pytest.mark.parametrize("variant,millions", [("s", 14.0), ("b", 26.8)])
def test_s_and_b_parameter_counts(variant: str, millions: float) -> None:
    model = create_mcanet(variant)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == millions


@pytest.mark.parametrize("variant", ["t", "s", "b"])
def test_mmseg_imagenet_backbone_checkpoint_loads_strictly(variant: str) -> None:
    """mmseg's ``mscan_{t,s,b}_20230227-*.pth``: a ``state_dict`` with the MSCAN key names."""
    shapes = {k.removeprefix("backbone."): v for k, v in _official_shapes(variant).items() if k.startswith("backbone.")}
    sd = seeded_state_dict(shapes)
    model = create_mcanet(variant)
    load_backbone_weights(model.backbone, {"meta": {}, "state_dict": sd})
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, sd[k]), k


def test_original_segnext_backbone_names_are_converted() -> None:
    shapes = {k.removeprefix("backbone."): v for k, v in _official_shapes("t").items() if k.startswith("backbone.")}
    sd = seeded_state_dict(shapes)
    original = {k.replace(".mlp.dwconv.", ".mlp.dwconv.dwconv."): v for k, v in sd.items()}
    original["head.weight"] = torch.zeros(1000, 256)
    original["head.bias"] = torch.zeros(1000)
    model = create_mcanet("t")
    load_backbone_weights(model.backbone, original)
    assert torch.equal(model.backbone.block1[0].mlp.dwconv.weight, sd["block1.0.mlp.dwconv.weight"])


def test_backbone_weights_adapt_to_one_input_channel() -> None:
    shapes = {k.removeprefix("backbone."): v for k, v in _official_shapes("t").items() if k.startswith("backbone.")}
    sd = seeded_state_dict(shapes)
    model = create_mcanet("t", in_channels=1)
    load_backbone_weights(model.backbone, sd)
    stem = model.backbone.patch_embed1.proj[0].weight
    assert stem.shape == (16, 1, 3, 3)
    assert torch.allclose(stem, sd["patch_embed1.proj.0.weight"].sum(1, keepdim=True))


def test_mismatched_checkpoint_names_the_keys() -> None:
    sd = seeded_state_dict(_official_shapes("t"))
    del sd["decode_head.conv_seg.bias"]
    sd["decode_head.extra.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError, match="missing: decode_head.conv_seg.bias.*unexpected: decode_head.extra"):
        load_official_state_dict(create_mcanet("t"), {"state_dict": sd})
    with pytest.raises(WeightsError, match="wrong shape"):
        load_official_state_dict(create_mcanet("s"), {"state_dict": seeded_state_dict(_official_shapes("b"))
                                                       | {"decode_head.conv_seg.weight": torch.zeros(3, 64, 1, 1)}})


def test_stride4_feature_size_keeps_aspect_and_shapes() -> None:
    torch.manual_seed(0)
    model = create_mcanet("test", feature_size="stride4").eval()
    x = torch.randn(2, 3, 64, 128)
    with torch.no_grad():
        low = model.forward_low_res(x)
        full = model(x)
    assert low.shape == (2, 1, 16, 32)  # the stride-4 grid, not a square
    assert full.shape == (2, 1, 64, 128)
    fixed = create_mcanet("t").decode_head
    assert fixed.image_size == 128 and fixed.feature_size == "fixed"


def test_variant_registry() -> None:
    assert {"t", "s", "b"} <= set(VARIANTS.list())
    assert create_mcanet("mcanet_mscan_t").backbone.embed_dims == (32, 64, 160, 256)
    with pytest.raises(ValueError, match="already registered"):
        VARIANTS.register("t", VARIANTS.get("t"))
    with pytest.raises(KeyError, match="unknown MCANet variant"):
        VARIANTS.get("xl")
