"""The View menu: zoom, overlay display, item and slice navigation."""

from __future__ import annotations

from desktop.actions import Action

ACTIONS: list[Action] = [
    Action("maskwright.view.fit", "&Fit to window", lambda w: w.for_canvases(lambda c: c.fit()), "Ctrl+0", "View",
           "fa5s.expand"),
    Action("maskwright.view.one_to_one", "&Actual pixels (1:1)", lambda w: w.for_canvases(lambda c: c.one_to_one()),
           "Ctrl+1", "View"),
    Action("maskwright.view.zoom_in", "Zoom &in", lambda w: w.zoom(1.25), "Ctrl+=", "View", "fa5s.search-plus"),
    Action("maskwright.view.zoom_out", "Zoom &out", lambda w: w.zoom(0.8), "Ctrl+-", "View", "fa5s.search-minus"),
    Action("maskwright.view.outline", "&Outline mode", lambda w: w.options_panel.outline.toggle(), "O", "View"),
    Action("maskwright.view.uncertainty", "&Uncertainty overlay", lambda w: w.options_panel.uncertainty.toggle(),
           "U", "View"),
    Action("maskwright.view.next_item", "Next item", lambda w: w.step_item(1), "PgDown", "View"),
    Action("maskwright.view.previous_item", "Previous item", lambda w: w.step_item(-1), "PgUp", "View"),
    Action("maskwright.view.slice_up", "Next slice", lambda w: w.scroll_slice(1), "Up", "View", canvas_only=True),
    Action("maskwright.view.slice_down", "Previous slice", lambda w: w.scroll_slice(-1), "Down", "View",
           canvas_only=True),
]
