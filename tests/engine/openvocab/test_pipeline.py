"""The photo pipeline: resizing, the window grid, batching, overlap averaging, strip labelling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from engine.openvocab.pipeline import (
    SegmentSettings,
    WindowFeatures,
    encode_windows,
    label_photo,
    pamr_size,
    resize_photo,
    window_boxes,
    window_logits,
)
from tests.engine.openvocab._tiny import tiny_clip


@pytest.mark.parametrize(("h", "w", "window", "stride", "count"), [
    (336, 448, 224, 112, 6), (336, 597, 224, 112, 10), (448, 597, 448, 224, 2), (100, 300, 224, 112, 2),
    (50, 60, 0, 0, 1),
])
def test_window_grid_covers_the_image(h: int, w: int, window: int, stride: int, count: int) -> None:
    boxes = window_boxes(h, w, window, stride)
    assert len(boxes) == count
    cover = np.zeros((h, w), dtype=int)
    sizes = set()
    for y1, y2, x1, x2 in boxes:
        assert 0 <= y1 < y2 <= h and 0 <= x1 < x2 <= w
        cover[y1:y2, x1:x2] += 1
        sizes.add((y2 - y1, x2 - x1))
    assert cover.min() >= 1
    assert len(sizes) == 1  # every crop has the same size, so crops batch together


@pytest.mark.parametrize(("shape", "short", "expected"), [
    ((480, 640), 336, (336, 448)), ((1080, 1920), 336, (336, 597)), ((100, 4000), 336, (51, 2048)),
    ((200, 100), 448, (896, 448)),
])
def test_resize_like_mmseg_keep_ratio(shape: tuple[int, int], short: int, expected: tuple[int, int]) -> None:
    rgb = np.zeros((*shape, 3), dtype=np.uint8)
    out = resize_photo(rgb, short, 2048)
    assert out.shape == (1, 3, *expected) and out.dtype == torch.float32


def test_resize_keeps_orientation() -> None:
    rgb = np.zeros((40, 80, 3), dtype=np.uint8)
    rgb[:20, :40, 0] = 255  # red top-left quarter
    out = resize_photo(rgb, 20, 2048)[0]
    assert out[0, 2, 2] > 0.9 and out[0, 17, 37] < 0.1 and out[0, 2, 37] < 0.1


def test_batch_size_does_not_change_the_result() -> None:
    clip = tiny_clip()
    image = torch.randn(1, 3, 56, 80)
    text = F.normalize(torch.randn(4, 32), dim=-1)
    one = window_logits(encode_windows(clip, image, "sclip", window=32, stride=16, batch_windows=1), text, chunk=1)
    many = window_logits(encode_windows(clip, image, "sclip", window=32, stride=16, batch_windows=7), text, chunk=5)
    assert torch.allclose(one, many, atol=1e-5)


def test_crops_that_are_not_patch_multiples_are_padded() -> None:
    clip = tiny_clip()
    wf = encode_windows(clip, torch.randn(1, 3, 44, 61), "clearclip", window=0, stride=0)
    assert wf.pad == (1, 2, 2, 2) and wf.features.shape == (1, 6, 8, 32)
    assert window_logits(wf, F.normalize(torch.randn(3, 32), dim=-1)).shape == (3, 44, 61)


def test_windows_land_where_they_belong() -> None:
    """Hand-made window features that encode a known map come back as that map."""
    h, w, window, stride, patch = 64, 96, 32, 16, 8
    truth = np.zeros((h, w), dtype=np.int64)
    truth[:, 40:] = 1
    truth[44:, :30] = 2
    basis = torch.eye(3, 32)
    boxes = window_boxes(h, w, window, stride)
    feats = torch.zeros(len(boxes), window // patch, window // patch, 32)
    for n, (y1, _, x1, _) in enumerate(boxes):
        for r in range(window // patch):
            for c in range(window // patch):
                feats[n, r, c] = basis[truth[y1 + r * patch + patch // 2, x1 + c * patch + patch // 2]]
    wf = WindowFeatures(feats, tuple(boxes), (0, 0, 0, 0), (h, w))
    logits = window_logits(wf, basis)
    labels = label_photo(logits, torch.arange(3), torch.tensor([5, 6, 7]), (2 * h, 2 * w), logit_scale=40,
                         prob_threshold=0.0)
    expected = np.array([5, 6, 7])[np.repeat(np.repeat(truth, 2, 0), 2, 1)]
    # ignore pixels within one patch (16 output pixels) of a class edge
    interior = np.zeros_like(expected, dtype=bool)
    for value in (5, 6, 7):
        interior |= ndimage.binary_erosion(expected == value, iterations=2 * patch, border_value=1)
    assert (labels[interior] == expected[interior]).all()
    assert interior.mean() > 0.5


def test_pamr_size() -> None:
    assert pamr_size((480, 640), "full", 2048) == (480, 640)
    assert pamr_size((480, 640), "half", 2048) == (240, 320)
    assert pamr_size((4000, 6000), "full", 2048) == (1365, 2048)


def test_settings_validate() -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        SegmentSettings(strategy="nope")
    with pytest.raises(ValueError, match="pamr"):
        SegmentSettings(pamr="quarter")
    with pytest.raises(ValueError, match="precision"):
        SegmentSettings(precision="int8")
    s = SegmentSettings(strategy="clearclip", window=96)
    assert s.pick("window") == 96 and s.pick("stride") == 224 and s.pick("logit_scale") == 50.0


def test_pamr_in_class_chunks_is_the_same() -> None:
    from engine.openvocab.pamr import pamr

    torch.manual_seed(1)
    image, mask = torch.randn(1, 3, 40, 50), torch.randn(1, 11, 20, 25)
    assert torch.equal(pamr(image, mask, iterations=4, class_chunk=3), pamr(image, mask, iterations=4, class_chunk=64))
