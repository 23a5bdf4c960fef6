"""Start a tiny real training from the dialog, watch it finish, see the new checkpoint active and used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.desktop.conftest import drag, screenshot, synthetic_ct, wait_for, wait_idle


@pytest.mark.slow
def test_tiny_mcanet_training_from_the_dialog(qtbot, window, tmp_path: Path) -> None:
    w = window
    w.settings.set("device", "cpu")
    w.open_project(tmp_path / "proj", create=True)
    w.document.add_classes("liver")
    synthetic_ct(tmp_path / "a", slices=6, size=32)
    synthetic_ct(tmp_path / "b", slices=6, size=32)
    w.open_paths([tmp_path / "a", tmp_path / "b"])
    wait_for(qtbot, lambda: len(w.document.items()) == 2 and w.document.editor is not None)
    wait_idle(qtbot, w)
    for item in w.document.items():  # annotate the bright core on every slice of both volumes
        w.load_item(item.id)
        wait_for(qtbot, lambda item=item: w.document.record is not None and w.document.record.id == item.id)
        wait_idle(qtbot, w)
        w.options_panel.size.setValue(6)
        axial = w.volume_view.views[0]
        for k in range(6):
            axial.set_index(k)
            drag(axial.canvas, [(16, 16), (16, 17)])
        w.actions_by_id["maskwright.edit.mark_corrected"].trigger()
        wait_idle(qtbot, w)  # unsaved edits are saved (with the status) in a worker
    assert all(r.status == "corrected" for r in w.document.items())

    w.actions_by_id["maskwright.model.train"].trigger()
    d = w.training
    d.recipe.setCurrentText("mcanet")
    d.variant.setCurrentText("test")
    d.steps.setValue(4)
    d.minutes.setValue(5)
    d.device.setCurrentText("cpu")
    d.extra.setText("--crop 32 --batch-size 2 --threads 1 --val-every 2 --val-fraction 0.5 --init scratch --log-every 1")
    with qtbot.waitSignal(d.finished_training, timeout=300000) as blocker:
        d.start_button.click()
    ok, checkpoint = blocker.args
    assert ok, (d.log.toPlainText()[-3000:], w.notifier.history)
    kinds = [e["event"] for e in d.events]
    assert kinds[0] == "start" and "step" in kinds and "val" in kinds and kinds[-1] == "done"
    assert len(d.loss_plot.series["loss"]) == 4
    screenshot(d, "08-training-done")
    active = w.document.project.active_checkpoint("mcanet.test")
    assert active is not None and Path(active.path).resolve() == Path(checkpoint).resolve()
    assert w.model_config("volume")["checkpoint"] == str(active.path)

    # the next pre-annotation uses it, without a restart
    item_id = w.document.record.id
    w.actions_by_id["maskwright.model.preannotate"].trigger()
    wait_for(qtbot, lambda: w.document.project.item(item_id).status == "predicted", timeout=240000)
    wait_idle(qtbot, w)
    v = w.document.project.latest_version(item_id)
    assert v.provenance.model == "mcanet.test" and Path(v.provenance.checkpoint).resolve() == Path(checkpoint).resolve()
    assert set(np.unique(w.document.editor.data)) <= {0, 1}
