"""Exports: label maps to the files other tools read.

Two entry points, so a command line or a dialog calls one function whatever the format::

    export_photos("coco", out_dir, entries, labels, encoding="polygon", progress=..., cancel=...)
    export_volume("dicom-seg", out_path, volume, labelmap, labels, progress=..., cancel=...)

==============  ======  ===============================================================
format          items   writes
==============  ======  ===============================================================
``png``         photos  indexed PNG per photo (pixel = class id), labels.json
``coco``        photos  annotations.json, one instance per (image, class); options
                        ``encoding`` ("rle"/"polygon"), ``instances``, ``file_name``
``voc``         photos  SegmentationClass/*.png (VOC colour map), labels.txt
``yolo``        photos  labels/*.txt polygons, classes.txt, data.yaml
``nifti``       volume  .nii.gz on the source geometry, .labels.json
``dicom-seg``   volume  binary DICOM SEG referencing the source series; options
                        ``series_description``, ``series_number``, ``manual``, ``algorithm``
==============  ======  ===============================================================

Every file is written atomically (temporary file, fsync, rename): an error, a full disk or a
cancel leaves no partial file, only whole files from before. Errors are
:class:`~engine.errors.ExportError` naming the file and the reason.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from engine.errors import ExportError
from engine.io.export._common import ExportResult, PhotoExportEntry
from engine.io.export.coco import write_coco
from engine.io.export.dicom_seg import write_dicom_seg
from engine.io.export.nifti import write_nifti
from engine.io.export.png import write_png
from engine.io.export.voc import write_voc
from engine.io.export.yolo import write_yolo
from engine.items import LabelSet, Volume
from engine.jobs import CancelToken, Progress

__all__ = [
    "ExportFormat", "ExportRegistry", "FORMATS", "PhotoExportEntry", "ExportResult",
    "export_photos", "export_volume", "format_names",
]

_logger = logging.getLogger(__name__)

_COMMON = ("progress", "cancel")


@dataclass(frozen=True)
class ExportFormat:
    """One export format.

    Attributes
    ----------
    name
        What the CLI's ``--format`` takes ("coco", "dicom-seg"...).
    kind
        ``"photo"`` (writer takes ``(out_dir, entries, labels)``) or ``"volume"`` (writer takes
        ``(out_path, volume, labelmap, labels)``).
    writer
        The function that writes it; keyword options beyond ``progress``/``cancel`` are listed
        in :attr:`options`.
    description
        One line for help texts.
    """

    name: str
    kind: Literal["photo", "volume"]
    writer: Callable[..., ExportResult]
    description: str

    @property
    def options(self) -> tuple[str, ...]:
        """The writer's format-specific keyword options."""
        params = inspect.signature(self.writer).parameters.values()
        return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _COMMON)


class ExportRegistry:
    """Export formats by name; registering a name twice is an error."""

    def __init__(self) -> None:
        self._formats: dict[str, ExportFormat] = {}

    def register(self, fmt: ExportFormat) -> ExportFormat:
        """Add ``fmt``; raises ``ValueError`` if its name is taken."""
        if fmt.name in self._formats:
            raise ValueError(f"export format {fmt.name!r} is registered twice")
        self._formats[fmt.name] = fmt
        return fmt

    def get(self, name: str) -> ExportFormat:
        """The format called ``name``; :class:`ExportError` listing the known ones otherwise."""
        try:
            return self._formats[name.strip().lower()]
        except KeyError:
            raise ExportError(f"unknown export format {name!r} (known: {', '.join(self._formats)})") from None

    def list(self, kind: str | None = None) -> list[ExportFormat]:
        """All formats (of one ``kind`` if given), in registration order."""
        return [f for f in self._formats.values() if kind is None or f.kind == kind]

    def __iter__(self) -> Iterator[ExportFormat]:
        return iter(self._formats.values())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.strip().lower() in self._formats


FORMATS = ExportRegistry()
FORMATS.register(ExportFormat("png", "photo", write_png, "indexed PNG masks, pixel value = class id"))
FORMATS.register(ExportFormat("coco", "photo", write_coco, "COCO JSON, RLE or polygons"))
FORMATS.register(ExportFormat("voc", "photo", write_voc, "Pascal VOC SegmentationClass PNGs"))
FORMATS.register(ExportFormat("yolo", "photo", write_yolo, "YOLO segmentation polygons (Ultralytics)"))
FORMATS.register(ExportFormat("nifti", "volume", write_nifti, "NIfTI label volume on the source geometry"))
FORMATS.register(ExportFormat("dicom-seg", "volume", write_dicom_seg, "DICOM SEG referencing the source series"))


def format_names(kind: str | None = None) -> list[str]:
    """Names of the registered formats (of one ``kind``: "photo" or "volume")."""
    return [f.name for f in FORMATS.list(kind)]


def _resolve(fmt: str, kind: str, options: dict[str, object]) -> ExportFormat:
    spec = FORMATS.get(fmt)
    if spec.kind != kind:
        other = "export_volume" if spec.kind == "volume" else "export_photos"
        raise ExportError(f"format {spec.name!r} exports {spec.kind}s; use {other}")
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        allowed = ", ".join(spec.options) or "none"
        raise ExportError(f"format {spec.name!r} has no option {', '.join(unknown)} (options: {allowed})")
    return spec


def export_photos(fmt: str, out_dir: str | Path, entries: list[PhotoExportEntry], labels: LabelSet, *,
                  progress: Progress | None = None, cancel: CancelToken | None = None,
                  **options: object) -> ExportResult:
    """Export photo label maps in format ``fmt`` ("png", "coco", "voc" or "yolo").

    Parameters
    ----------
    fmt
        A photo format name (see :func:`format_names`).
    out_dir
        The dataset folder to write into (created if needed).
    entries
        One per photo: its file name, ``(H, W)`` and ``(H, W)`` uint8/uint16 label map (or a
        function returning it, called when the photo is written, or ``None`` for no mask).
    labels
        The classes the label maps' ids refer to.
    progress, cancel
        Called per photo / checked between photos.
    **options
        Format options (``encoding="polygon"`` for COCO...); unknown ones raise ExportError.

    Returns
    -------
    ExportResult
        The files written and notes for the person.
    """
    spec = _resolve(fmt, "photo", options)
    _logger.info("exporting %d photos as %s to %s", len(entries), spec.name, out_dir)
    return spec.writer(Path(out_dir), list(entries), labels, progress=progress, cancel=cancel, **options)


def export_volume(fmt: str, out_path: str | Path, volume: Volume, labelmap: np.ndarray, labels: LabelSet, *,
                  progress: Progress | None = None, cancel: CancelToken | None = None,
                  **options: object) -> ExportResult:
    """Export one volume's label map in format ``fmt`` ("nifti" or "dicom-seg").

    Parameters
    ----------
    fmt
        A volume format name (see :func:`format_names`).
    out_path
        The file to write (``.nii.gz`` / ``.dcm``).
    volume
        The item: geometry for NIfTI, source DICOM files for SEG.
    labelmap
        ``(z, y, x)`` uint8/uint16 class ids on ``volume``'s grid.
    labels
        The classes.
    **options
        Format options; unknown ones raise ExportError.

    Returns
    -------
    ExportResult
        The files written.
    """
    spec = _resolve(fmt, "volume", options)
    _logger.info("exporting a %s volume as %s to %s", volume.shape, spec.name, out_path)
    return spec.writer(Path(out_path), volume, labelmap, labels, progress=progress, cancel=cancel, **options)
