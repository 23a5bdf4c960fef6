"""The main window: assembles the canvas views, docks, menus and tool bar; owns close/autosave.

The window holds no editing logic: actions (``desktop.actions``) call its small methods, which
call the :class:`~desktop.document.Document` (store, editor, undo stack) or start workers.
Opening files and model work live in the two flow mixins.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QMessageBox, QStackedWidget, QWidget

from desktop.actions import all_actions, build_actions
from desktop.browser import ProjectBrowser
from desktop.canvas import Canvas
from desktop.class_panel import ClassPanel
from desktop.document import Document
from desktop.flows_model import ModelFlows
from desktop.flows_open import OpenFlows
from desktop.job_panel import JobPanel
from desktop.notify import Notifier
from desktop.overlay import make_lut
from desktop.photo_view import PhotoView
from desktop.settings import Settings
from desktop.saving import start_background_save, wait_for_save
from desktop.status_bar import StatusBar
from desktop.theme import build_theme_menu
from desktop.tool_controller import ToolController
from desktop.tool_options import ToolOptionsPanel
from desktop.volume_view import VolumeView
from desktop.workers import JobManager
from engine.items import Photo, Volume

__all__ = ["MainWindow"]

_logger = logging.getLogger(__name__)

AUTOSAVE_MS = 15000  # recovery journal
STORE_AUTOSAVE_MS = 120000  # a new version in the project store


class MainWindow(OpenFlows, ModelFlows, QMainWindow):
    """Maskwright's window. ``settings`` decides where settings and the recovery journal live."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("maskwrightMain")
        self.settings = settings
        self.notifier = Notifier(self)
        self.jobs = JobManager(lambda err, ctx: self.notifier.error(err, context=ctx), self)
        self.document = Document(settings.recovery_dir, self)
        self.tools = ToolController(self.document, self)
        self.photo_view = PhotoView(self.tools, self)
        self.volume_view = VolumeView(self.tools, self)
        self.welcome = QLabel("Open or create a project (File menu), then add photos or a DICOM folder.\n"
                              "You can also drop files here.", self)
        self.welcome.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack = QStackedWidget(self)
        for w in (self.welcome, self.photo_view, self.volume_view):
            self.stack.addWidget(w)
        self.setCentralWidget(self.stack)
        self.browser = ProjectBrowser(self)
        self.class_panel = ClassPanel(self)
        self.options_panel = ToolOptionsPanel(self.tools.options, self)
        self.job_panel = JobPanel(self.jobs, self)
        self._dock("Project", self.browser, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock("Classes", self.class_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("Tool options", self.options_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("Jobs", self.job_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.status = StatusBar(self)
        self.setStatusBar(self.status)
        self.actions_by_id = build_actions(self, all_actions(), settings.shortcuts, self)
        self._build_menus()
        self._wire()
        self.autosave = QTimer(self)
        self.autosave.setInterval(AUTOSAVE_MS)
        self.autosave.timeout.connect(self.autosave_now)
        self.autosave.start()
        self.store_autosave = QTimer(self)
        self.store_autosave.setInterval(int(settings.get("autosave_store_ms", STORE_AUTOSAVE_MS)))
        self.store_autosave.timeout.connect(self.autosave_to_store)
        self.store_autosave.start()
        self.setAcceptDrops(True)
        size = settings.get("geometry", [1280, 820])
        self.resize(int(size[0]), int(size[1]))
        self.init_model_flows()
        self._refresh_title()
        self.tools.set_tool("brush")

    # -- assembly ----------------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock{title.replace(' ', '')}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_menus(self) -> None:
        menus: dict[str, object] = {}
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("mainToolBar")
        groups: dict[str, QActionGroup] = {}
        for action in all_actions():
            qa = self.actions_by_id[action.id]
            if action.canvas_only:
                qa.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                self.stack.addAction(qa)
            else:
                self.addAction(qa)  # shortcuts work even when the menu bar is hidden
            if action.menu:
                if action.menu not in menus:
                    menus[action.menu] = self.menuBar().addMenu(f"&{action.menu}")
                menus[action.menu].addAction(qa)  # type: ignore[attr-defined]
            if action.group:
                groups.setdefault(action.group, QActionGroup(self)).addAction(qa)
            if action.toolbar:
                toolbar.addAction(qa)
        self.recent_menu = menus["File"].addMenu("Recent projects")  # type: ignore[attr-defined]
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        build_theme_menu(self, menus["View"])  # type: ignore[arg-type]

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent:
            qa = self.recent_menu.addAction(path)
            qa.triggered.connect(lambda _=False, p=path: self.run_action(lambda w: w.open_project(Path(p))))

    def _wire(self) -> None:
        d = self.document
        d.projectChanged.connect(self._refresh_title)
        self._items_timer = QTimer(self)  # many items added at once refresh the browser once
        self._items_timer.setSingleShot(True)
        self._items_timer.setInterval(0)
        self._items_timer.timeout.connect(self.refresh_items)
        d.itemsChanged.connect(self._items_timer.start)
        d.itemChanged.connect(self._show_item)
        d.labelsChanged.connect(self._refresh_labels)
        d.edited.connect(self._on_edited)
        d.undo_stack.cleanChanged.connect(lambda _clean: self._refresh_title())
        d.undo_stack.indexChanged.connect(lambda _i: self._refresh_title())
        self.notifier.message.connect(self.status.showMessage)
        self.browser.activated.connect(lambda item_id: self.run_action(lambda w: w.load_item(item_id)))
        cp = self.class_panel
        cp.addRequested.connect(lambda text: self.run_action(lambda w: w.document.add_classes(text)))
        cp.activeChanged.connect(self._set_active_class)
        cp.visibilityChanged.connect(lambda _hidden: self._refresh_lut())
        cp.renameRequested.connect(lambda cid, n: self.run_action(lambda w: w.document.update_class(cid, name=n)))
        cp.recolourRequested.connect(lambda cid, c: self.run_action(lambda w: w.document.update_class(cid, color=c)))
        cp.mergeRequested.connect(lambda cid, into: self.run_action(lambda w: w.document.delete_class(cid, merge_into=into)))
        cp.deleteRequested.connect(lambda cid: self.run_action(lambda w: w.document.delete_class(cid)))
        op = self.options_panel
        op.opacityChanged.connect(self._set_opacity)
        op.outlineChanged.connect(self._set_outline)
        op.uncertaintyToggled.connect(lambda _on: self._show_heat())
        op.optionsChanged.connect(self._sync_brush_cursor)
        self.tools.toolChanged.connect(self._on_tool)
        self.tools.failed.connect(lambda err: self.notifier.error(err, context="Editing"))
        self.tools.needClass.connect(lambda: self.notifier.info("Type a class name in the Classes panel first."))
        self.photo_view.cursorInfo.connect(self._on_cursor)
        self.volume_view.cursorInfo.connect(self._on_cursor)

    # -- helpers the actions call ------------------------------------------------------------
    def run_action(self, callback: Callable[[MainWindow], object]) -> object:
        """Run an action; any error goes to the notifier (a message, never a traceback)."""
        try:
            return callback(self)
        except Exception as err:  # noqa: BLE001 - the one place user actions fail softly
            self.notifier.error(err)
            return None

    def ask(self, text: str) -> bool:
        """Ask the person a yes/no question (tests replace this method)."""
        return QMessageBox.question(self, "Maskwright", text) == QMessageBox.StandardButton.Yes

    @property
    def canvases(self) -> list[Canvas]:
        if self.stack.currentWidget() is self.photo_view:
            return self.photo_view.canvases
        if self.stack.currentWidget() is self.volume_view:
            return self.volume_view.canvases
        return []

    def for_canvases(self, fn: Callable[[Canvas], object]) -> None:
        for c in self.canvases:
            fn(c)

    def zoom(self, factor: float) -> None:
        for c in self.canvases:
            c.zoom_at(c.rect().center().toPointF(), factor)

    def scroll_slice(self, steps: int) -> None:
        """Scroll the view that has focus (the axial one otherwise)."""
        if self.stack.currentWidget() is self.volume_view:
            focus = next((v.axis for v in self.volume_view.views if v.canvas.hasFocus()), 0)
            self.volume_view.scroll(focus, steps)

    def close_polygon(self) -> None:
        view = self.volume_view.views[0] if self.stack.currentWidget() is self.volume_view else None
        canvas = self.tools._polygon_canvas  # noqa: SLF001 - the canvas the polygon was drawn on
        if view is not None and canvas is not None:
            view = next((v for v in self.volume_view.views if v.canvas is canvas), view)
        self.tools.close_polygon(view.plane if view is not None else self.photo_view.plane)

    # -- reactions ---------------------------------------------------------------------------
    def _refresh_title(self) -> None:
        d = self.document
        name = d.project.name if d.project is not None else "no project"
        item = f" — {d.record.name}" if d.record is not None else ""
        self.setWindowTitle(f"Maskwright — {name}{item}{' *' if d.modified else ''}")
        self.status.show_modified(d.modified)
        self.actions_by_id["maskwright.edit.undo"].setEnabled(d.undo_stack.canUndo())
        self.actions_by_id["maskwright.edit.redo"].setEnabled(d.undo_stack.canRedo())

    def refresh_items(self) -> None:
        current = self.document.record.id if self.document.record is not None else None
        self.browser.set_items(self.document.items(), current=current)
        self.request_thumbnails()
        self._refresh_title()

    def _refresh_labels(self) -> None:
        self.class_panel.set_labels(self.document.labels, self.document.active_class)
        self._refresh_lut()

    def _lut(self):  # noqa: ANN202 - numpy LUT
        return make_lut(self.document.labels, self.class_panel.hidden)

    def _refresh_lut(self) -> None:
        lut = self._lut()
        for c in self.photo_view.canvases + self.volume_view.canvases:
            if c.overlay is not None:
                c.overlay.set_lut(lut)
                c.update()

    def _set_active_class(self, class_id: int) -> None:
        self.document.active_class = class_id

    def _set_opacity(self, value: float) -> None:
        for c in self.photo_view.canvases + self.volume_view.canvases:
            c.opacity = value
            c.update()

    def _set_outline(self, on: bool) -> None:
        for c in self.photo_view.canvases + self.volume_view.canvases:
            if c.overlay is not None:
                c.overlay.set_outline(on)
                c.update()

    def _on_tool(self, name: str) -> None:
        qa = self.actions_by_id.get(f"maskwright.tools.{name}")
        if qa is not None:
            qa.setChecked(True)
        for c in self.photo_view.canvases + self.volume_view.canvases:
            c.pan_with_left = False
        self._sync_brush_cursor()

    def _sync_brush_cursor(self) -> None:
        r = self.tools.options.radius if self.tools.tool in ("brush", "eraser") else 0.0
        for c in self.photo_view.canvases + self.volume_view.canvases:
            c.brush_radius = r

    def _on_cursor(self, position: str, value: str, class_id: int) -> None:
        self.status.show_cursor(position, value, class_id, self.document.labels)

    def _on_edited(self, keys: tuple) -> None:
        view = self.stack.currentWidget()
        if view is self.photo_view:
            self.photo_view.on_edited(keys)
        elif view is self.volume_view:
            self.volume_view.on_edited(keys)

    def _show_item(self) -> None:
        d = self.document
        self.tools.cancel()
        outline = self.options_panel.outline.isChecked()
        if d.source is None or d.editor is None:
            self.photo_view.clear()
            self.volume_view.clear()
            self.stack.setCurrentWidget(self.welcome)
        elif isinstance(d.source, Photo):
            self.photo_view.show_photo(d.source, d.editor.data, self._lut(), outline=outline)
            self.stack.setCurrentWidget(self.photo_view)
        elif isinstance(d.source, Volume):
            self.volume_view.show_volume(d.source, d.editor.data, self._lut(), outline=outline)
            self.stack.setCurrentWidget(self.volume_view)
        self._set_opacity(self.options_panel.opacity.value() / 100.0)
        self._sync_brush_cursor()
        self._show_heat()
        if d.record is not None:
            self.browser.select(d.record.id)
        self._refresh_title()

    def _show_heat(self) -> None:
        d = self.document
        heat = d.uncertainty_for(d.record.id) if d.record is not None else None
        if not self.options_panel.uncertainty.isChecked():
            heat = None
        if isinstance(d.source, Photo):
            self.photo_view.set_heat(heat)
        elif isinstance(d.source, Volume):
            self.volume_view.set_heat(heat)

    # -- saving, autosave, closing -----------------------------------------------------------
    def save(self) -> None:
        """Save the shown item in a worker (the job panel shows it); editing goes on meanwhile."""
        start_background_save(self.document, self.jobs, on_saved=lambda: self.notifier.info("Saved."))

    def autosave_now(self) -> None:
        """Write unsaved edits to the recovery journal (errors are shown, never raised)."""
        try:
            self.document.autosave_journal()
        except Exception as err:  # noqa: BLE001 - autosave trouble is shown, editing goes on
            self.notifier.error(err, context="Autosave")

    def autosave_to_store(self) -> None:
        """Save unsaved edits as a new version (status kept); errors are shown, the journal keeps the edits."""
        if self.tools._stroke_open:  # noqa: SLF001 - never save half a stroke
            return
        d = self.document
        if not d.modified or d.record is None or d.pending_save is not None:
            return
        try:  # a background save that keeps the item's status ("new" becomes "corrected")
            start_background_save(d, self.jobs, status=d.record.status if d.record.status != "new" else "corrected",
                                  on_saved=lambda: self.notifier.info("Autosaved.", 2000))
        except Exception as err:  # noqa: BLE001
            self.autosave_now()
            self.notifier.error(err, context="Autosave")

    def check_recovery_at_start(self) -> None:
        """At start-up: offer to open a project that a crash left with unsaved edits."""
        from desktop.recovery import pending_projects

        for project in pending_projects(self.settings.recovery_dir):
            if self.ask(f"Maskwright stopped with unsaved edits in {project}. Open it to recover them?"):
                self.open_project(project)
                return

    def mark(self, status: str) -> None:
        """Mark the shown item; unsaved edits are saved with that status in a worker."""
        d = self.document
        if d.modified and d.pending_save is None:
            start_background_save(d, self.jobs, status=status, on_saved=lambda: self.notifier.info(f"Marked {status}."))
            return
        d.set_status(status)  # a status change only (or after the running save): one small SQL update
        self.notifier.info(f"Marked {status}.")

    def close_project(self) -> None:
        self.document.close_project()
        self._refresh_title()

    # Qt virtuals must be defined on this class (PySide does not see them on the mixins)
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        self.handle_drag_enter(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt API
        self.handle_drop(event)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        """Save (after a background save still running), cancel and join workers, stop training."""
        if self.document.pending_save is not None:
            self.notifier.info("Finishing the save before closing…", 0)
            self.status.repaint()  # the note shows although the GUI thread now waits for the disk
            wait_for_save(self.document)
        try:
            self.document.save()
        except Exception as err:  # noqa: BLE001 - keep the journal, tell the person, still close
            self.autosave_now()
            self.notifier.error(err, context="Saving before closing (your edits are kept for recovery)")
        self.autosave.stop()
        self.store_autosave.stop()
        self.stop_model_flows()
        self.jobs.shutdown()
        try:
            if self.document.project is not None:
                self.document.project.close()
                self.document.project = None
        except Exception as err:  # noqa: BLE001
            _logger.warning("closing the project: %s", err)
        self.settings.set("geometry", [self.width(), self.height()])
        self.settings.save()
        self.document.undo_stack.blockSignals(True)  # its teardown must not call back into dead widgets
        self.document.blockSignals(True)
        super().closeEvent(event)
