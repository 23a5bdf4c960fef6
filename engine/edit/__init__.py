"""Label-map editing with sparse undo/redo: the Qt-free model behind the desktop's paint tools.

>>> import numpy as np
>>> editor = LabelEditor(np.zeros((100, 100), np.uint8))
>>> with editor.stroke("brush"):
...     paint(editor, Plane(), (10, 10), (10, 40), radius=3, value=1)
>>> editor.undo()
"""

from engine.edit.editor import LabelEditor, bbox_of, plane_box, plane_key
from engine.edit.history import Atom, History, Step
from engine.edit.interpolate import annotated_slices, interpolate_slices, signed_distance
from engine.edit.review import accept_class, entropy_map, rank_by_uncertainty, reject_class, uncertainty_score
from engine.edit.shapes import brush_dab, brush_segment, polygon_mask
from engine.edit.tools import Plane, erase, fill_polygon, flood_fill, magic_wand, paint, threshold_fill

__all__ = [
    "LabelEditor", "bbox_of", "plane_key", "plane_box", "Atom", "History", "Step",
    "annotated_slices", "interpolate_slices", "signed_distance",
    "accept_class", "reject_class", "entropy_map", "rank_by_uncertainty", "uncertainty_score",
    "brush_dab", "brush_segment", "polygon_mask",
    "Plane", "paint", "erase", "fill_polygon", "flood_fill", "magic_wand", "threshold_fill",
]
