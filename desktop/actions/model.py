"""The Model menu: pre-annotation, fine-tuning, model management."""

from __future__ import annotations

from desktop.actions import Action

ACTIONS: list[Action] = [
    Action("maskwright.model.preannotate", "Pre-annotate &current item", lambda w: w.preannotate("current"),
           "Ctrl+R", "Model", "fa5s.robot", toolbar=True),
    Action("maskwright.model.preannotate_selection", "Pre-annotate &selected items",
           lambda w: w.preannotate("selection"), "", "Model"),
    Action("maskwright.model.preannotate_all", "Pre-annotate &all items", lambda w: w.preannotate("all"), "",
           "Model"),
    Action("maskwright.model.train", "&Fine-tune…", lambda w: w.training_dialog(), "Ctrl+T", "Model",
           "fa5s.graduation-cap"),
    Action("maskwright.model.models", "&Models…", lambda w: w.models_dialog(), "Ctrl+M", "Model", "fa5s.cubes"),
]
