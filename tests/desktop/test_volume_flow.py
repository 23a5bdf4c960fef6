"""The volume flow: synthetic DICOM series, three views, scroll, paint on a slice, interpolate, export NIfTI."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from tests.desktop.conftest import drag, screenshot, synthetic_ct, wait_for, wait_idle


def _open_ct(qtbot, w, tmp_path: Path) -> Path:
    w.open_project(tmp_path / "proj", create=True)
    w.document.add_classes("liver, bone")
    series = synthetic_ct(tmp_path / "dicom")
    w.open_paths([tmp_path / "dicom"])
    wait_for(qtbot, lambda: w.document.editor is not None)
    wait_idle(qtbot, w)
    return series


def test_dicom_scroll_paint_interpolate_export_nifti(qtbot, window, tmp_path: Path) -> None:
    w = window
    _open_ct(qtbot, w, tmp_path)
    vv = w.volume_view
    assert w.stack.currentWidget() is vv
    assert w.document.source.shape == (12, 48, 48) and w.document.source.modality == "CT"
    axial = vv.views[0]
    assert axial.index == 6
    # window/level: the header's preset first, CT presets available, right-drag changes it
    assert vv.window == (40.0, 400.0)
    assert any("Bone" in vv.presets.itemText(i) for i in range(vv.presets.count()))
    axial.canvas.windowDrag.emit(40, -20)
    c, wd = vv.window
    assert c > 40 and wd > 400

    # scroll: wheel steps and the slider; the other views' cross-hairs follow
    axial.canvas.sliceStep.emit(-4)
    assert axial.index == 2 and vv.cursor[0] == 2
    assert vv.views[1].canvas.crosshair[0] == 2.0

    # paint a disc on slice 2 and slice 9 (same shape, one class), then interpolate between them
    w.options_panel.size.setValue(6)
    drag(axial.canvas, [(24, 24), (24, 25)])
    axial.slider.setValue(9)
    assert axial.index == 9
    drag(axial.canvas, [(24, 24), (24, 25)])
    data = w.document.editor.data
    assert data[2].any() and data[9].any() and not data[3:9].any()
    # the painted slice shows in the coronal view through the overlay cache
    vv.views[1].set_index(24)
    assert vv.views[1].canvas.overlay.buffer[2].any()
    w.actions_by_id["maskwright.edit.interpolate"].trigger()
    assert all(data[k].any() for k in range(2, 10))
    assert w.document.undo_stack.count() == 3
    screenshot(w, "02-volume-interpolated")
    w.actions_by_id["maskwright.edit.undo"].trigger()
    assert not data[3:9].any()
    w.actions_by_id["maskwright.edit.redo"].trigger()
    assert data[5].any()

    # hover shows HU
    axial.canvas.hovered.emit(24, 24)
    assert "HU" in w.status.value.text()

    out = tmp_path / "export" / "labels.nii.gz"
    out.parent.mkdir()
    w.ask_export_path = lambda fmt, volume: out  # type: ignore[method-assign]
    w.actions_by_id["maskwright.file.export_nifti"].trigger()
    wait_idle(qtbot, w)
    assert out.exists(), w.notifier.history
    from engine.io.masks import read_mask_nifti

    back = read_mask_nifti(out)
    np.testing.assert_array_equal(back, data)


def test_threshold_wand_on_ct_and_navigate(qtbot, window, tmp_path: Path) -> None:
    w = window
    _open_ct(qtbot, w, tmp_path)
    vv = w.volume_view
    w.class_panel.select_index(1)  # bone
    w.tools.set_tool("wand")
    w.options_panel.low.setValue(300)
    w.options_panel.high.setValue(3000)
    from tests.desktop.conftest import click

    click(vv.views[0].canvas, 24, 24)
    data = w.document.editor.data
    assert (data[6] == 2).sum() > 0 and (data[6] == 2).sum() < 300 and not data[5].any()
    w.tools.set_tool("navigate")
    click(vv.views[0].canvas, 10, 30)  # axial (y=10, x=30): coronal goes to y=10, sagittal to x=30
    assert vv.views[1].index == 10 and vv.views[2].index == 30


def test_folder_with_two_series_asks_which(qtbot, window, tmp_path: Path) -> None:
    w = window
    w.open_project(tmp_path / "proj", create=True)
    synthetic_ct(tmp_path / "a")
    synthetic_ct(tmp_path / "b", slices=5)
    both = tmp_path / "both"
    both.mkdir()
    shutil.move(str(tmp_path / "a" / "ct"), both / "one")
    shutil.move(str(tmp_path / "b" / "ct"), both / "two")
    asked = []

    def pick(series):
        asked.append(series)
        return [s for s in series if s.num_slices == 5]

    w.pick_series = pick  # type: ignore[method-assign]
    w.open_paths([both])
    wait_for(qtbot, lambda: asked)
    wait_idle(qtbot, w)
    assert len(asked[0]) == 2
    items = w.document.items()
    assert len(items) == 1 and items[0].shape == (5, 48, 48)


def _tiny_mcanet(path: Path, names: tuple[str, ...] = ("liver", "bone")) -> Path:
    from engine.medical.checkpoint import IntensityWindow, MCANetMeta, ModelClass, build_model, save_mcanet_checkpoint

    meta = MCANetMeta(variant="test", classes=tuple(ModelClass(k + 1, n, k + 1) for k, n in enumerate(names)),
                      modality="CT", window=IntensityWindow("ct", 40, 400), tile_size=(64, 64))
    save_mcanet_checkpoint(path, build_model(meta), meta)
    return path


def test_preannotate_a_volume_with_a_tiny_mcanet(qtbot, window, tmp_path: Path) -> None:
    w = window
    _open_ct(qtbot, w, tmp_path)
    ckpt = _tiny_mcanet(tmp_path / "tiny.safetensors")
    w.settings.set("device", "cpu")
    w.activate_checkpoint("volume", ckpt, "tiny-mcanet")
    item_id = w.document.record.id
    w.actions_by_id["maskwright.model.preannotate"].trigger()
    wait_for(qtbot, lambda: w.document.project.item(item_id).status == "predicted", timeout=240000)
    wait_idle(qtbot, w)
    v = w.document.project.latest_version(item_id)
    assert v.provenance.source == "model" and v.provenance.checkpoint == str(ckpt)
    data = w.document.editor.data
    assert data.shape == (12, 48, 48) and set(np.unique(data)) <= {0, 1, 2}
    heat = w.document.uncertainty_for(item_id)
    assert heat.shape == (12, 48, 48) and 0 <= float(heat.min()) and float(heat.max()) <= 1.0
    assert w.volume_view.views[0].canvas._heat is not None
    screenshot(w, "06-volume-preannotated")


def test_volume_model_errors_are_messages(qtbot, window, tmp_path: Path) -> None:
    w = window
    _open_ct(qtbot, w, tmp_path)
    w.settings.set("device", "cpu")
    w.activate_checkpoint("volume", tmp_path / "missing.safetensors", "gone")
    w.actions_by_id["maskwright.model.preannotate"].trigger()
    wait_idle(qtbot, w)
    assert "missing" in w.notifier.last_error
    ckpt = _tiny_mcanet(tmp_path / "kidney.safetensors", ("kidney",))
    w.activate_checkpoint("volume", ckpt, "kidney-model")
    w.actions_by_id["maskwright.model.preannotate"].trigger()
    wait_idle(qtbot, w)
    assert "kidney" in w.notifier.last_error and "Traceback" not in w.notifier.last_error


def test_export_dicom_seg_from_the_menu(qtbot, window, tmp_path: Path) -> None:
    import pydicom

    w = window
    _open_ct(qtbot, w, tmp_path)
    drag(w.volume_view.views[0].canvas, [(24, 24), (24, 26)])
    out = tmp_path / "seg.dcm"
    w.ask_export_path = lambda fmt, volume: out  # type: ignore[method-assign]
    w.actions_by_id["maskwright.file.export_dicom_seg"].trigger()
    wait_idle(qtbot, w)
    assert out.exists(), w.notifier.history
    ds = pydicom.dcmread(out)
    assert ds.Modality == "SEG" and ds.SegmentSequence[0].SegmentLabel == "liver"


def test_the_projects_active_volume_checkpoint_is_used(qtbot, window, tmp_path: Path) -> None:
    w = window
    _open_ct(qtbot, w, tmp_path)
    project = w.document.project
    first = project.add_checkpoint(_tiny_mcanet(tmp_path / "a.safetensors"), model="mcanet.test", active=True)
    assert w.model_config("volume")["checkpoint"] == str(first.path)
    second = project.add_checkpoint(_tiny_mcanet(tmp_path / "b.safetensors"), model="mcanet.test", active=True)
    assert w.model_config("volume")["checkpoint"] == str(second.path)  # the newest, without a restart
    project.set_active_checkpoint(first.id)  # a rollback
    assert w.model_config("volume")["checkpoint"] == str(first.path)
    assert w.model_config("volume")["model"] == "mcanet.test"


def test_threshold_the_whole_volume(qtbot, window, tmp_path: Path) -> None:
    w = window
    _open_ct(qtbot, w, tmp_path)
    w.class_panel.select_index(1)  # bone
    w.options_panel.low.setValue(300)
    w.options_panel.high.setValue(3000)
    w.actions_by_id["maskwright.edit.threshold_volume"].trigger()
    data = w.document.editor.data
    hu = w.document.source.array
    np.testing.assert_array_equal(data == 2, hu >= 300)
    assert w.document.undo_stack.count() == 1
    w.actions_by_id["maskwright.edit.undo"].trigger()
    assert not data.any()
