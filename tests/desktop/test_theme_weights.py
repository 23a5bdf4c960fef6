"""The application icon, View > Theme (remembered, applied at start-up), the weights folder setting
in pre-annotation, and missing-weights messages that point to the Models dialog."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.desktop.conftest import screenshot, wait_idle


@pytest.fixture
def system_look_after(qapp):  # noqa: ANN001, ANN201 - other tests expect the default look
    yield
    from desktop.theme import apply_theme

    apply_theme(qapp, "system")


def _icon_lightness(action) -> float:  # noqa: ANN001 - QAction
    """Mean lightness (0..255) of the opaque pixels of an action's icon."""
    image = action.icon().pixmap(24, 24).toImage()
    values = [image.pixelColor(x, y) for x in range(image.width()) for y in range(image.height())]
    opaque = [c.lightness() for c in values if c.alpha() > 200]
    assert opaque
    return sum(opaque) / len(opaque)


def test_create_app_sets_the_window_icon(qapp) -> None:  # noqa: ANN001
    from PySide6.QtGui import QIcon

    from desktop.app import create_app

    qapp.setWindowIcon(QIcon())
    assert create_app() is qapp
    assert not qapp.windowIcon().isNull()
    assert 16 in {s.width() for s in qapp.windowIcon().availableSizes()}


def test_theme_menu_applies_remembers_and_restores_at_start(qtbot, window, tmp_path: Path, qapp,
                                                           system_look_after) -> None:  # noqa: ANN001
    from desktop.main_window import MainWindow
    from desktop.settings import Settings

    w = window
    assert qapp.styleSheet() == "" and w.theme_actions["system"].isChecked()
    w.theme_actions["dark"].trigger()
    assert "Maskwright dark style" in qapp.styleSheet()
    assert Settings.load(tmp_path / "config").get("theme") == "dark"
    assert _icon_lightness(w.actions_by_id["maskwright.file.save"]) > 150  # drawn light on the dark theme
    w.open_project(tmp_path / "proj", create=True)
    w.document.add_classes("cat, dog")
    screenshot(w, "10-theme-dark")
    w.theme_actions["light"].trigger()
    assert "Maskwright light style" in qapp.styleSheet()
    assert _icon_lightness(w.actions_by_id["maskwright.file.save"]) < 100
    screenshot(w, "11-theme-light")

    from desktop.theme import apply_theme

    apply_theme(qapp, "system")  # a fresh start: the remembered theme is applied by the window
    again = MainWindow(Settings.load(tmp_path / "config"))
    qtbot.addWidget(again)
    assert "Maskwright light style" in qapp.styleSheet() and again.theme_actions["light"].isChecked()
    assert not again.windowIcon().isNull()
    again.theme_actions["system"].trigger()
    assert qapp.styleSheet() == ""
    assert Settings.load(tmp_path / "config").get("theme") == "system"


def test_the_weights_folder_setting_is_used_for_preannotation(qtbot, window, tmp_path: Path,
                                                             monkeypatch) -> None:  # noqa: ANN001
    from desktop.volume_predictor import VolumePredictor
    from engine.errors import WeightsError
    from engine.models.catalog import default_catalog
    from engine.models.weights import WeightsManager

    name = default_catalog().list()[0].name
    monkeypatch.setenv("MASKWRIGHT_CACHE_DIR", str(tmp_path / "env-cache"))
    mine = tmp_path / "my-weights"
    w = window
    w.settings.set("weights_root", str(mine))
    cfg = w.model_config("volume")
    assert cfg["weights_root"] == str(mine)
    cfg["model"] = name
    with pytest.raises(WeightsError) as missing:
        VolumePredictor(cfg)._checkpoint_path()
    assert "Model > Models" in str(missing.value) and str(mine) in str(missing.value)
    for root in (tmp_path / "env-cache", mine):  # the setting wins over MASKWRIGHT_CACHE_DIR
        slot = WeightsManager(default_catalog(), root).file_slot(name)
        slot.parent.mkdir(parents=True)
        slot.write_bytes(b"weights")
    assert VolumePredictor(cfg)._checkpoint_path() == WeightsManager(default_catalog(), mine).file_slot(name)
    w.settings.set("weights_root", None)  # no setting: weights.default_root() at call time
    cfg = dict(w.model_config("volume"), model=name)
    assert VolumePredictor(cfg)._checkpoint_path().is_relative_to(tmp_path / "env-cache")


def test_missing_weights_point_to_the_models_dialog(qtbot, window, tmp_path: Path) -> None:
    from desktop.notify import describe_error
    from engine.models.catalog import default_catalog
    from engine.models.weights import WeightsManager

    catalog = default_catalog()
    entry = catalog.list()[0]
    err = WeightsManager(catalog, tmp_path / "empty")._missing(entry)  # what ensure_local raises
    text = describe_error(err)
    assert "Model > Models… (Ctrl+M)" in text and "Download" in text and entry.name in text
    assert "maskwright models download" not in text

    w = window  # through the window: pre-annotating a volume without weights shows that message
    w.settings.set("weights_root", str(tmp_path / "empty"))
    w.settings.set("model.volume", {"model": entry.name})
    w.open_project(tmp_path / "proj", create=True)
    w.document.add_classes("liver")
    from tests.desktop.conftest import synthetic_ct, wait_for

    w.open_paths([synthetic_ct(tmp_path / "dicom", slices=4, size=16)])
    wait_for(qtbot, lambda: w.document.editor is not None)
    wait_idle(qtbot, w)
    w.actions_by_id["maskwright.model.preannotate"].trigger()
    wait_idle(qtbot, w)
    assert w.notifier.last_error is not None and "Model > Models…" in w.notifier.last_error
    assert w.notifier.box is not None and "press Download" in w.notifier.box.text()
