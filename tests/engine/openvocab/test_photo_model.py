"""Photo models with a trained Cascade-CLIP head or fine-tuned image-encoder weights; the CLI with
``--model CHECKPOINT``; one model-loading path (weights manager, one builder)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

from engine.cli import segment
from engine.errors import ModelError, WeightsError
from engine.io.masks import read_mask_png
from engine.items import LabelSet
from engine.models.catalog import FileSource, ModelEntry, default_catalog
from engine.models.weights import WeightsManager
from engine.openvocab.cascade import CascadeCLIP, CascadeConfig, CascadeHead, combine_probabilities, slide_probabilities
from engine.openvocab.cascade_io import save_head
from engine.openvocab.clip_model import ClipSpec, clip_from_catalog, load_clip
from engine.openvocab.densevlm_convert import save_visual_weights
from engine.openvocab.photo_model import HeadSettings, load_photo_model
from engine.openvocab.pipeline import SegmentSettings, resize_photo
from engine.openvocab.predictor import OpenVocabPredictor
from engine.openvocab.text import TextEncoder
from tests.engine.openvocab._tiny import TINY_CONFIG, tiny_clip

TEMPLATES = ("a photo of a {}.",)
SETTINGS = SegmentSettings(short_side=48, window=32, stride=16, templates=TEMPLATES, background=False)


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("MASKWRIGHT_CACHE_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny CLIP as an open_clip folder (what a head's config can name as its backbone)."""
    folder = tmp_path_factory.mktemp("tiny_model")
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CONFIG, "preprocess_cfg": {}}))
    save_file({k: v.contiguous() for k, v in tiny_clip().model.state_dict().items()},
              str(folder / "open_clip_model.safetensors"))
    return folder


def _head(backbone: str, seed: int = 3) -> CascadeHead:
    cfg = CascadeConfig(backbone=backbone, width=128, dim=32, depth=2, stages=((0,),), num_heads=4, num_layers=1,
                        ffn_dim=64, num_prompt_tokens=2, dropout=0.0)
    torch.manual_seed(seed)
    head = CascadeHead(cfg)
    head.init_from_clip(tiny_clip().model.visual)
    with torch.no_grad():  # a "trained" head: not its initial state
        for p in head.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return head.eval()


def _photo(seed: int = 0, shape: tuple[int, int] = (40, 56)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def test_head_probabilities_are_the_blend_of_both_parts_and_take_unseen_names(tmp_path: Path, model_dir: Path) -> None:
    path = save_head(_head(f"local-dir:{model_dir}"), tmp_path / "head.safetensors", extra={"classes": ["cat"]})
    model = load_photo_model(path)
    assert model.head is not None and model.checkpoint == path and model.extra == {"classes": ["cat"]}
    photo = _photo()
    labels = LabelSet.from_text("cat; kitten, dog, never seen thing")  # none but "cat" seen by the head
    hs = HeadSettings(weight=0.6, window=32, stride=24)
    with_head = OpenVocabPredictor.from_photo_model(model, SETTINGS, head_settings=hs)
    with_head.set_image(photo)
    seg = with_head.predict(labels)

    # the two parts, computed independently
    free = OpenVocabPredictor(model.clip, SETTINGS)
    free.set_image(photo)
    free_seg = free.predict(labels)
    encoder = TextEncoder(model.clip, templates=TEMPLATES)
    text = torch.stack([F.normalize(encoder.embed_names(list(c.synonyms)).mean(0), dim=-1) for c in labels])
    image = model.clip.normalize(resize_photo(photo, 48, SETTINGS.max_long_side))[0]
    with torch.inference_mode():
        head_part = slide_probabilities(CascadeCLIP(model.clip.model.visual, model.head).eval(), image, text,
                                        window=32, stride=24)
    expected = combine_probabilities(head_part, torch.from_numpy(free_seg.probabilities), weight=0.6)
    assert seg.probabilities.shape == free_seg.probabilities.shape == (3, 48, 67)
    np.testing.assert_allclose(seg.probabilities, expected.numpy(), atol=1e-5)
    assert np.abs(seg.probabilities - free_seg.probabilities).max() > 1e-3  # the head changes the answer
    assert seg.label_map.data.shape == photo.shape[:2]
    assert set(np.unique(seg.label_map.data)) <= {1, 2, 3}
    # the label map is the blend's argmax (checked where the upsampling cannot blur it: a 1:1 photo)
    same = OpenVocabPredictor.from_photo_model(model, SegmentSettings(short_side=48, window=32, stride=16,
                                                                      templates=TEMPLATES, background=False),
                                               head_settings=hs)
    square = _photo(1, (48, 48))
    same.set_image(square)
    s2 = same.predict(labels)
    np.testing.assert_array_equal(s2.label_map.data, np.asarray(s2.class_ids)[s2.probabilities.argmax(0)])


def test_head_with_background_channel(tmp_path: Path, model_dir: Path) -> None:
    path = save_head(_head(f"local-dir:{model_dir}"), tmp_path / "head.safetensors")
    model = load_photo_model(path)
    settings = SegmentSettings(short_side=48, window=32, stride=16, templates=TEMPLATES, background=True,
                               background_names=("background",))
    pred = OpenVocabPredictor.from_photo_model(model, settings, head_settings=HeadSettings(window=32, stride=24))
    pred.set_image(_photo())
    seg = pred.predict("cat, dog")
    assert seg.class_ids == (0, 1, 2)
    np.testing.assert_allclose(seg.probabilities.sum(0), 1.0, atol=1e-5)


def test_visual_weights_checkpoint_replaces_the_image_encoder(tmp_path: Path, model_dir: Path) -> None:
    tuned = tiny_clip(99)  # "fine-tuned": other image-encoder weights than the base
    path = save_visual_weights(tuned.model, tmp_path / "visual.safetensors", metadata={"base": f"local-dir:{model_dir}"})
    model = load_photo_model(path)
    assert model.head is None and model.checkpoint == path
    base = tiny_clip()
    for (k, a), b in zip(model.clip.model.visual.state_dict().items(), tuned.model.visual.state_dict().values()):
        assert torch.equal(a, b), k
    assert torch.equal(model.clip.model.text_projection, base.model.text_projection)  # text tower: the base's
    assert "visual:" in model.clip.key  # text caches keyed apart from the base's
    # with an explicit backbone, the weights go into a copy of it
    kept = tiny_clip()
    load_photo_model(path, backbone=kept)
    assert torch.equal(kept.model.visual.conv1.weight, base.model.visual.conv1.weight)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    segment.add_parser(sub)
    return parser.parse_args(["segment", *argv])


def test_cli_segments_with_a_head_checkpoint(tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = save_head(_head(f"local-dir:{model_dir}"), tmp_path / "head.safetensors")
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(_photo()).save(photos / "a.png")
    out = tmp_path / "out"
    assert segment.run(_parse(["--classes", "cat, dog, sky", str(photos), "--out", str(out), "--model", str(path),
                               "--device", "cpu"])) == 0
    mask = read_mask_png(out / "masks" / "a.png")
    assert mask.shape == (40, 56) and set(np.unique(mask)) <= {0, 1, 2, 3}
    assert (out / "annotations.json").is_file()
    assert f"using checkpoint {path}" in capsys.readouterr().out


def test_missing_checkpoint_and_backbone_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="no such weights file"):
        load_photo_model(tmp_path / "nope.safetensors")
    path = save_head(_head(f"local-dir:{tmp_path / 'gone'}"), tmp_path / "head.safetensors")
    with pytest.raises(WeightsError, match="open_clip_config.json"):
        load_photo_model(path)


def test_catalog_refuses_models_dense_clip_cannot_host(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="eva_clip"):
        clip_from_catalog("EVA02-B-16.densevlm_coco", weights_root=tmp_path)
    catalog = default_catalog()
    head = save_head(_head("tiny.random"), tmp_path / "head.safetensors")
    catalog.register(ModelEntry(name="project.head", kind="photo", architecture="cascade_clip",
                                source=FileSource(head)))
    with pytest.raises(ModelError, match="load_photo_model"):
        clip_from_catalog("project.head", catalog=catalog, weights_root=tmp_path)


def test_a_tag_imported_with_models_import_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tags resolve through the weights manager: an imported file counts, not only the hub cache."""
    src = tiny_clip(5)
    file = tmp_path / "downloaded_elsewhere.safetensors"
    save_file({k: v.contiguous() for k, v in src.model.state_dict().items()}, str(file))
    manager = WeightsManager(default_catalog(), tmp_path / "weights")
    slot = manager.file_slot("ViT-B-16-quickgelu.openai")  # what `maskwright models import` fills
    slot.parent.mkdir(parents=True)
    slot.write_bytes(file.read_bytes())
    monkeypatch.setattr("open_clip.factory.get_model_config", lambda name: json.loads(json.dumps(TINY_CONFIG)))
    loaded = load_clip(ClipSpec(name="ViT-B-16-quickgelu", pretrained="openai"))
    for a, b in zip(loaded.model.state_dict().values(), src.model.state_dict().values()):
        assert torch.equal(a, b)
