"""``maskwright segment`` on photos: PNG masks and COCO JSON, through engine/cli/segment.py."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from safetensors.torch import save_file

from engine.cli import segment
from engine.errors import ItemReadError, LabelError, WeightsError
from engine.io.masks import read_mask_png
from engine.openvocab.cli import collect_photos, run_segment
from tests.engine.openvocab._tiny import TINY_CONFIG, tiny_clip


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Weights and text-embedding caches go to a temporary folder, never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    segment.add_parser(sub)
    return parser.parse_args(["segment", *argv])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny_model")
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CONFIG, "preprocess_cfg": {}}))
    state = {k: v.contiguous() for k, v in tiny_clip().model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))
    return folder


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 256, (48, 32, 3), dtype=np.uint8)).save(folder / "sub" / "b.jpg")
    return folder


def test_segment_writes_masks_and_coco(model_dir: Path, photos: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    args = _parse(["--classes", "cat; kitten, dog, sky", str(photos), "--out", str(out),
                   "--model", f"local-dir:{model_dir}", "--strategy", "clearclip", "--device", "cpu"])
    assert segment.run(args) == 0
    a = read_mask_png(out / "masks" / "a.png")
    b = read_mask_png(out / "masks" / "sub" / "b.png")
    assert a.shape == (40, 56) and b.shape == (48, 32)
    assert set(np.unique(a)) | set(np.unique(b)) <= {0, 1, 2, 3}
    coco = json.loads((out / "annotations.json").read_text())
    assert [c["id"] for c in coco["categories"]] == [1, 2, 3]
    assert [c["name"] for c in coco["categories"]] == ["cat", "dog", "sky"]
    names = {im["file_name"]: im for im in coco["images"]}
    assert set(names) == {"a.png", "sub/b.jpg"}
    for ann in coco["annotations"]:
        image = next(im for im in coco["images"] if im["id"] == ann["image_id"])
        mask = a if image["file_name"] == "a.png" else b
        decoded = mask_utils.decode(ann["segmentation"]).astype(bool)
        np.testing.assert_array_equal(decoded, mask == ann["category_id"])
    assert "wrote 2 masks" in capsys.readouterr().out
    assert list((tmp_path / "cache").rglob("*.npy"))  # text embeddings cached for the next run


def test_missing_classes_and_inputs_are_clear_errors(model_dir: Path, photos: Path, tmp_path: Path) -> None:
    with pytest.raises(LabelError, match="--classes"):
        run_segment(_parse([str(photos), "--out", str(tmp_path / "o"), "--model", f"local-dir:{model_dir}"]))
    with pytest.raises(ItemReadError, match="no such file"):
        run_segment(_parse(["--classes", "cat", str(tmp_path / "nope.jpg"), "--out", str(tmp_path / "o")]))
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello")
    with pytest.raises(ItemReadError, match="not a photo"):
        collect_photos([text_file])


def test_missing_catalog_weights_say_what_to_do(photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError) as err:
        run_segment(_parse(["--classes", "cat", str(photos), "--out", str(tmp_path / "o")]))
    assert "maskwright models" in str(err.value)


def test_export_names_are_unique(tmp_path: Path) -> None:
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        Image.new("RGB", (4, 4)).save(tmp_path / sub / "same.png")
    got = collect_photos([tmp_path / "x" / "same.png", tmp_path / "y" / "same.png"])
    assert [name for _, name in got] == ["same.png", "same_1.png"]


def test_through_the_maskwright_command(model_dir: Path, photos: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import main

    out = tmp_path / "out"
    code = main(["segment", "--classes", "cat, dog", str(photos / "a.png"), "--out", str(out),
                 "--model", f"local-dir:{model_dir}", "--device", "cpu"])
    assert code == 0 and (out / "masks" / "a.png").is_file() and (out / "annotations.json").is_file()
    assert main(["segment", str(photos / "a.png"), "--out", str(out), "--model", f"local-dir:{model_dir}"]) == 2
    assert "--classes" in capsys.readouterr().err
