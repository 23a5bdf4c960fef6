"""Open any volume source: NIfTI, NRRD, MetaImage (through SimpleITK) or DICOM (folder or file).

Geometry is kept as SimpleITK reports it (LPS: NIfTI's RAS sform/qform is converted by ITK), in
Maskwright's convention (:mod:`engine.items`). NaN voxels in float images are reported (logged
with their count), never a crash; damaged, truncated or empty files raise
:class:`~engine.errors.ItemReadError` naming the file and the reason.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from engine.errors import ItemReadError, UnsupportedFormatError
from engine.items import Volume
from engine.jobs import CancelToken, Progress, check_cancelled, report

__all__ = ["read_volume", "is_volume_source", "VOLUME_SUFFIXES"]

_logger = logging.getLogger(__name__)

VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
_PHOTO_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif"}
_DICOM_SUFFIXES = {".dcm", ".dicom", ".ima"}
_MAX_PROBE = 2000  # files looked at before deciding a folder holds no DICOM


def _has_volume_suffix(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in VOLUME_SUFFIXES)


def _looks_like_dicom(path: Path) -> bool:
    """Cheap test on the first bytes: the 'DICM' marker, or a preamble-less group 0002/0008 start."""
    suffix = path.suffix.lower()
    if suffix in _PHOTO_SUFFIXES or _has_volume_suffix(path):
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    if len(head) == 132 and head[128:132] == b"DICM":
        return True
    # no preamble (old ACR-NEMA style): the file starts with a (0008,00xx) or (0002,00xx) tag
    return suffix in _DICOM_SUFFIXES or (len(head) >= 8 and head[:2] in (b"\x08\x00", b"\x02\x00")
                                         and head[3] < 0x20)


def is_volume_source(path: str | Path) -> bool:
    """Whether ``path`` is something :func:`read_volume` opens.

    True for a NIfTI/NRRD/MetaImage file, a DICOM file, or a folder holding at least one DICOM
    file (searched recursively, stopping at the first). Photos and folders of photos give False.
    """
    path = Path(path)
    if path.is_file():
        return _has_volume_suffix(path) or _looks_like_dicom(path)
    if not path.is_dir():
        return _has_volume_suffix(path)
    looked = 0
    for child in sorted(path.rglob("*")):
        if child.is_file():
            if _looks_like_dicom(child):
                return True
            looked += 1
            if looked >= _MAX_PROBE:
                break
    return False


def read_volume(path: str | Path, *, series: str | None = None, progress: Progress | None = None,
                cancel: CancelToken | None = None) -> Volume:
    """Read a 3D volume.

    Parameters
    ----------
    path
        A NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``) or MetaImage (``.mha``,
        ``.mhd``) file, a DICOM folder, or a DICOM file.
    series
        For DICOM: the series key or SeriesInstanceUID when the source holds several.
    progress, cancel
        See :mod:`engine.jobs`.

    Returns
    -------
    Volume
        ``(z, y, x)`` array with geometry in LPS. A 2D image gives one slice; a 4D file whose
        fourth axis has length 1 is squeezed.

    Raises
    ------
    ItemReadError
        Missing, empty, damaged or unsupported file (the message names it and the reason);
        :class:`~engine.errors.DicomError` and its subclasses for DICOM sources.
    """
    path = Path(path)
    if not path.exists():
        raise ItemReadError("no such file or folder", path)
    if path.is_dir() or not _has_volume_suffix(path):
        if path.is_file() and not _looks_like_dicom(path):
            raise UnsupportedFormatError("not a volume file (NIfTI, NRRD, MHA/MHD) nor DICOM", path)
        from engine.io.dicom import read_dicom_folder, read_headers

        if path.is_file():
            read_headers(path)  # a damaged or non-image file: DicomError naming it and the reason
        return read_dicom_folder(path, series, progress=progress, cancel=cancel)
    return _read_itk(path, progress, cancel)


def _read_itk(path: Path, progress: Progress | None, cancel: CancelToken | None) -> Volume:
    import SimpleITK as sitk

    check_cancelled(cancel)
    report(progress, 0, 1, f"reading {path.name}")
    if path.stat().st_size == 0:
        raise ItemReadError("empty file (0 bytes)", path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else "unreadable"
        raise ItemReadError(f"cannot read this volume file: {reason}", path) from err
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise UnsupportedFormatError(f"{image.GetNumberOfComponentsPerPixel()} components per voxel: "
                                     "only scalar volumes can be annotated", path)
    dim = image.GetDimension()
    if dim == 4:
        if image.GetSize()[3] != 1:
            raise UnsupportedFormatError(f"a 4D image with {image.GetSize()[3]} volumes: Maskwright annotates 3D "
                                         "volumes (split it into 3D files first)", path)
        size = list(image.GetSize())
        image = sitk.Extract(image, size[:3] + [0], [0, 0, 0, 0])
        dim = 3
    if dim == 2:
        image = sitk.JoinSeries(image)
    elif dim != 3:
        raise UnsupportedFormatError(f"a {dim}D image cannot be read as a volume", path)
    try:
        array = sitk.GetArrayFromImage(image)
    except RuntimeError as err:
        raise ItemReadError(f"cannot read the voxel data: {err}", path) from err
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    if array.dtype.kind == "f":
        bad = int(np.count_nonzero(np.isnan(array)))
        if bad:
            _logger.warning("%s holds %d NaN voxel(s) of %d", path, bad, array.size)
    name = path.name
    for suffix in VOLUME_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    report(progress, 1, 1, f"reading {path.name}")
    return Volume(array=array, spacing=image.GetSpacing(), origin=image.GetOrigin(), direction=direction,
                  source=path, description=name)
