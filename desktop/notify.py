"""The one notification sink: every error a person should see goes through :class:`Notifier`.

Errors become a short message (a non-blocking message box plus the status bar), never a
traceback; the traceback goes to the log.
"""

from __future__ import annotations

import logging
import re

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from engine.errors import Cancelled, MaskwrightError, WeightsError

__all__ = ["Notifier", "describe_error"]

_logger = logging.getLogger(__name__)


_MISSING_WEIGHTS = re.compile(r"the weights of (\S+) are (?:not on this machine|missing)")


def _weights_hint(err: WeightsError) -> str:
    """Missing weights: point to the Models dialog (the engine's message names CLI commands)."""
    text = str(err)
    if "Model > Models" in text:
        return text
    found = _MISSING_WEIGHTS.search(err.reason)
    if found is None:
        return f"{text}\nModel > Models… (Ctrl+M) downloads, imports or removes model weights."
    name = found.group(1)
    where = f" (expected at {err.path})" if err.path is not None else ""
    source = re.search(r"\((file [^)]*)\)", err.reason)
    offline = f" Without network, fetch {source.group(1)} elsewhere and import it." if source else ""
    return (f"The weights of {name} are not on this computer{where}. Open Model > Models… (Ctrl+M), select "
            f"{name} and press Download, or use Import file… with a copy you already have.{offline}")


def describe_error(err: BaseException) -> str:
    """A message a person can act on: our errors as they are, others with their type named.

    Missing model weights point to the Models dialog rather than to a command line.
    """
    if isinstance(err, WeightsError):
        return _weights_hint(err)
    if isinstance(err, MaskwrightError):
        return str(err)
    if isinstance(err, MemoryError):
        return "Out of memory. Close other items or use a smaller model."
    if isinstance(err, OSError):
        name = getattr(err, "filename", None)
        return f"{name}: {err.strerror or err}" if name else (err.strerror or str(err))
    return f"Unexpected error ({type(err).__name__}): {err}"


class Notifier(QObject):
    """Shows information and errors to the person.

    Signals
    -------
    message(text, timeout_ms)
        For the status bar.
    """

    message = Signal(str, int)

    def __init__(self, parent_widget: QWidget | None = None) -> None:
        super().__init__(parent_widget)
        self._parent = parent_widget
        self.history: list[tuple[str, str]] = []  # (level, text), newest last; tests read it
        self._box: QMessageBox | None = None

    def info(self, text: str, timeout_ms: int = 5000) -> None:
        """A passing note in the status bar."""
        self.history.append(("info", text))
        self.message.emit(text, timeout_ms)

    def error(self, err: BaseException | str, *, context: str = "") -> None:
        """Show an error (non-blocking box + status bar); a cancellation is only a status note."""
        if isinstance(err, Cancelled):
            self.info(f"{context}: cancelled" if context else "Cancelled")
            return
        text = err if isinstance(err, str) else describe_error(err)
        if context:
            text = f"{context}: {text}"
        if isinstance(err, BaseException) and not isinstance(err, MaskwrightError):
            _logger.error("%s", text, exc_info=err)
        else:
            _logger.warning("%s", text)
        self.history.append(("error", text))
        self.message.emit(text, 10000)
        if self._box is not None:
            self._box.close()
        box = QMessageBox(QMessageBox.Icon.Warning, "Maskwright", text, QMessageBox.StandardButton.Ok, self._parent)
        box.setObjectName("errorBox")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.destroyed.connect(lambda *_: setattr(self, "_box", None) if self._box is box else None)
        box.open()  # non-blocking: the app keeps running, the person closes it when ready
        self._box = box

    @property
    def box(self) -> QMessageBox | None:
        """The error box on screen, if any."""
        return self._box

    @property
    def last_error(self) -> str | None:
        """The newest error text, or ``None``."""
        return next((t for level, t in reversed(self.history) if level == "error"), None)
