"""Photo-resolution labels: the shortcut gives exactly the references' labels, in bounded memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.openvocab import labelling
from engine.openvocab.labelling import label_photo
from engine.openvocab.pipeline import class_probabilities


def reference_labels(logits: torch.Tensor, owner: torch.Tensor, ids: torch.Tensor, out: tuple[int, int],
                     scale: float, threshold: float) -> np.ndarray:
    """The references' way: upsample everything, softmax, best name per class, argmax, threshold."""
    up = F.interpolate(logits[None], size=out, mode="bilinear", align_corners=False)[0]
    probs = class_probabilities(up, owner, int(ids.numel()), scale)
    best, arg = probs.max(0)
    labels = ids[arg].numpy()
    labels[(best < threshold).numpy()] = 0
    return labels.astype(np.uint8)


@pytest.mark.parametrize(("smooth", "threshold", "out"), [
    (0.0, 0.0, (71, 53)), (0.0, 0.3, (71, 53)), (3.0, 0.3, (200, 150)), (3.0, 0.05, (13, 17)), (1.0, 0.5, (40, 31)),
])
def test_same_labels_as_the_reference_computation(smooth: float, threshold: float, out: tuple[int, int]) -> None:
    torch.manual_seed(0)
    logits = torch.randn(6, 13, 17) * 0.05
    if smooth:  # large smooth regions, like real CLIP logits
        logits = F.avg_pool2d(F.pad(logits[None], [2] * 4, mode="replicate"), 5, stride=1)[0] * 4 * smooth
    owner = torch.tensor([0, 0, 1, 2, 2, 3])
    ids = torch.tensor([0, 3, 9, 4])
    expected = reference_labels(logits, owner, ids, out, 40.0, threshold)
    got = label_photo(logits, owner, ids, out, logit_scale=40.0, prob_threshold=threshold)
    assert got.shape == out and got.dtype == np.uint8
    assert (got == expected).mean() > 0.9995  # float rounding may flip an exact tie


@pytest.mark.parametrize("dense_fraction", [0.0, 1.1])
def test_both_paths_agree(monkeypatch: pytest.MonkeyPatch, dense_fraction: float) -> None:
    """Strips upsampled whole (fraction 0) and gathered pixel by pixel (fraction > 1) agree."""
    torch.manual_seed(3)
    logits = F.avg_pool2d(torch.randn(1, 5, 15, 19), 3, stride=1, padding=1)[0]
    owner, ids = torch.tensor([0, 1, 1, 2, 3]), torch.tensor([0, 1, 2, 3])
    expected = reference_labels(logits, owner, ids, (90, 70), 40.0, 0.4)
    monkeypatch.setattr(labelling, "_DENSE_FRACTION", dense_fraction)
    got = label_photo(logits, owner, ids, (90, 70), logit_scale=40.0, prob_threshold=0.4)
    assert (got == expected).mean() > 0.9995


def test_uniform_cells_skip_the_per_pixel_work(monkeypatch: pytest.MonkeyPatch) -> None:
    computed: list[int] = []
    real = labelling._ambiguous

    def spy(src, name_ids, ys, xs, rows, cols, scale, thr):  # noqa: ANN001, ANN202
        computed.append(rows.numel())
        return real(src, name_ids, ys, xs, rows, cols, scale, thr)

    monkeypatch.setattr(labelling, "_ambiguous", spy)
    logits = torch.zeros(3, 8, 8)
    logits[0, :, :4] = 1.0  # left half class 0, right half class 1, very confident
    logits[1, :, 4:] = 1.0
    got = label_photo(logits, torch.arange(3), torch.tensor([1, 2, 3]), (80, 80), logit_scale=40.0, prob_threshold=0.1)
    assert (got[:, :30] == 1).all() and (got[:, 50:] == 2).all()
    assert sum(computed) <= 80 * 10  # only the column band between the two halves


def test_chunks_stay_bounded_on_a_big_photo(monkeypatch: pytest.MonkeyPatch) -> None:
    """6000x4000: never a full-resolution (Q, H, W) tensor; every chunk within CHUNK_ELEMENTS."""
    sizes: list[int] = []
    real_gather, real_dense = labelling._ambiguous, labelling._dense_rows

    def gather(src, name_ids, ys, xs, rows, cols, scale, thr):  # noqa: ANN001, ANN202
        sizes.append(src.shape[-1] * rows.numel())
        return real_gather(src, name_ids, ys, xs, rows, cols, scale, thr)

    def dense(src, name_ids, ys, out_w, r0, r1, scale, thr):  # noqa: ANN001, ANN202
        sizes.append(src.shape[0] * (r1 - r0) * out_w)
        return real_dense(src, name_ids, ys, out_w, r0, r1, scale, thr)

    monkeypatch.setattr(labelling, "CHUNK_ELEMENTS", 1 << 20)
    monkeypatch.setattr(labelling, "_ambiguous", gather)
    monkeypatch.setattr(labelling, "_dense_rows", dense)
    torch.manual_seed(0)
    logits = torch.randn(5, 21, 32) * 0.02
    labels = label_photo(logits, torch.arange(5), torch.tensor([0, 1, 2, 3, 4]), (4000, 6000), logit_scale=40,
                         prob_threshold=0.1)
    assert labels.shape == (4000, 6000) and labels.dtype == np.uint8
    assert sizes and max(sizes) <= 1 << 20
    assert set(np.unique(labels)) <= {0, 1, 2, 3, 4}


def test_uint16_ids() -> None:
    logits = torch.randn(2, 4, 4)
    labels = label_photo(logits, torch.arange(2), torch.tensor([300, 301]), (8, 8), logit_scale=40.0,
                         prob_threshold=0.0, dtype=np.dtype(np.uint16))
    assert labels.dtype == np.uint16 and set(np.unique(labels)) <= {300, 301}
