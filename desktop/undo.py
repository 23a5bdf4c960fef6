"""Desktop undo: ``QUndoCommand`` subclasses whose ``redo``/``undo`` call engine methods.

An edit is applied by the engine while the person paints; when the stroke ends, the window
pushes an :class:`EditCommand` holding the engine's step. Its first ``redo`` does nothing (the
edit is already on the map); later ones ask the :class:`~engine.edit.LabelEditor` to redo/undo.
"""

from __future__ import annotations

import logging

from PySide6.QtGui import QUndoCommand

from engine.edit import LabelEditor, Step

__all__ = ["EditCommand"]

_logger = logging.getLogger(__name__)


class EditCommand(QUndoCommand):
    """One committed engine step (a stroke, a fill, an interpolation, an accept/reject)."""

    def __init__(self, editor: LabelEditor, step: Step, text: str) -> None:
        super().__init__(text)
        self.editor = editor
        self.step = step
        self._applied = True

    def redo(self) -> None:
        if self._applied:
            return
        step = self.editor.redo()
        if step is not self.step:
            _logger.error("undo stacks out of step: redid %r, expected %r", step, self.step)
        self._applied = True

    def undo(self) -> None:
        step = self.editor.undo()
        if step is not self.step:
            _logger.error("undo stacks out of step: undid %r, expected %r", step, self.step)
        self._applied = False
