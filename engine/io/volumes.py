"""Open any volume source: NIfTI, NRRD, MetaImage (through SimpleITK) or DICOM (folder or file).

Geometry is kept as SimpleITK reports it (LPS: NIfTI's RAS sform/qform is converted by ITK), in
Maskwright's convention (:mod:`engine.items`). NaN voxels in float images are reported (logged
with their count), never a crash; damaged, truncated or empty files raise
:class:`~engine.errors.ItemReadError` naming the file and the reason.
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
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
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in sorted(filenames):
            if _looks_like_dicom(Path(dirpath) / name):
                return True
            looked += 1
            if looked >= _MAX_PROBE:
                return False
    return False


def read_volume(path: str | Path, *, series: str | None = None, progress: Progress | None = None,
                cancel: CancelToken | None = None, allow_irregular: bool = False) -> Volume:
    """Read a 3D volume.

    Parameters
    ----------
    path
        A NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``) or MetaImage (``.mha``,
        ``.mhd``) file, a DICOM folder, a DICOM file, or a DICOMDIR (its folder is scanned).
    series
        For DICOM: the series key or SeriesInstanceUID when the source holds several.
    progress, cancel
        See :mod:`engine.jobs`.
    allow_irregular
        For DICOM: load a series with geometry problems anyway (see
        :func:`engine.io.dicom.load_series`).

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
    if path.is_file() and path.name.upper() == "DICOMDIR":
        path = path.parent  # a DICOMDIR indexes the files beside it: scan them
    if path.is_dir() or not _has_volume_suffix(path):
        if path.is_file() and not _looks_like_dicom(path):
            raise UnsupportedFormatError("not a volume file (NIfTI, NRRD, MHA/MHD) nor DICOM", path)
        from engine.io.dicom import read_dicom_folder, read_headers

        if path.is_file():
            read_headers(path)  # a damaged or non-image file: DicomError naming it and the reason
        return read_dicom_folder(path, series, allow_irregular=allow_irregular, progress=progress, cancel=cancel)
    return _read_itk(path, progress, cancel)


def _read_itk(path: Path, progress: Progress | None, cancel: CancelToken | None) -> Volume:
    import SimpleITK as sitk

    check_cancelled(cancel)
    report(progress, 0, 1, f"reading {path.name}")
    if path.stat().st_size == 0:
        raise ItemReadError("empty file (0 bytes)", path)
    if path.name.lower().endswith((".nii", ".nii.gz")):
        _check_nifti_size(path)
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
        if path.name.lower().endswith((".nii", ".nii.gz")):
            _restore_nifti_nonfinite(path, array)
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


def _nifti_layout(head: bytes) -> tuple[str, tuple[int, ...], int, int, int] | None:
    """``(byte order, dims, datatype, bitpix, vox_offset)`` of a NIfTI-1/2 header, else ``None``."""
    for order in "<>":
        size = int(np.frombuffer(head[:4], dtype=f"{order}i4")[0]) if len(head) >= 4 else 0
        if size == 348 and len(head) >= 112:
            dim = np.frombuffer(head[40:56], dtype=f"{order}i2")
            datatype, bitpix = (int(v) for v in np.frombuffer(head[70:74], dtype=f"{order}i2"))
            offset = int(np.frombuffer(head[108:112], dtype=f"{order}f4")[0])
            return order, tuple(int(d) for d in dim[1:1 + max(0, min(int(dim[0]), 7))]), datatype, bitpix, offset
        if size == 540 and len(head) >= 176:
            datatype, bitpix = (int(v) for v in np.frombuffer(head[12:16], dtype=f"{order}i2"))
            dim = np.frombuffer(head[16:80], dtype=f"{order}i8")
            offset = int(np.frombuffer(head[168:176], dtype=f"{order}i8")[0])
            return order, tuple(int(d) for d in dim[1:1 + max(0, min(int(dim[0]), 7))]), datatype, bitpix, offset
    return None


def _gunzipped_size(path: Path, need: int) -> int:
    """Bytes a gzip file inflates to (all members), or fewer when it is cut short.

    Fast path: the gzip trailer's ISIZE (size mod 2**32) of an intact single-member file equals
    ``need``; a truncated file ends in arbitrary bytes. Otherwise inflate the stream to count.
    """
    with open(path, "rb") as fh:
        fh.seek(-4, 2)
        if int.from_bytes(fh.read(4), "little") == need % (1 << 32):
            return need
        fh.seek(0)
        total, inflater = 0, zlib.decompressobj(wbits=47)
        try:
            while chunk := fh.read(1 << 20):
                while chunk:
                    total += len(inflater.decompress(chunk))
                    chunk = inflater.unused_data if inflater.eof else b""
                    if inflater.eof:
                        inflater = zlib.decompressobj(wbits=47)
        except zlib.error:
            return total
    return total


def _check_nifti_size(path: Path) -> None:
    """ITK reads a truncated NIfTI (plain or gzipped) without complaint: check the size first."""
    gz = path.name.lower().endswith(".gz")
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
            layout = _nifti_layout(fh.read(540))
    except (OSError, EOFError, zlib.error) as err:
        raise ItemReadError(f"damaged NIfTI file: {err}", path) from err
    if layout is None:
        return  # not NIfTI-looking: let SimpleITK say what it is
    _order, dims, _datatype, bitpix, offset = layout
    need = offset + int(np.prod(dims, dtype=np.int64)) * bitpix // 8
    have = _gunzipped_size(path, need) if gz else path.stat().st_size
    if have < need:
        raise ItemReadError(f"truncated NIfTI file: {have} bytes of data, the header needs {need}", path)


def _restore_nifti_nonfinite(path: Path, array: np.ndarray) -> None:
    """ITK's NIfTI reader turns NaN/Inf into 0; put them back from the raw float data (in place)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(540)
            layout = _nifti_layout(head)
            if layout is None or layout[2] not in (16, 64):  # float32 / float64
                return
            order, dims, datatype, _bitpix, offset = layout
            dtype = np.dtype(f"{order}f4" if datatype == 16 else f"{order}f8")
            fh.seek(offset)
            raw = np.frombuffer(fh.read(array.size * dtype.itemsize), dtype=dtype)
    except (OSError, EOFError, zlib.error):
        return
    if raw.size != array.size:
        return
    bad = ~np.isfinite(raw)
    if bad.any():
        array.reshape(-1)[bad] = raw[bad]
