"""The application icon and the light/dark/system themes (``resources/icons``, ``resources/styles``).

The theme is the settings' ``"theme"`` (``"light"``, ``"dark"`` or ``"system"``, the default),
chosen in View > Theme and applied at start-up. Light and dark are Qt style sheets on the Fusion
style; "system" is the platform's own style without a style sheet.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QActionGroup, QIcon, QPalette
from PySide6.QtWidgets import QApplication, QMenu

import resources

if TYPE_CHECKING:
    from desktop.main_window import MainWindow

__all__ = ["THEMES", "app_icon", "apply_theme", "build_theme_menu", "set_theme"]

_logger = logging.getLogger(__name__)

THEMES = ("system", "light", "dark")
_ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
_ICON_COLOURS = {"dark": ("#dde3ea", "#6b7480"), "light": ("#1d232b", "#9aa1ab")}  # text, disabled text
# Fixes on top of resources/styles/*.qss: its 4px dock-title padding clipped the dock titles, and
# styled spin boxes and combo boxes lose Fusion's arrows (flat dashes, an old bevel): SVG arrows.
_EXTRA_QSS = """
QDockWidget::title {{ padding: 2px 6px; }}
QAbstractSpinBox::up-button, QAbstractSpinBox::down-button {{ width: 16px; border: none; }}
QAbstractSpinBox::up-arrow {{ image: url("{up}"); width: 8px; height: 5px; }}
QAbstractSpinBox::down-arrow {{ image: url("{down}"); width: 8px; height: 5px; }}
QComboBox::drop-down {{ border: none; width: 18px; }}
QComboBox::down-arrow {{ image: url("{down}"); width: 8px; height: 5px; }}
"""
_ARROW_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="5" viewBox="0 0 8 5">'
              '<polygon points="{points}" fill="{colour}"/></svg>')


def _arrow_files(theme: str, colour: str) -> tuple[str, str]:
    """Write the spin-box arrow images for ``theme`` (style sheets only take file URLs)."""
    global _arrow_dir
    if _arrow_dir is None:
        _arrow_dir = Path(tempfile.mkdtemp(prefix="maskwright-style-"))  # private (0700), removed at exit
        atexit.register(shutil.rmtree, _arrow_dir, True)
    out = []
    for name, points in (("up", "0,5 4,0 8,5"), ("down", "0,0 8,0 4,5")):
        path = _arrow_dir / f"{theme}-{name}.svg"
        path.write_text(_ARROW_SVG.format(points=points, colour=colour), encoding="utf-8")
        out.append(path.as_posix())
    return out[0], out[1]


_arrow_dir: Path | None = None
_system_style: str | None = None  # the platform style name, remembered before Fusion replaces it


def app_icon() -> QIcon:
    """Maskwright's icon at every size shipped in ``resources/icons``."""
    icon = QIcon()
    for size in _ICON_SIZES:
        path = resources.path(f"icons/maskwright-{size}.png")
        if path.is_file():
            icon.addFile(str(path))
    return icon


def apply_theme(app: QApplication, theme: str) -> str:
    """Apply ``theme`` to ``app``; an unknown name (or an unreadable style file) falls back to "system".

    Returns the theme applied.
    """
    global _system_style
    if _system_style is None and not app.styleSheet():
        _system_style = app.style().name() or None  # with a style sheet on, the name reads empty
    if theme in ("light", "dark"):
        path = resources.path(f"styles/{theme}.qss")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            _logger.warning("%s: cannot read the %s style (%s); using the system look", path, theme, err)
        else:
            try:
                up, down = _arrow_files(theme, _ICON_COLOURS[theme][0])
                extra = _EXTRA_QSS.format(up=up, down=down)
            except OSError as err:  # the arrows are cosmetic
                _logger.debug("spin-box arrows: %s", err)
                extra = "\nQDockWidget::title { padding: 2px 6px; }\n"
            app.setStyle("Fusion")
            app.setStyleSheet(text + extra)
            return theme
    elif theme != "system":
        _logger.warning("unknown theme %r; using the system look", theme)
    app.setStyleSheet("")
    app.setStyle(_system_style or "Fusion")
    return "system"


def recolour_icons(window: MainWindow, theme: str) -> None:
    """Redraw the tool bar and menu icons in the theme's text colour (black icons vanish on dark)."""
    from desktop.actions import all_actions

    app = QApplication.instance()
    if theme in _ICON_COLOURS:
        colour, disabled = _ICON_COLOURS[theme]
    elif isinstance(app, QApplication):
        palette = app.palette()
        colour = palette.color(QPalette.ColorRole.WindowText).name()
        disabled = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText).name()
    else:
        return
    try:
        import qtawesome
    except ImportError:
        return
    for action in all_actions():
        qa = window.actions_by_id.get(action.id)
        if not action.icon or qa is None:
            continue
        try:
            qa.setIcon(qtawesome.icon(action.icon, color=colour, color_disabled=disabled))
        except Exception as err:  # noqa: BLE001 - an icon is never worth a crash
            _logger.debug("no icon %s (%s)", action.icon, err)


def set_theme(window: MainWindow, theme: str) -> None:
    """Apply ``theme`` now and remember it for the next start."""
    app = QApplication.instance()
    applied = apply_theme(app, theme) if isinstance(app, QApplication) else theme
    window.settings.set("theme", applied)
    window.settings.save()
    recolour_icons(window, applied)
    for qa in getattr(window, "theme_actions", {}).values():
        qa.setChecked(qa.data() == applied)


def build_theme_menu(window: MainWindow, view_menu: QMenu) -> dict[str, QAction]:
    """Add View > Theme (light, dark, system; exclusive) and apply the remembered theme."""
    menu = view_menu.addMenu("&Theme")
    menu.setObjectName("themeMenu")
    group = QActionGroup(window)
    group.setExclusive(True)
    actions: dict[str, QAction] = {}
    for name in THEMES:
        qa = QAction(name.capitalize(), window)
        qa.setObjectName(f"theme{name.capitalize()}")
        qa.setCheckable(True)
        qa.setData(name)
        qa.triggered.connect(lambda _=False, n=name: window.run_action(lambda w: set_theme(w, n)))
        group.addAction(qa)
        menu.addAction(qa)
        actions[name] = qa
    window.theme_actions = actions
    app = QApplication.instance()
    wanted = str(window.settings.get("theme", "system"))
    applied = apply_theme(app, wanted) if isinstance(app, QApplication) else wanted
    if isinstance(app, QApplication) and app.windowIcon().isNull():
        app.setWindowIcon(app_icon())
    window.setWindowIcon(app_icon())
    for name, qa in actions.items():
        qa.setChecked(name == applied)
    recolour_icons(window, applied)
    return actions
