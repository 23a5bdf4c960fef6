"""A project's active photo checkpoint (a trained Cascade-CLIP head) is used by the next
pre-annotation, without a restart, and the version's provenance names it."""

from __future__ import annotations

from pathlib import Path

import torch

from engine.openvocab.cascade import CascadeConfig, CascadeHead
from engine.openvocab.cascade_io import save_head
from tests.desktop.conftest import sample_photo, wait_for, wait_idle
from tests.engine.openvocab._tiny import TINY_CONFIG, TINY_SEED, tiny_clip

TINY_PHOTO_MODEL = {"model": "tiny-test-vit", "clip_config": TINY_CONFIG, "seed": TINY_SEED,
                    "segment": {"short_side": 64, "window": 32, "stride": 16, "templates": ["a photo of a {}."],
                                "background": False},
                    "head": {"window": 32, "stride": 24, "weight": 0.7}}


def _write_head(path: Path, seed: int) -> Path:
    cfg = CascadeConfig(backbone="tiny-test-vit.random", width=128, dim=32, depth=2, stages=((0,),), num_heads=4,
                        num_layers=1, ffn_dim=64, num_prompt_tokens=2, dropout=0.0)
    torch.manual_seed(seed)
    head = CascadeHead(cfg)
    head.init_from_clip(tiny_clip().model.visual)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return save_head(head.eval(), path, extra={"classes": ["cat"]})


def _preannotate(qtbot, w, item_id: int, count: int) -> None:
    w.actions_by_id["maskwright.model.preannotate"].trigger()
    wait_for(qtbot, lambda: len(w.document.project.versions(item_id)) == count, timeout=240000)
    wait_idle(qtbot, w)


def test_active_photo_checkpoint_is_used_and_named_in_provenance(qtbot, window, tmp_path: Path) -> None:
    from desktop import predictor_engines

    w = window
    w.settings.set("model.photo", TINY_PHOTO_MODEL)
    w.settings.set("device", "cpu")
    w.settings.set("weights_root", str(tmp_path / "weights"))
    w.open_project(tmp_path / "proj", create=True)
    w.open_paths([sample_photo(tmp_path, "chelsea")])
    wait_for(qtbot, lambda: w.document.editor is not None)
    wait_idle(qtbot, w)
    w.document.add_classes("cat, table, wall")
    item_id = w.document.record.id
    project = w.document.project

    _preannotate(qtbot, w, item_id, 1)  # training-free
    first = project.versions(item_id)[-1]
    assert first.provenance.model == "tiny-test-vit" and first.provenance.checkpoint == ""
    free = project.load_annotation(item_id).data.copy()
    assert w.model_config("photo")["weights_root"] == str(tmp_path / "weights")

    # training finished: the checkpoint is recorded in the project and made active (the dialog's path)
    head_path = _write_head(tmp_path / "proj" / "cascade-head.safetensors", seed=1)
    w.activate_checkpoint("photo", head_path, "tiny-test-vit")
    assert [c.path for c in project.checkpoints() if c.active] == [head_path]
    _preannotate(qtbot, w, item_id, 2)
    second = project.versions(item_id)[-1]
    assert second.provenance.model == "tiny-test-vit"
    assert Path(second.provenance.checkpoint) == head_path
    with_head = project.load_annotation(item_id).data.copy()
    assert (with_head != free).any()  # the head took part

    # the checkpoint is rewritten in place (training again): reloaded by its mtime, no restart
    misses = predictor_engines._load_model.cache_info().misses
    _write_head(head_path, seed=2)
    _preannotate(qtbot, w, item_id, 3)
    assert predictor_engines._load_model.cache_info().misses == misses + 1
    assert Path(project.versions(item_id)[-1].provenance.checkpoint) == head_path


def test_checkpoint_made_active_in_the_project_only_is_used(qtbot, window, tmp_path: Path) -> None:
    """A rollback done outside the window (``Project.set_active_checkpoint``) is what the next photo
    pre-annotation uses: the project's active checkpoint wins over the remembered settings."""
    w = window
    w.settings.set("model.photo", TINY_PHOTO_MODEL)
    w.open_project(tmp_path / "proj", create=True)
    project = w.document.project
    older = _write_head(tmp_path / "proj" / "older.safetensors", seed=3)
    newer = _write_head(tmp_path / "proj" / "newer.safetensors", seed=4)
    first = project.add_checkpoint(older, model="cascade-clip.tiny-test-vit", active=True)
    project.add_checkpoint(newer, model="cascade-clip.tiny-test-vit", active=True)
    assert w.model_config("photo")["checkpoint"] == str(newer)
    project.set_active_checkpoint(first.id)  # roll back
    cfg = w.model_config("photo")
    assert cfg["checkpoint"] == str(older) and cfg["model"] == "tiny-test-vit"
