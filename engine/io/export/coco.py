"""COCO JSON export (instance segmentation format, readable by pycocotools).

Maskwright's masks are semantic label maps, so by default (``instances="class"``) each
(image, class) pair gives exactly **one** annotation holding every pixel of that class: an object
is never split into several instances, and two touching objects of one class are not told apart
either (a label map cannot tell them apart). ``instances="connected"`` gives one annotation per
8-connected component instead.

``encoding="rle"`` writes compressed RLE (``iscrowd`` 0, counts as a string), exact.
``encoding="polygon"`` writes polygons traced along pixel edges; a component's holes are joined to
its outline by zero-width cuts, so pycocotools (even-odd fill) rasterises the polygons back to
exactly the same pixels. Category ids are Maskwright's stable class ids; every class of the label
set is listed, with or without pixels. ``area`` is the pixel count and ``bbox`` the pixel extent
``[x, y, width, height]``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import numpy as np
from pycocotools import mask as mask_utils

from engine.errors import ExportError
from engine.io.export._common import ExportResult, PhotoExportEntry, check_entries, load_entry, write_json
from engine.io.export._polygons import Component, keyhole, trace_components
from engine.items import LabelSet
from engine.jobs import CancelToken, Progress, check_cancelled, report

__all__ = ["write_coco", "COCO_FILE_NAME"]

_logger = logging.getLogger(__name__)

COCO_FILE_NAME = "annotations.json"

Encoding = Literal["rle", "polygon"]
Instances = Literal["class", "connected"]


def _bbox(mask: np.ndarray) -> list[float]:
    rows = np.nonzero(mask.any(axis=1))[0]
    cols = np.nonzero(mask.any(axis=0))[0]
    return [float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1)]


def _rle(mask: np.ndarray) -> dict[str, object]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _polygon(component: Component) -> list[float]:
    return keyhole(component).astype(np.float64).ravel().tolist()


def _segments(mask: np.ndarray, encoding: Encoding, instances: Instances) -> list[tuple[object, int, list[float]]]:
    """``(segmentation, area, bbox)`` for each annotation one class mask gives."""
    if instances == "class" and encoding == "rle":
        return [(_rle(mask), int(np.count_nonzero(mask)), _bbox(mask))]
    components = trace_components(mask)
    h, w = mask.shape
    if instances == "class":
        return [([_polygon(c) for c in components], int(sum(c.area for c in components)), _bbox(mask))]
    out: list[tuple[object, int, list[float]]] = []
    for c in components:
        poly = _polygon(c)
        lo, hi = c.outer.min(axis=0), c.outer.max(axis=0)
        bbox = [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]
        if encoding == "polygon":
            out.append(([poly], c.area, bbox))
        else:  # rasterising the exact keyhole polygon gives the component's RLE without a labelling pass
            rle = mask_utils.frPyObjects([poly], h, w)[0]
            out.append(({"size": [h, w], "counts": rle["counts"].decode("ascii")}, c.area, bbox))
    return out


def write_coco(out_dir: str | Path, entries: list[PhotoExportEntry], labels: LabelSet, *,
               encoding: Encoding = "rle", instances: Instances = "class", file_name: str = COCO_FILE_NAME,
               progress: Progress | None = None, cancel: CancelToken | None = None) -> ExportResult:
    """Write a COCO instance-segmentation JSON for the entries.

    Parameters
    ----------
    out_dir
        Folder to write ``file_name`` into (created if needed).
    entries
        The photos; ``images[k].file_name`` is ``entries[k].name`` and ``images[k].id`` is ``k + 1``.
    labels
        The classes; category ids are their ids.
    encoding
        ``"rle"`` (exact compressed RLE) or ``"polygon"`` (pixel-edge polygons, exact under
        even-odd filling).
    instances
        ``"class"``: one annotation per (image, class); ``"connected"``: one per 8-connected
        component.

    Returns
    -------
    ExportResult
        The JSON file written.
    """
    if encoding not in ("rle", "polygon"):
        raise ExportError(f"unknown COCO encoding {encoding!r} (use 'rle' or 'polygon')")
    if instances not in ("class", "connected"):
        raise ExportError(f"unknown COCO instances mode {instances!r} (use 'class' or 'connected')")
    out_dir = Path(out_dir)
    check_entries(entries, labels)
    images: list[dict[str, object]] = []
    annotations: list[dict[str, object]] = []
    used: set[int] = set()
    for k, entry in enumerate(entries):
        check_cancelled(cancel)
        image_id = k + 1
        h, w = entry.size
        images.append({"id": image_id, "file_name": entry.name.replace("\\", "/"), "height": h, "width": w})
        data, present = load_entry(entry, labels)
        for class_id in present:
            for segmentation, area, bbox in _segments(data == class_id, encoding, instances):
                annotations.append({
                    "id": len(annotations) + 1, "image_id": image_id, "category_id": class_id,
                    "segmentation": segmentation, "area": area, "bbox": bbox, "iscrowd": 0,
                })
            used.add(class_id)
        report(progress, k + 1, len(entries), entry.name)
    categories = [{"id": c.id, "name": c.name, "supercategory": "", "color": list(c.color)} for c in labels]
    doc = {
        "info": {"description": "Exported by Maskwright", "version": "1.0",
                 "date_created": datetime.now(timezone.utc).isoformat(timespec="seconds")},
        "licenses": [], "images": images, "annotations": annotations, "categories": categories,
    }
    path = write_json(out_dir / file_name, doc)
    unused = [c.name for c in labels if c.id not in used]
    notes = (f"classes without pixels (listed as categories): {', '.join(unused)}",) if unused else ()
    _logger.info("COCO export: %d images, %d annotations -> %s", len(images), len(annotations), path)
    return ExportResult("coco", (path,), len(entries), notes)
