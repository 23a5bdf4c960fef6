"""The Tools menu: paint tools, brush size, class picking."""

from __future__ import annotations

from desktop.actions import Action

_TOOLS = (("brush", "&Brush", "B", "fa5s.paint-brush"), ("eraser", "&Eraser", "E", "fa5s.eraser"),
          ("polygon", "&Polygon fill", "P", "fa5s.draw-polygon"), ("fill", "&Flood fill", "G", "fa5s.fill-drip"),
          ("wand", "Magic &wand / threshold", "W", "fa5s.magic"), ("navigate", "&Navigate / cross-hair", "V",
                                                                     "fa5s.crosshairs"))

ACTIONS: list[Action] = [
    *[Action(f"maskwright.tools.{name}", title, lambda w, n=name: w.tools.set_tool(n), key, "Tools", icon,
             checkable=True, group="tools", toolbar=True) for name, title, key, icon in _TOOLS],
    Action("maskwright.tools.bigger", "Bigger brush", lambda w: w.options_panel.change_size(2), "]", "Tools"),
    Action("maskwright.tools.smaller", "Smaller brush", lambda w: w.options_panel.change_size(-2), "[", "Tools"),
    *[Action(f"maskwright.tools.class_{k}", f"Class {k}", lambda w, i=k - 1: w.class_panel.select_index(i), str(k),
             "Tools") for k in range(1, 10)],
]
