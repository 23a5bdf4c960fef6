"""Our dense CLIP equals each reference implementation (fp32, relative error <= 1e-4).

How the fixtures in ``fixtures/`` were produced (scripts kept outside the repository, in
``/work/scratch/openvocab/``; nothing of the references is committed):

1. ``gen_common.py``: the tiny model of ``_tiny.py`` (``TINY_CONFIG``, random weights from
   ``TINY_SEED``, built by :func:`engine.models.open_clip_entries.build_open_clip`) and fixed
   inputs drawn from ``torch.Generator().manual_seed(7)``: ``native`` (2x3x32x32, the native
   4x4 patch grid), ``window`` (2x3x40x56, a 5x7 grid: position embeddings resized) and
   ``slide`` (1x3x48x72 for sliding windows 32/16). Inputs are already "normalised" images.
   ``inputs.npz`` stores them and the sum of all weights (``weights_checksum``), so a change of
   torch's random generator is reported as such, not as a fidelity failure.
2. Each reference's own code run on those weights (state dict in OpenAI-CLIP key layout, which
   is open_clip's), with only infrastructure shimmed (mmseg/mmengine base classes and registry;
   for MaskCLIP mmcv's LN builder, MultiheadAttention/FFN wrappers and PatchEmbed):

   * ``naclip.npz`` - sinahmr/NACLIP ``naclip.NACLIP`` (arch ``reduced``, ``naclip`` attention,
     sigma 5) with its ``clip`` package; ``clip.load`` replaced by ``clip.model.build_model``
     followed by loading the fp32 state dict (``build_model`` casts to fp16 first). Stored: text
     embeddings of the classes ``cat, kitten / dog / sky, clouds`` (80 templates),
     ``encode_image(return_all=True)`` patch logits, ``forward_feature`` outputs,
     ``forward_slide(stride 16, crop 32)``, its ``pamr.PAMR(10, (8, 16))`` on the slide logits,
     and ``predict`` (threshold 0.1, output size 60x90).
   * ``sclip.npz`` - wangf3014/SCLIP ``clip_segmentor.CLIPForSegmentation`` (``csa=True``), same
     outputs except PAMR/predict.
   * ``clearclip.npz`` - mc-lan/ClearCLIP ``clearclip_segmentor.ClearCLIPSegmentation``
     (``model_type="ClearCLIP"``, ``ignore_residual=True``) with its vendored open_clip; its
     ``create_model`` replaced by its own ``open_clip.model.CLIP`` built from ``TINY_CONFIG``.
   * ``maskclip.npz`` - chongzhou96/MaskCLIP ``mmseg/models/backbones/vit.py``
     (``return_qkv=True``, pre/final norm) + ``decode_heads/maskclip_head.py`` copied unchanged,
     weights mapped with their ``convert_clip_weights.py`` logic; LayerNorm eps 1e-5 and QuickGELU
     (their config's eps 1e-6 / GELU approximate OpenAI CLIP); text = fixed random unit vectors.

   Re-running every script twice gave bit-identical outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.openvocab.pamr import pamr
from engine.openvocab.pipeline import class_probabilities, encode_windows, label_photo, window_logits
from engine.openvocab.strategies import encode_dense
from engine.openvocab.text import TextEncoder
from tests.engine.openvocab._tiny import tiny_clip

FIXTURES = Path(__file__).parent / "fixtures"
CLASSES = [["cat", "kitten"], ["dog"], ["sky", "clouds"]]
TOL = 1e-4


def relerr(ours: torch.Tensor, ref: np.ndarray) -> float:
    ref_t = torch.from_numpy(np.asarray(ref))
    return float((ours.float() - ref_t).abs().max() / ref_t.abs().max())


@pytest.fixture(scope="module")
def clip():  # noqa: ANN201
    return tiny_clip()


@pytest.fixture(scope="module")
def inputs(clip) -> dict[str, np.ndarray]:  # noqa: ANN001
    data = dict(np.load(FIXTURES / "inputs.npz"))
    checksum = float(sum(p.double().sum() for p in clip.model.parameters()))
    assert checksum == pytest.approx(float(data["weights_checksum"]), rel=1e-12), (
        "the tiny model's random weights differ from the ones the fixtures were made with "
        "(torch's generator or open_clip's init changed); regenerate the fixtures"
    )
    return data


def load(name: str) -> dict[str, np.ndarray]:
    return dict(np.load(FIXTURES / f"{name}.npz"))


@pytest.mark.parametrize("strategy", ["naclip", "sclip", "clearclip"])
def test_text_embeddings_match_reference(clip, strategy: str) -> None:  # noqa: ANN001
    ref = load(strategy)
    queries = TextEncoder(clip).queries(CLASSES)
    assert queries.owner.tolist() == ref["query_idx"].tolist()
    assert relerr(queries.embeddings, ref["query_features"]) <= TOL


@pytest.mark.parametrize("strategy", ["naclip", "sclip", "clearclip", "maskclip"])
@pytest.mark.parametrize("key", ["native", "window"])
def test_patch_text_logits_match_reference(clip, inputs, strategy: str, key: str) -> None:  # noqa: ANN001
    ref = load(strategy)
    text = torch.from_numpy(ref["text"] if strategy == "maskclip" else ref["query_features"])
    with torch.inference_mode():
        dense = encode_dense(clip, torch.from_numpy(inputs[key]), strategy)
    logits = dense.patches.flatten(1, 2) @ text.T
    assert logits.shape == ref[f"{key}_patch_logits"].shape
    assert relerr(logits, ref[f"{key}_patch_logits"]) <= TOL


@pytest.mark.parametrize("strategy", ["naclip", "sclip", "clearclip"])
def test_whole_image_logits_match_forward_feature(clip, inputs, strategy: str) -> None:  # noqa: ANN001
    ref = load(strategy)
    text = torch.from_numpy(ref["query_features"])
    for i in range(inputs["window"].shape[0]):
        wf = encode_windows(clip, torch.from_numpy(inputs["window"][i: i + 1]), strategy, window=0, stride=0)
        assert relerr(window_logits(wf, text), ref["window_feature"][i]) <= TOL


@pytest.mark.parametrize("strategy", ["naclip", "sclip", "clearclip"])
def test_batched_windows_match_reference_slide_loop(clip, inputs, strategy: str) -> None:  # noqa: ANN001
    ref = load(strategy)
    text = torch.from_numpy(ref["query_features"])
    wf = encode_windows(clip, torch.from_numpy(inputs["slide"]), strategy, window=32, stride=16, batch_windows=3)
    assert len(wf.boxes) == 8
    assert relerr(window_logits(wf, text, chunk=5), ref["slide_logits"][0]) <= TOL


def test_pamr_matches_reference(inputs) -> None:  # noqa: ANN001
    ref = load("naclip")
    out = pamr(torch.from_numpy(inputs["slide"]), torch.from_numpy(ref["slide_logits"]), iterations=10, dilations=(8, 16))
    assert relerr(out, ref["pamr_out"]) <= TOL


def test_labels_and_probabilities_match_reference_predict() -> None:
    """NACLIP's predict: upsample, softmax x40 over names, best name per class, threshold 0.1 -> 0."""
    ref = load("naclip")
    logits = torch.from_numpy(ref["slide_logits"][0])
    owner = torch.from_numpy(ref["query_idx"])
    # the reference's class 0 doubles as background, so class index k has id k here
    labels = label_photo(logits, owner, torch.tensor([0, 1, 2]), (60, 90), logit_scale=40, prob_threshold=0.1)
    np.testing.assert_array_equal(labels, ref["predict_pred"][0])
    up = F.interpolate(logits[None], size=(60, 90), mode="bilinear", align_corners=False)[0]
    probs = class_probabilities(up, owner, 3, 40.0)
    probs = probs / probs.sum(dim=0, keepdim=True)
    assert relerr(probs, ref["predict_probs"]) <= TOL
