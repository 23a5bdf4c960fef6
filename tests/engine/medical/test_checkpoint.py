"""Our checkpoint format (safetensors + JSON metadata) and official .pth import."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from engine.errors import ModelError, WeightsError
from engine.medical.checkpoint import (
    FORMAT_VERSION,
    IntensityWindow,
    MCANetMeta,
    import_official_checkpoint,
    load_mcanet_checkpoint,
    read_mcanet_meta,
    save_mcanet_checkpoint,
    sigmoid_classes,
    softmax_classes,
)
from engine.medical.mcanet import create_mcanet
from tests.engine.medical._seeded import seeded_state_dict
from tests.engine.medical._tiny import CT_META, tiny_checkpoint, tiny_model

FIXTURES = Path(__file__).parent / "fixtures"


def test_round_trip_keeps_weights_and_every_metadata_field(tmp_path: Path) -> None:
    meta = replace(CT_META, context_slices=1, in_channels=3, description="liver run 3", threshold=0.4)
    model = tiny_model(meta, seed=5)
    path = tmp_path / "m.safetensors"
    save_mcanet_checkpoint(path, model, meta)
    loaded, meta2 = load_mcanet_checkpoint(path)
    assert meta2 == meta and not loaded.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    assert read_mcanet_meta(path).classes[1].name == "spleen"
    assert meta2.format_version == FORMAT_VERSION and meta2.engine_version


def test_metadata_is_plain_json_in_the_header(tmp_path: Path) -> None:
    from safetensors import safe_open

    path = tiny_checkpoint(tmp_path)
    with safe_open(str(path), framework="pt") as f:
        raw = json.loads(f.metadata()["maskwright"])
    assert raw["variant"] == "test" and raw["window"] == {"kind": "ct", "center": 40.0, "width": 400.0,
                                                          "low": 0.0, "high": 255.0}
    assert [c["name"] for c in raw["classes"]] == ["liver", "spleen"] and raw["spacing"] == [1.0, 1.0]


def test_bad_metadata_is_refused() -> None:
    with pytest.raises(ValueError, match="3 input channels"):
        MCANetMeta(variant="t", classes=sigmoid_classes("x"), in_channels=1, context_slices=1,
                   mean=(0.0,), std=(1.0,))
    with pytest.raises(ValueError, match="one per input channel"):
        MCANetMeta(variant="t", classes=sigmoid_classes("x"), in_channels=1)
    with pytest.raises(ValueError, match="window high"):
        IntensityWindow("percentile", low=99, high=1)
    assert MCANetMeta(variant="t", classes=softmax_classes(["a", "b", "c"])).out_channels == 4


def test_newer_format_and_foreign_files_are_clear_errors(tmp_path: Path) -> None:
    path = tiny_checkpoint(tmp_path)
    from safetensors.torch import load_file, save_file

    raw = json.loads(CT_META.to_json())
    raw["format_version"] = FORMAT_VERSION + 1
    save_file(load_file(str(path)), str(tmp_path / "new.safetensors"), metadata={"maskwright": json.dumps(raw)})
    with pytest.raises(WeightsError, match="new.safetensors: the checkpoint metadata is invalid .*newer"):
        load_mcanet_checkpoint(tmp_path / "new.safetensors")
    save_file({"w": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(WeightsError, match="plain.safetensors: no Maskwright MCANet metadata"):
        load_mcanet_checkpoint(tmp_path / "plain.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(WeightsError, match="junk.safetensors: not a safetensors checkpoint"):
        load_mcanet_checkpoint(tmp_path / "junk.safetensors")
    with pytest.raises(WeightsError, match="does not exist"):
        load_mcanet_checkpoint(tmp_path / "absent.safetensors")


def test_saving_a_model_that_contradicts_its_metadata(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="2 classes"):
        save_mcanet_checkpoint(tmp_path / "x.safetensors", create_mcanet("test"), CT_META)
    assert not (tmp_path / "x.safetensors").exists()


@pytest.mark.parametrize("variant", ["t", "s"])
def test_official_mmseg_pth_loads_strictly_without_conversion(tmp_path: Path, variant: str) -> None:
    shapes = {k: tuple(v) for k, v in json.loads((FIXTURES / f"official_keys_{variant}.json").read_text()).items()}
    sd = seeded_state_dict(shapes)
    path = tmp_path / "iter_80000.pth"
    torch.save({"meta": {"mmseg_version": "1.2.2", "iter": 80000}, "state_dict": sd}, path)
    model, meta = load_mcanet_checkpoint(path)
    assert meta.variant == variant and meta.sigmoid and meta.in_channels == 3
    for k, v in sd.items():
        assert torch.equal(model.state_dict()[k], v), k
    _, meta2 = import_official_checkpoint(path, classes=sigmoid_classes("polyp"), modality="photo")
    assert meta2.classes[0].name == "polyp" and meta2.modality == "photo"


def test_official_pth_with_foreign_keys_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"state_dict": {"backbone.conv1.weight": torch.zeros(1)}}, path)
    with pytest.raises(WeightsError, match="other.pth: no backbone.patch_embed1 weights"):
        load_mcanet_checkpoint(path)


def test_a_full_mmengine_checkpoint_loads_without_unpickling_its_extras(tmp_path: Path) -> None:
    """mmengine saves ``message_hub`` (``HistoryBuffer`` objects holding numpy arrays) and ``meta``
    next to ``state_dict``: plain ``weights_only`` loading refuses them; we read them as inert
    placeholders and never import or run their classes."""
    import sys
    import types

    import numpy as np

    module = types.ModuleType("mmengine_fake_logging")
    ran: list[str] = []

    class HistoryBuffer:
        def __init__(self) -> None:
            self._log_history = np.arange(3.0)

        def __setstate__(self, state: dict) -> None:  # would run on a real unpickle
            ran.append("setstate")
            self.__dict__.update(state)

    HistoryBuffer.__module__ = module.__name__
    HistoryBuffer.__qualname__ = "HistoryBuffer"
    module.HistoryBuffer = HistoryBuffer
    sys.modules[module.__name__] = module
    shapes = {k: tuple(v) for k, v in json.loads((FIXTURES / "official_keys_t.json").read_text()).items()}
    sd = seeded_state_dict(shapes)
    path = tmp_path / "best_mDice_iter_8000.pth"
    try:
        torch.save({"meta": {"seed": np.int64(3), "dataset_meta": {"classes": ("background", "polyp")}},
                    "message_hub": {"log_scalars": {"train/loss": HistoryBuffer()}},
                    "state_dict": sd}, path)
    finally:
        del sys.modules[module.__name__]
    with pytest.raises(Exception):
        torch.load(path, map_location="cpu", weights_only=True)
    model, meta = load_mcanet_checkpoint(path)
    assert meta.variant == "t" and not ran
    assert torch.equal(model.state_dict()["decode_head.conv_seg.weight"], sd["decode_head.conv_seg.weight"])
    (tmp_path / "damaged.pth").write_bytes(b"\x80\x02garbage")
    with pytest.raises(WeightsError, match="damaged.pth: not a readable PyTorch checkpoint"):
        load_mcanet_checkpoint(tmp_path / "damaged.pth")
