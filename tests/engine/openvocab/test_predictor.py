"""The predictor contract: set_image (expensive, once) / predict (cheap, repeatable) / reset_image."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import Cancelled, LabelError, ModelError
from engine.items import LabelSet, Photo
from engine.jobs import CancelToken
from engine.openvocab import predictor as predictor_module
from engine.openvocab.pipeline import SegmentSettings
from engine.openvocab.predictor import OpenVocabPredictor, segment_photo
from engine.openvocab.text import TextEncoder
from tests.engine.openvocab._tiny import tiny_clip

SMALL = dict(short_side=48, window=32, stride=16)  # tiny windows keep the tests fast


@pytest.fixture(scope="module")
def clip():  # noqa: ANN201
    return tiny_clip()


@pytest.fixture(scope="module")
def text(clip) -> TextEncoder:  # noqa: ANN001
    return TextEncoder(clip, templates=("a photo of a {}.", "a {}."))


def photo(h: int = 60, w: int = 90, seed: int = 0) -> Photo:
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    rgb[:, : w // 2] = (30, 200, 40)
    return Photo(rgb)


def test_predict_before_set_image_raises(clip, text) -> None:  # noqa: ANN001
    p = OpenVocabPredictor(clip, SegmentSettings(**SMALL), text_encoder=text)
    with pytest.raises(RuntimeError, match="set_image"):
        p.predict("cat")
    p.set_image(photo())
    p.reset_image()
    assert not p.is_image_set
    with pytest.raises(RuntimeError):
        p.predict("cat")


@pytest.mark.parametrize("strategy", ["naclip", "sclip", "clearclip", "maskclip"])
def test_label_map_on_the_photo_grid(clip, text, strategy: str) -> None:  # noqa: ANN001
    p = OpenVocabPredictor(clip, SegmentSettings(strategy=strategy, **SMALL), text_encoder=text)
    p.set_image(photo())
    labels = LabelSet.from_text("cat; kitten, dog, grass")
    seg = p.predict(labels)
    assert seg.label_map.shape == (60, 90) and seg.label_map.data.dtype == np.uint8
    assert seg.label_map.labels is labels
    assert set(seg.label_map.present_ids()) <= {1, 2, 3}
    k = len(seg.class_ids)
    assert seg.probabilities.shape[0] == k and seg.probabilities.dtype == np.float32
    np.testing.assert_allclose(seg.probabilities.sum(axis=0), 1.0, atol=1e-5)
    assert seg.class_ids[-3:] == (1, 2, 3)


def test_predict_again_does_not_encode_the_image_again(clip, text, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    calls = []
    real = predictor_module.encode_windows

    def counting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(predictor_module, "encode_windows", counting)
    p = OpenVocabPredictor(clip, SegmentSettings(**SMALL), text_encoder=text)
    p.set_image(photo())
    a = p.predict("cat, dog")
    b = p.predict("cat, dog, sky; clouds")
    c = p.predict("cat, dog")
    assert len(calls) == 1
    np.testing.assert_array_equal(a.label_map.data, c.label_map.data)
    assert b.probabilities.shape[0] == a.probabilities.shape[0] + 1


def test_background_names_that_are_classes_are_dropped(clip, text) -> None:  # noqa: ANN001
    p = OpenVocabPredictor(clip, SegmentSettings(background_names=("sky", "wall", "floor"), **SMALL),
                           text_encoder=text)
    classes, ids = p._queries(LabelSet.from_text("Sky; clouds, cat"))
    assert classes[0] == ["wall", "floor"] and ids == [0, 1, 2]
    p.set_image(photo())
    seg = p.predict("sky; clouds, cat")
    assert seg.class_ids == (0, 1, 2)


def test_background_switch_and_threshold(clip, text) -> None:  # noqa: ANN001
    labels = LabelSet.from_text("cat, dog")
    off = OpenVocabPredictor(clip, SegmentSettings(background=False, **SMALL), text_encoder=text)
    off.set_image(photo())
    seg = off.predict(labels)
    assert seg.class_ids == (1, 2) and 0 not in np.unique(seg.label_map.data)
    everything_bg = OpenVocabPredictor(clip, SegmentSettings(background_names=(), prob_threshold=1.01, **SMALL),
                                       text_encoder=text)
    everything_bg.set_image(photo())
    assert not everything_bg.predict(labels).label_map.data.any()
    # a per-call threshold (a slider) re-labels without encoding again
    assert everything_bg.predict(labels, prob_threshold=0.0).label_map.data.all()


@pytest.mark.parametrize("mode", ["half", "full"])
def test_pamr_refinement_runs(clip, text, mode: str) -> None:  # noqa: ANN001
    p = OpenVocabPredictor(clip, SegmentSettings(pamr=mode, pamr_iterations=3, **SMALL), text_encoder=text)
    p.set_image(photo(64, 80))
    seg = p.predict("cat, dog, grass")
    assert seg.label_map.shape == (64, 80) and "pamr" in seg.timings
    assert seg.probabilities.shape[1:] == ((32, 40) if mode == "half" else (64, 80))


def test_bf16_runs(clip, text) -> None:  # noqa: ANN001
    seg = segment_photo(clip, photo(), "cat, dog", SegmentSettings(precision="bf16", **SMALL), text_encoder=text)
    assert seg.label_map.shape == (60, 90)


def test_big_photo_runs(clip, text) -> None:  # noqa: ANN001
    rgb = np.zeros((4000, 6000, 3), dtype=np.uint8)
    rgb[:, 3000:] = 200
    seg = segment_photo(clip, rgb, "cat, dog, sky",
                        SegmentSettings(short_side=32, window=0, stride=0, background_names=("wall",)),
                        text_encoder=text)
    assert seg.label_map.shape == (4000, 6000)


def test_bad_inputs_are_clear_errors(clip, text) -> None:  # noqa: ANN001
    p = OpenVocabPredictor(clip, SegmentSettings(**SMALL), text_encoder=text)
    with pytest.raises(ModelError, match="uint8"):
        p.set_image(np.zeros((10, 10), dtype=np.uint8))
    p.set_image(photo())
    with pytest.raises(LabelError):
        p.predict("  ,  ")
    with pytest.raises(ValueError, match="templates"):
        OpenVocabPredictor(clip, SegmentSettings(templates=("x {}",)), text_encoder=text)


def test_cancel_and_progress(clip, text) -> None:  # noqa: ANN001
    token = CancelToken()
    token.cancel()
    p = OpenVocabPredictor(clip, SegmentSettings(**SMALL), text_encoder=text)
    with pytest.raises(Cancelled):
        p.set_image(photo(), cancel=token)
    seen: list[tuple[int, int]] = []
    p.set_image(photo(), progress=lambda done, total, msg: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1]
