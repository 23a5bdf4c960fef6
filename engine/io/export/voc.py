"""Pascal VOC segmentation export.

Layout (as in ``VOCdevkit/VOC2012``)::

    out_dir/SegmentationClass/<image name with .png>   8-bit indexed PNG, VOC colour map
    out_dir/ImageSets/Segmentation/default.txt        the image names without suffix, one a line
    out_dir/labels.txt                                line k is the name of index k (0 = background)
    out_dir/labelmap.txt                              "name:r,g,b::" lines (CVAT / Datumaro style)

The pixel value is the class *index*: 0 for background, then 1, 2, ... for the classes of the
label set in id order (VOC indices are contiguous even where Maskwright ids have gaps). 255 is
VOC's "void" (object boundaries, difficult regions); Maskwright writes no void pixels, so at most
254 classes fit. The palette is the standard VOC colour map (bit-interleaved), which every VOC
tool assumes, not the class colours. Masks go through :func:`engine.io.masks.write_mask_png`.
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath

import numpy as np

from engine.errors import ExportError
from engine.io.export._common import (
    ExportResult, PhotoExportEntry, check_entries, load_entry, output_names, write_text,
)
from engine.io.masks import write_mask_png
from engine.items import LabelSet
from engine.jobs import CancelToken, Progress, check_cancelled, report

__all__ = ["write_voc", "voc_colormap", "voc_class_index", "VOC_VOID"]

_logger = logging.getLogger(__name__)

VOC_VOID = 255
_MAX_CLASSES = 254


def voc_colormap(n: int = 256) -> np.ndarray:
    """The Pascal VOC colour map: ``(n, 3)`` uint8, index k's colour from the bits of k."""
    k = np.arange(n, dtype=np.int64)
    cmap = np.zeros((n, 3), dtype=np.int64)
    for shift in range(8):
        for channel in range(3):
            cmap[:, channel] |= ((k >> (3 * shift + channel)) & 1) << (7 - shift)
    return cmap.astype(np.uint8)


def voc_class_index(labels: LabelSet) -> dict[int, int]:
    """Class id -> VOC pixel value (1, 2, ... in id order)."""
    return {c.id: k + 1 for k, c in enumerate(labels)}


def write_voc(out_dir: str | Path, entries: list[PhotoExportEntry], labels: LabelSet, *,
              progress: Progress | None = None, cancel: CancelToken | None = None) -> ExportResult:
    """Write VOC ``SegmentationClass`` PNGs, the image set list and the label lists.

    Parameters
    ----------
    out_dir
        Dataset folder (created if needed).
    entries
        The photos.
    labels
        The classes (at most 254).

    Returns
    -------
    ExportResult
        The files written.
    """
    out_dir = Path(out_dir)
    check_entries(entries, labels)
    if len(labels) > _MAX_CLASSES:
        raise ExportError(f"Pascal VOC masks hold at most {_MAX_CLASSES} classes, the label set has {len(labels)}",
                          out_dir)
    names = output_names(entries, ".png")
    lut = np.zeros(labels.max_id + 1, dtype=np.uint8)
    for class_id, index in voc_class_index(labels).items():
        lut[class_id] = index
    palette = voc_colormap()
    files: list[Path] = []
    for k, (entry, name) in enumerate(zip(entries, names)):
        check_cancelled(cancel)
        path = out_dir / "SegmentationClass" / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ExportError(f"cannot create the folder ({err.strerror or err})", path.parent) from err
        data, _ = load_entry(entry, labels)
        write_mask_png(path, lut[data], palette=palette, error=ExportError)
        files.append(path)
        report(progress, k + 1, len(entries), entry.name)
    stems = "".join(str(PurePosixPath(n).with_suffix("")) + "\n" for n in names)
    files.append(write_text(out_dir / "ImageSets" / "Segmentation" / "default.txt", stems))
    class_names = ["background"] + [" ".join(c.name.split()) for c in labels]
    files.append(write_text(out_dir / "labels.txt", "".join(n + "\n" for n in class_names)))
    colours = [(0, 0, 0)] + [tuple(int(v) for v in palette[i]) for i in range(1, len(class_names))]
    files.append(write_text(out_dir / "labelmap.txt", "# label:color_rgb:parts:actions\n" + "".join(
        f"{n}:{r},{g},{b}::\n" for n, (r, g, b) in zip(class_names, colours))))
    return ExportResult("voc", tuple(files), len(entries))
