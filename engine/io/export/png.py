"""Indexed PNG export: one mask PNG per photo whose pixel values are Maskwright's class ids.

Layout::

    out_dir/<image name with .png>   8-bit indexed PNG coloured with the class colours (ids <= 255),
                                     or 16-bit greyscale when the label set uses ids above 255
    out_dir/labels.json              {"classes": [{"id", "name", "prompt", "color"}, ...]}

Masks go through :func:`engine.io.masks.write_mask_png`, the one mask codec.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from engine.errors import ExportError
from engine.io.export._common import (
    ExportResult, PhotoExportEntry, check_entries, labels_json, load_entry, output_names, write_json,
)
from engine.io.masks import write_mask_png
from engine.items import LabelSet
from engine.jobs import CancelToken, Progress, check_cancelled, report

__all__ = ["write_png"]

_logger = logging.getLogger(__name__)


def write_png(out_dir: str | Path, entries: list[PhotoExportEntry], labels: LabelSet, *,
              progress: Progress | None = None, cancel: CancelToken | None = None) -> ExportResult:
    """Write one indexed mask PNG per entry plus ``labels.json``.

    Parameters
    ----------
    out_dir
        Folder to write into (created if needed).
    entries
        The photos; their label maps are ``(H, W)`` uint8/uint16 class ids.
    labels
        The classes the ids refer to.

    Returns
    -------
    ExportResult
        The files written.
    """
    out_dir = Path(out_dir)
    check_entries(entries, labels)
    names = output_names(entries, ".png")
    eight_bit = labels.max_id <= 255
    palette = labels.palette() if eight_bit else None
    files: list[Path] = []
    for k, (entry, name) in enumerate(zip(entries, names)):
        check_cancelled(cancel)
        data, _ = load_entry(entry, labels)
        data = data.astype(np.uint8) if eight_bit else data.astype(np.uint16)
        path = out_dir / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ExportError(f"cannot create the folder ({err.strerror or err})", path.parent) from err
        write_mask_png(path, data, palette=palette, error=ExportError)
        files.append(path)
        report(progress, k + 1, len(entries), name)
    files.append(write_json(out_dir / "labels.json", labels_json(labels), indent=1))
    notes = () if eight_bit else ("class ids above 255: masks are 16-bit greyscale PNGs without colours",)
    return ExportResult("png", tuple(files), len(entries), notes)
