"""YOLO segmentation export (the Ultralytics ``labels/*.txt`` polygon format).

Layout::

    out_dir/labels/<image name with .txt>   one line per object: "class_index x1 y1 x2 y2 ..."
    out_dir/classes.txt                     one class name per line; line k is class index k
    out_dir/data.yaml                       Ultralytics dataset file: path, train/val, nc, names

Coordinates are pixel-corner positions divided by the image width/height, in ``[0, 1]`` with six
decimals. Each 8-connected component of a class is one line (one object). Its holes are joined
to its outline by zero-width cuts, which even-odd filling (OpenCV ``fillPoly``, pycocotools)
leaves open. Class index ``k`` is the ``k``-th class of the label set in id order; *every* class
is listed, with or without pixels, so no class is dropped and indices never shift between
exports of the same label set. A photo without pixels gets an empty file (a background image).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from engine.io.export._common import (
    ExportResult, PhotoExportEntry, check_entries, load_entry, output_names, write_text,
)
from engine.io.export._polygons import keyhole, trace_components
from engine.items import LabelSet
from engine.jobs import CancelToken, Progress, check_cancelled, report

__all__ = ["write_yolo", "yolo_class_index"]

_logger = logging.getLogger(__name__)


def yolo_class_index(labels: LabelSet) -> dict[int, int]:
    """Class id -> YOLO class index (position in id order, from 0)."""
    return {c.id: k for k, c in enumerate(labels)}


def _lines(data: np.ndarray, present: list[int], index: dict[int, int]) -> list[str]:
    h, w = data.shape
    scale = np.array([w, h], dtype=np.float64)
    lines: list[str] = []
    for class_id in present:
        for component in trace_components(data == class_id):
            xy = keyhole(component) / scale
            lines.append(f"{index[class_id]} " + " ".join(f"{v:.6f}" for v in xy.ravel()))
    return lines


def _data_yaml(labels: LabelSet) -> str:
    # JSON strings are valid YAML scalars, so names with ':' or quotes stay intact.
    names = "\n".join(f"  {k}: {json.dumps(c.name, ensure_ascii=False)}" for k, c in enumerate(labels))
    return f"path: .\ntrain: images\nval: images\nnc: {len(labels)}\nnames:\n{names}\n"


def write_yolo(out_dir: str | Path, entries: list[PhotoExportEntry], labels: LabelSet, *,
               progress: Progress | None = None, cancel: CancelToken | None = None) -> ExportResult:
    """Write YOLO segmentation labels, ``classes.txt`` and ``data.yaml``.

    Parameters
    ----------
    out_dir
        Dataset folder (created if needed); the images themselves are not copied.
    entries
        The photos; ``labels/<name>.txt`` is written for each.
    labels
        The classes; see :func:`yolo_class_index` for the index order.

    Returns
    -------
    ExportResult
        The files written.
    """
    out_dir = Path(out_dir)
    check_entries(entries, labels)
    names = output_names(entries, ".txt")
    index = yolo_class_index(labels)
    files: list[Path] = []
    used: set[int] = set()
    for k, (entry, name) in enumerate(zip(entries, names)):
        check_cancelled(cancel)
        data, present = load_entry(entry, labels)
        used.update(present)
        lines = _lines(data, present, index)
        files.append(write_text(out_dir / "labels" / name, "".join(line + "\n" for line in lines)))
        report(progress, k + 1, len(entries), entry.name)
    files.append(write_text(out_dir / "classes.txt", "".join(" ".join(c.name.split("\n")) + "\n" for c in labels)))
    files.append(write_text(out_dir / "data.yaml", _data_yaml(labels)))
    unused = [c.name for c in labels if c.id not in used]
    notes = (f"classes without pixels (kept in the names list): {', '.join(unused)}",) if unused else ()
    return ExportResult("yolo", tuple(files), len(entries), notes)
