"""Actions declared as data: id ``maskwright.<area>.<verb>``, title, shortcut, callback.

Each menu has its own module (``file``, ``edit``, ``view``, ``tools``, ``model``) ending with a
list of :class:`Action`. The main window only turns them into ``QAction`` objects
(:func:`build_actions`), with the person's shortcut overrides applied.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget

if TYPE_CHECKING:
    from desktop.main_window import MainWindow

__all__ = ["Action", "all_actions", "build_actions"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Action:
    """One command the person can give.

    Attributes
    ----------
    id
        ``maskwright.<area>.<verb>``, stable (shortcut overrides are stored by it).
    title
        Menu text (``&`` marks the mnemonic).
    callback
        Called with the main window.
    shortcut
        Default key sequence ("Ctrl+Z"), "" for none.
    menu
        The menu it appears in ("File", "Edit", "View", "Tools", "Model").
    icon
        A qtawesome icon name ("fa5s.paint-brush"), "" for none.
    checkable, group
        Checkable actions in the same group are exclusive (tools).
    toolbar
        Also shown in the tool bar.
    canvas_only
        The shortcut works only while the image views have focus (arrow keys must keep
        working in lists and spin boxes).
    """

    id: str
    title: str
    callback: Callable[[MainWindow], object]
    shortcut: str = ""
    menu: str = ""
    icon: str = ""
    checkable: bool = False
    group: str = ""
    toolbar: bool = False
    canvas_only: bool = False


def all_actions() -> list[Action]:
    """Every action of the app, menu by menu."""
    from desktop.actions import edit, file, model, tools, view

    out = [*file.ACTIONS, *edit.ACTIONS, *view.ACTIONS, *tools.ACTIONS, *model.ACTIONS]
    ids = [a.id for a in out]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ValueError(f"duplicate action ids: {sorted(dup)}")
    return out


def _icon(name: str):  # noqa: ANN202 - QIcon or None
    if not name:
        return None
    try:
        import qtawesome

        return qtawesome.icon(name)
    except Exception as err:  # noqa: BLE001 - an icon is never worth a crash
        _logger.debug("no icon %s (%s)", name, err)
        return None


def build_actions(window: MainWindow, actions: list[Action], overrides: dict[str, str],
                  parent: QWidget) -> dict[str, QAction]:
    """Make one ``QAction`` per action, with ``overrides`` (id -> key sequence) applied."""
    out: dict[str, QAction] = {}
    for a in actions:
        qa = QAction(a.title, parent)
        qa.setObjectName(a.id)
        icon = _icon(a.icon)
        if icon is not None:
            qa.setIcon(icon)
        keys = overrides.get(a.id, a.shortcut)
        if keys:
            qa.setShortcut(QKeySequence(keys))
        qa.setCheckable(a.checkable)
        qa.setToolTip(f"{a.title.replace('&', '')} ({keys})" if keys else a.title.replace("&", ""))
        qa.triggered.connect(lambda _checked=False, cb=a.callback: window.run_action(cb))
        out[a.id] = qa
    return out
