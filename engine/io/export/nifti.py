"""NIfTI export of a volume's label map, on the volume's own geometry.

Writes ``<name>.nii.gz`` (uint8/uint16 class ids, through :func:`engine.io.masks.write_mask_nifti`,
the one mask codec) and beside it ``<name>.labels.json``: ``{"classes": [{"id", "name",
"prompt", "color"}, ...]}`` for every class of the label set.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from engine.errors import ExportError
from engine.io.export._common import ExportResult, check_ids, labels_json, write_json
from engine.io.masks import write_mask_nifti
from engine.items import LabelSet, Volume
from engine.jobs import CancelToken, Progress, check_cancelled, report

__all__ = ["write_nifti", "nifti_paths"]

_logger = logging.getLogger(__name__)


def nifti_paths(out_path: str | Path) -> tuple[Path, Path]:
    """The mask file (``.nii.gz`` added unless it ends in ``.nii``/``.nii.gz``) and its labels JSON."""
    out_path = Path(out_path)
    name = out_path.name
    if name.endswith(".nii.gz"):
        stem = name[: -len(".nii.gz")]
    elif name.endswith(".nii"):
        stem = name[: -len(".nii")]
    else:
        stem, out_path = name, out_path.with_name(name + ".nii.gz")
    return out_path, out_path.with_name(stem + ".labels.json")


def write_nifti(out_path: str | Path, volume: Volume, labelmap: np.ndarray, labels: LabelSet, *,
                progress: Progress | None = None, cancel: CancelToken | None = None) -> ExportResult:
    """Write a label volume as NIfTI on ``volume``'s geometry, plus its labels JSON.

    Parameters
    ----------
    out_path
        The ``.nii.gz`` (or ``.nii``) file; ``.nii.gz`` is appended to other names.
    volume
        The item the labels belong to: its spacing, origin and direction go into the header.
    labelmap
        ``(z, y, x)`` uint8/uint16 class ids on ``volume``'s grid.
    labels
        The classes the ids refer to.

    Returns
    -------
    ExportResult
        The two files written.
    """
    mask_path, json_path = nifti_paths(out_path)
    if labelmap.shape != volume.shape:
        raise ExportError(f"the mask grid {labelmap.shape} differs from the volume's {volume.shape}", mask_path)
    check_ids(labelmap, labels, mask_path)
    check_cancelled(cancel)
    try:
        mask_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExportError(f"cannot create the folder ({err.strerror or err})", mask_path.parent) from err
    report(progress, 0, 2, mask_path.name)
    write_mask_nifti(mask_path, labelmap, volume, error=ExportError)
    report(progress, 1, 2, json_path.name)
    write_json(json_path, labels_json(labels), indent=1)
    report(progress, 2, 2, "done")
    return ExportResult("nifti", (mask_path, json_path), 1)
