"""Opening things: projects (new, open, recent), photos, volumes, DICOM folders; items; recovery.

A mixin of :class:`~desktop.main_window.MainWindow`: file reading runs in workers, store writes
on the GUI thread when a worker returns.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QMimeData
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QFileDialog

from desktop.loading import LoadedItem, classify_paths, read_item_source
from desktop.saving import start_background_save
from engine.errors import UnsupportedFormatError
from engine.items import Photo, Volume
from engine.jobs import CancelToken, Progress, check_cancelled

if TYPE_CHECKING:
    from desktop.main_window import MainWindow as _Base
else:
    _Base = object

__all__ = ["OpenFlows", "thumbnail"]

_logger = logging.getLogger(__name__)


def thumbnail(item: Photo | Volume, size: int = 64) -> np.ndarray:
    """A small ``(h, w, 3)`` uint8 picture of an item (a volume's middle axial slice, auto-windowed)."""
    if isinstance(item, Photo):
        img = item.rgb
    else:
        plane = item.array[item.shape[0] // 2].astype(np.float32)
        lo, hi = np.percentile(plane, [1, 99]) if plane.size else (0.0, 1.0)
        grey = np.clip((plane - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
        img = np.repeat(grey[:, :, None], 3, axis=2)
    step = max(1, int(np.ceil(max(img.shape[:2]) / size)))
    return np.ascontiguousarray(img[::step, ::step])


def _qimage(rgb: np.ndarray) -> QImage:
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class OpenFlows(_Base):
    """Project and item opening for the main window."""

    # -- projects ----------------------------------------------------------------------------
    def new_project_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "New project: choose an empty folder")
        if folder:
            self.open_project(Path(folder), create=True)

    def open_project_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open project folder")
        if folder:
            self.open_project(Path(folder))

    def open_project(self, folder: Path, *, create: bool = False) -> None:
        """Open (or create) a project, remember it, and offer what a crash left unsaved."""
        self.document.open_project(Path(folder), create=create, name=Path(folder).name)
        self.settings.add_recent(Path(folder))
        self.settings.save()
        self.offer_recovery()
        items = self.document.items()
        if items:
            self.load_item(items[0].id)

    def open_sample(self, folder: Path | None = None) -> None:
        """Build the bundled sample project on first use (in a worker), then open it."""
        def build(progress: Progress, cancel: CancelToken) -> Path:
            from engine.sample import ensure_sample_project

            return ensure_sample_project(folder)

        self.jobs.submit("Preparing the sample project", build, on_done=lambda path: self.open_project(path))

    def offer_recovery(self) -> None:
        """Offer the journal's unsaved maps; accepted ones are saved as new versions."""
        d = self.document
        if d.journal is None or d.project is None:
            return
        entries = d.journal.entries()
        if not entries:
            return
        names = []
        for e in entries:
            try:
                names.append(d.project.item(e.item_id).name)
            except Exception:  # noqa: BLE001 - the item is gone: drop its entry
                d.journal.discard(e.item_id)
        if not names:
            return
        if self.ask(f"Maskwright stopped with unsaved edits on {len(names)} item(s): {', '.join(names[:5])}. "
                    "Recover them?"):
            from engine.store import Provenance

            for e in entries:
                d.project.save_annotation(e.item_id, d.journal.read(e), provenance=Provenance.from_person(),
                                          status="corrected", parent=e.base_version)
                d.journal.discard(e.item_id)
            self.notifier.info(f"Recovered unsaved edits on {len(entries)} item(s).")
            d.itemsChanged.emit()
        else:
            for e in entries:
                d.journal.discard(e.item_id)

    # -- adding sources ----------------------------------------------------------------------
    def add_files_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add photos or volumes", "",
                                                "Images and volumes (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.webp "
                                                "*.nii *.nii.gz *.nrrd *.mha *.mhd *.dcm);;All files (*)")
        if files:
            self.open_paths([Path(f) for f in files])

    def add_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of photos or a DICOM folder")
        if folder:
            self.open_paths([Path(folder)])

    def open_paths(self, paths: list[Path]) -> None:
        """Add photos, volume files and DICOM folders to the project (reading happens in workers)."""
        if self.document.project is None:
            raise UnsupportedFormatError("open or create a project first (File > New project)")
        target = self.document.project
        self.jobs.submit("Looking at the files", lambda p, c: classify_paths(list(paths)),
                         on_done=lambda sources: self._add_sources(sources) if self.document.project is target
                         else None)

    def _add_sources(self, sources) -> None:  # noqa: ANN001 - desktop.loading.Sources
        for path in sources.unsupported:
            self.notifier.error(UnsupportedFormatError("not a photo, volume or DICOM file", path))
        for path in sources.photos:
            self._submit_add(path, "photo")
        for path in sources.volume_files:
            self._submit_add(path, "volume")
        for folder in sources.dicom_folders:
            target = self.document.project
            self.jobs.submit(f"Scanning {folder.name}", lambda p, c, f=folder: _scan(f, p, c),
                             on_done=lambda result, t=target: self._pick_series(result) if self.document.project is t
                             else None)

    def _submit_add(self, path: Path, kind: str, series: object = None) -> None:
        def read(progress: Progress, cancel: CancelToken) -> tuple[Photo | Volume, np.ndarray, str]:
            if kind == "photo":
                from engine.io.photos import read_photo

                item: Photo | Volume = read_photo(path)
                key = ""
            elif series is not None:
                from engine.io.dicom import load_series

                item = load_series(series, progress=progress, cancel=cancel)  # type: ignore[arg-type]
                key = series.key  # type: ignore[attr-defined]
            else:
                from engine.io.volumes import read_volume

                item, key = read_volume(path, progress=progress, cancel=cancel), ""
            return item, thumbnail(item), key

        target = self.document.project
        self.jobs.submit(f"Reading {path.name}", read, on_done=lambda result: self._added(result, target))

    def _added(self, result: tuple[Photo | Volume, np.ndarray, str], target: object) -> None:
        item, thumb, key = result
        project = self.document.project
        if project is None or project is not target:  # another project was opened meanwhile
            self.notifier.info(f"{getattr(item, 'source', '')} was read after its project was closed; not added.")
            return
        record = project.add_photo(item) if isinstance(item, Photo) else project.add_volume(item, series_key=key)
        self.browser.set_thumbnail(record.id, _qimage(thumb))
        self.document.itemsChanged.emit()
        if self.document.record is None:
            self.load_item(record.id, preloaded=item)

    def pick_series(self, series: list) -> list:  # noqa: ANN001 - SeriesInfo list; tests replace this
        """Ask which series to add when a folder holds several."""
        from desktop.series_dialog import SeriesPicker

        dialog = SeriesPicker(series, self)
        return dialog.chosen() if dialog.exec() else []

    def _pick_series(self, result: tuple[Path, list]) -> None:
        folder, series = result
        if not series:
            self.notifier.error(UnsupportedFormatError("no DICOM image series found", folder))
            return
        chosen = series if len(series) == 1 else self.pick_series(series)
        for info in chosen:
            self._submit_add(folder, "volume", info)

    # -- items -------------------------------------------------------------------------------
    def load_item(self, item_id: int, *, preloaded: Photo | Volume | None = None) -> None:
        """Show an item: the current one is saved first; reading happens in a worker."""
        d = self.document
        if d.project is None:
            return
        start_background_save(d, self.jobs)  # the read below runs meanwhile; show_item waits for it
        project = d.project
        record = project.item(item_id)

        need_thumb = not self.browser.has_thumbnail(item_id)

        def read(progress: Progress, cancel: CancelToken) -> tuple[LoadedItem, np.ndarray | None]:
            source = preloaded if preloaded is not None else read_item_source(record, progress=progress,
                                                                              cancel=cancel)
            check_cancelled(cancel)
            latest = project.latest_version(item_id)
            data = project.load_annotation(item_id).data if latest is not None else None
            prediction = None
            model_versions = [v for v in project.versions(item_id) if v.provenance.source == "model"]
            if model_versions:
                prediction = project.load_annotation(item_id, model_versions[-1].version).data
            loaded = LoadedItem(record, source, data, latest.version if latest else None, prediction)
            return loaded, thumbnail(source) if need_thumb else None

        def done(result: tuple[LoadedItem, np.ndarray | None]) -> None:
            loaded, thumb = result
            if d.project is not project:  # another project was opened meanwhile
                return
            if thumb is not None:
                self.browser.set_thumbnail(item_id, _qimage(thumb))
            d.show_item(loaded)

        self.jobs.submit(f"Opening {record.name}", read, on_done=done)

    def step_item(self, delta: int) -> None:
        ids = self.browser.visible_ids()
        if not ids:
            return
        cur = self.document.record.id if self.document.record is not None else None
        k = ids.index(cur) + delta if cur in ids else 0
        if 0 <= k < len(ids):
            self.load_item(ids[k])

    def request_thumbnails(self) -> None:
        """Make thumbnails of photos that lack one (volumes get theirs when added)."""
        missing = [r for r in self.document.items() if r.kind == "photo" and not self.browser.has_thumbnail(r.id)]
        if not missing or getattr(self, "_thumbs_running", False):
            return
        self._thumbs_running = True

        def make(progress: Progress, cancel: CancelToken) -> list[tuple[int, np.ndarray]]:
            from PIL import Image

            out = []
            for k, r in enumerate(missing):
                check_cancelled(cancel)
                progress(k, len(missing), r.name)
                try:
                    with Image.open(r.source) as im:
                        im.draft("RGB", (128, 128))
                        im.thumbnail((64, 64))
                        out.append((r.id, np.ascontiguousarray(np.asarray(im.convert("RGB")))))
                except OSError as err:
                    _logger.info("no thumbnail for %s: %s", r.source, err)
            return out

        def done(thumbs: list[tuple[int, np.ndarray]]) -> None:
            self._thumbs_running = False
            for item_id, rgb in thumbs:
                self.browser.set_thumbnail(item_id, _qimage(rgb))

        self.jobs.submit("Thumbnails", make, on_done=done,
                         on_error=lambda _e: setattr(self, "_thumbs_running", False))

    # -- drag and drop -----------------------------------------------------------------------
    def handle_drag_enter(self, event: QDragEnterEvent) -> None:
        if _paths(event.mimeData()):
            event.acceptProposedAction()

    def handle_drop(self, event: QDropEvent) -> None:
        paths = _paths(event.mimeData())
        if not paths:
            return
        event.acceptProposedAction()
        if len(paths) == 1 and (paths[0] / "project.sqlite").is_file():
            self.run_action(lambda w: w.open_project(paths[0]))
        else:
            self.run_action(lambda w: w.open_paths(paths))


def _paths(mime: QMimeData) -> list[Path]:
    return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []


def _scan(folder: Path, progress: Progress, cancel: CancelToken) -> tuple[Path, list]:
    from engine.io.dicom_scan import scan_dicom

    return folder, scan_dicom(folder, progress=progress, cancel=cancel)
