"""The Edit menu: undo/redo, review and status, interpolation, shortcuts."""

from __future__ import annotations

from desktop.actions import Action

ACTIONS: list[Action] = [
    Action("maskwright.edit.undo", "&Undo", lambda w: w.document.undo_stack.undo(), "Ctrl+Z", "Edit", "fa5s.undo",
           toolbar=True),
    Action("maskwright.edit.redo", "&Redo", lambda w: w.document.undo_stack.redo(), "Ctrl+Shift+Z", "Edit",
           "fa5s.redo", toolbar=True),
    Action("maskwright.edit.cancel", "Cancel stroke or polygon", lambda w: w.tools.cancel(), "Esc", "Edit"),
    Action("maskwright.edit.close_polygon", "Close polygon", lambda w: w.close_polygon(), "Ctrl+Return", "Edit"),
    Action("maskwright.edit.interpolate", "&Interpolate between slices", lambda w: w.interpolate(), "Ctrl+I",
           "Edit", "fa5s.layer-group"),
    Action("maskwright.edit.threshold_volume", "&Threshold the whole volume (wand range)",
           lambda w: w.threshold_volume(), "Ctrl+Shift+T", "Edit", "fa5s.sliders-h"),
    Action("maskwright.edit.accept_class", "&Accept prediction for the class", lambda w: w.review_class(True),
           "Ctrl+Shift+Y", "Edit", "fa5s.check"),
    Action("maskwright.edit.reject_class", "Re&ject prediction for the class", lambda w: w.review_class(False),
           "Ctrl+Shift+X", "Edit", "fa5s.times"),
    Action("maskwright.edit.mark_corrected", "Mark &corrected", lambda w: w.mark("corrected"), "Ctrl+Shift+C",
           "Edit", "fa5s.check-circle"),
    Action("maskwright.edit.mark_approved", "Mark a&pproved", lambda w: w.mark("approved"), "Ctrl+Shift+A", "Edit",
           "fa5s.thumbs-up", toolbar=True),
    Action("maskwright.edit.next_to_correct", "&Next item to correct", lambda w: w.next_to_correct(), "Ctrl+J",
           "Edit", "fa5s.forward", toolbar=True),
    Action("maskwright.edit.shortcuts", "&Keyboard shortcuts…", lambda w: w.shortcuts_dialog(), "", "Edit"),
]
