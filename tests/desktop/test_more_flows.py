"""More flows: NIfTI files, drag and drop, status filter, photo exports, autosave, start-up recovery, models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent

from tests.desktop.conftest import drag, open_sample_photo, sample_photo, wait_for, wait_idle


def _drop(widget, paths: list[Path]) -> None:
    """Deliver a drop to the window's handler (offscreen Qt routes no synthetic drag events)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    ev = QDropEvent(QPoint(10, 10).toPointF(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                    Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(ev)


def test_open_nifti_by_drag_and_drop(qtbot, window, tmp_path: Path) -> None:
    import SimpleITK as sitk

    w = window
    w.open_project(tmp_path / "proj", create=True)
    arr = np.zeros((6, 20, 30), np.int16)
    arr[2:4, 5:15, 10:20] = 100
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((0.5, 0.5, 2.0))
    path = tmp_path / "scan.nii.gz"
    sitk.WriteImage(image, str(path))
    _drop(w, [path])
    wait_for(qtbot, lambda: w.document.editor is not None)
    wait_idle(qtbot, w)
    assert w.stack.currentWidget() is w.volume_view
    assert w.document.source.shape == (6, 20, 30)
    assert w.volume_view.views[0].canvas.aspect == 1.0 and w.volume_view.views[1].canvas.aspect == 4.0
    assert w.browser.has_thumbnail(w.document.record.id)


def test_drop_a_project_folder_opens_it(qtbot, window, tmp_path: Path) -> None:
    from engine.store import Project

    Project.create(tmp_path / "other", name="other").close()
    _drop(window, [tmp_path / "other"])
    assert window.document.project is not None and window.document.project.name == "other"


def test_status_filter_and_photo_export(qtbot, window, tmp_path: Path) -> None:
    w = window
    w.open_project(tmp_path / "proj", create=True)
    w.document.add_classes("cat, plate")
    w.open_paths([sample_photo(tmp_path, "chelsea"), sample_photo(tmp_path, "coffee")])
    wait_for(qtbot, lambda: len(w.document.items()) == 2 and w.document.editor is not None)
    wait_idle(qtbot, w)
    drag(w.photo_view.canvas, [(100, 100), (100, 160)])
    w.actions_by_id["maskwright.edit.mark_approved"].trigger()
    qtbot.waitUntil(lambda: "approved" in w.browser.list.item(0).text() + w.browser.list.item(1).text())
    idx = w.browser.filter.findData("approved")
    w.browser.filter.setCurrentIndex(idx)
    assert w.browser.list.count() == 1
    w.browser.filter.setCurrentIndex(w.browser.filter.findData("new"))
    assert w.browser.list.count() == 1
    w.browser.filter.setCurrentIndex(0)
    assert w.browser.list.count() == 2

    out = tmp_path / "coco"
    w.ask_export_path = lambda fmt, volume: out  # type: ignore[method-assign]
    w.actions_by_id["maskwright.file.export_coco"].trigger()
    wait_idle(qtbot, w)
    files = sorted(p.name for p in out.rglob("*.json"))
    assert files, w.notifier.history
    coco = json.loads(next(out.rglob("*.json")).read_text())
    assert len(coco["images"]) == 2 and len(coco["annotations"]) == 1
    assert {c["name"] for c in coco["categories"]} >= {"cat", "plate"}
    # a volume format without a volume open says so
    w.run_action(lambda win: win.export_dialog("nifti"))
    assert "volume" in w.notifier.last_error


def test_autosave_to_the_store_keeps_status(qtbot, window, tmp_path: Path) -> None:
    w = window
    open_sample_photo(qtbot, w, tmp_path, "cat")
    project = w.document.project
    item_id = w.document.record.id
    project.set_status(item_id, "predicted")
    w.document.record = project.item(item_id)
    drag(w.photo_view.canvas, [(30, 30), (30, 60)])
    w.autosave_to_store()
    wait_idle(qtbot, w)  # the save runs in a worker
    assert not w.document.modified
    assert project.item(item_id).status == "predicted"
    np.testing.assert_array_equal(project.load_annotation(item_id).data, w.document.editor.data)
    w.autosave_to_store()  # nothing new: no new version
    wait_idle(qtbot, w)
    assert len(project.versions(item_id)) == 1


def test_next_start_offers_the_project_with_unsaved_edits(qtbot, tmp_path: Path) -> None:
    from desktop.main_window import MainWindow
    from desktop.recovery import Journal, pending_projects
    from desktop.settings import Settings
    from engine.store import Project

    with Project.create(tmp_path / "proj") as project:
        project.add_class("cat")
        item = project.add_photo(sample_photo(tmp_path))
    settings = Settings.load(tmp_path / "cfg")
    unsaved = np.zeros((300, 451), np.uint8)
    unsaved[10:20, 10:20] = 1
    Journal(settings.recovery_dir, tmp_path / "proj").write(item.id, unsaved, None)
    assert pending_projects(settings.recovery_dir) == [(tmp_path / "proj").resolve()]
    w = MainWindow(settings)
    qtbot.addWidget(w)
    asked = []
    w.ask = lambda text: asked.append(text) or True  # type: ignore[method-assign]
    w.check_recovery_at_start()
    wait_for(qtbot, lambda: w.document.editor is not None)
    wait_idle(qtbot, w)
    assert len(asked) == 2  # open the project? recover the item?
    np.testing.assert_array_equal(w.document.editor.data, unsaved)
    assert pending_projects(settings.recovery_dir) == []
    w.close()


def test_models_dialog_lists_the_catalog_and_shows_the_device(qtbot, window, tmp_path: Path) -> None:
    from desktop.models_dialog import ModelsDialog

    w = window
    dialog = ModelsDialog(w, weights_root=tmp_path / "weights")
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == len(dialog.catalog.list()) > 0
    assert "Models run on:" in dialog.device_label.text() and "CPU" in dialog.device_label.text()
    assert all(dialog.table.item(r, 4).text() == "no" for r in range(dialog.table.rowCount()))
    dialog.table.selectRow(0)
    name = dialog.selected_name()
    dialog.use_selected()
    kind = dialog.catalog.get(name).kind
    assert w.settings.get(f"model.{kind}")["model"] == name
    assert dialog.table.item(0, 5).text() == "✔"
    dialog.device.setCurrentText("cuda:7")
    assert "unavailable" in dialog.device_label.text()
    wait_idle(qtbot, w)
    assert w.status.device.text().startswith("Device:")


def test_every_photo_format_exports_from_the_menu(qtbot, window, tmp_path: Path) -> None:
    w = window
    open_sample_photo(qtbot, w, tmp_path, "cat")
    drag(w.photo_view.canvas, [(100, 100), (100, 160)])
    for key in ("png", "voc", "yolo"):
        out = tmp_path / key
        w.ask_export_path = lambda fmt, volume, out=out: out  # type: ignore[method-assign]
        w.actions_by_id[f"maskwright.file.export_{key}"].trigger()
        wait_idle(qtbot, w)
        assert w.last_export.format == key and w.last_export.files, w.notifier.history
        assert all(Path(f).exists() for f in w.last_export.files)


def test_sample_project_opens_from_the_menu(qtbot, window, tmp_path: Path) -> None:
    w = window
    w.open_sample(tmp_path / "sample")
    wait_for(qtbot, lambda: w.document.project is not None and w.document.editor is not None, timeout=120000)
    wait_idle(qtbot, w)
    kinds = sorted(r.kind for r in w.document.items())
    assert kinds == ["photo", "photo", "photo", "volume"]
    assert w.document.labels.find("liver") is not None
    from tests.desktop.conftest import screenshot

    screenshot(w, "07-sample-project")


def test_models_dialog_downloads_with_progress_and_imports(qtbot, window, tmp_path: Path) -> None:
    import hashlib
    import http.server
    import threading

    from desktop.models_dialog import ModelsDialog
    from engine.models.catalog import Catalog, ModelEntry, UrlSource
    from engine.models.weights import WeightsManager

    served = tmp_path / "served"
    served.mkdir()
    from safetensors.numpy import save_file

    save_file({"w": np.arange(300_000, dtype=np.float32)}, str(served / "w.safetensors"))
    data = (served / "w.safetensors").read_bytes()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        catalog = Catalog()
        url = f"http://127.0.0.1:{httpd.server_address[1]}/w.safetensors"
        catalog.register(ModelEntry(name="tiny.remote", kind="photo", architecture="open_clip",
                                    source=UrlSource(url, hashlib.sha256(data).hexdigest(), "w.safetensors")))
        catalog.register(ModelEntry(name="tiny.other", kind="photo", architecture="open_clip",
                                    source=UrlSource(url, hashlib.sha256(data).hexdigest(), "o.safetensors")))
        w = window
        dialog = ModelsDialog(w, weights=WeightsManager(catalog, tmp_path / "cache", offline=False))
        qtbot.addWidget(dialog)
        progress: list[tuple] = []
        w.jobs.progressed.connect(lambda job: progress.append(job.progress))
        dialog.table.selectRow(1)
        assert dialog.selected_name() == "tiny.remote"
        dialog.buttons["Download"].click()
        wait_idle(qtbot, w)
        assert dialog.table.item(1, 4).text() == "yes", w.notifier.history
        assert progress and progress[-1][0] == len(data)
        # import the same file as the other entry's weights (offline), then remove it
        dialog.table.selectRow(0)
        dialog.import_file(served / "w.safetensors", "tiny.other")
        wait_idle(qtbot, w)
        assert dialog.table.item(0, 4).text() == "yes", w.notifier.history
        dialog.buttons["Remove"].click()
        assert dialog.table.item(0, 4).text() == "no"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_results_for_a_closed_project_are_not_stored_elsewhere(qtbot, window, tmp_path: Path) -> None:
    import threading

    w = window
    w.open_project(tmp_path / "a", create=True)
    gate = threading.Event()
    from engine.io import photos

    real = photos.read_photo

    def slow_read(path, **kwargs):
        gate.wait(30)
        return real(path, **kwargs)

    photos.read_photo = slow_read
    try:
        w.open_paths([sample_photo(tmp_path)])
        qtbot.waitUntil(lambda: any(j.title.startswith("Reading") for j in w.jobs.jobs))
        w.open_project(tmp_path / "b", create=True)  # switch while the photo is being read
        gate.set()
        wait_idle(qtbot, w)
    finally:
        photos.read_photo = real
    assert w.document.project.name == "b" and w.document.items() == []
    assert "not added" in w.notifier.history[-1][1]
