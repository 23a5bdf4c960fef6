"""The one mask codec: label maps to and from files.

Photos: lossless PNG, 8-bit greyscale for uint8 maps and 16-bit greyscale for uint16 maps (the
pixel value is the class id). Volumes: NIfTI (``.nii.gz``) on the volume's own geometry, written
through SimpleITK. Every write is atomic (:func:`engine.fsutil.atomic_path`).
"""

from __future__ import annotations

import errno
import os
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from engine.errors import ItemReadError, MaskwrightError
from engine.fsutil import atomic_path
from engine.items import Volume

__all__ = ["write_mask_png", "read_mask_png", "write_mask_nifti", "read_mask_nifti", "volume_to_sitk"]

_PNG_LEVEL = 1  # zlib level: masks compress well even at 1, and 4000x3000 saves stay fast


def write_mask_png(path: str | Path, data: np.ndarray, *, palette: np.ndarray | None = None,
                   error: type[MaskwrightError] = MaskwrightError) -> None:
    """Write a 2D uint8/uint16 label raster as a lossless PNG, atomically.

    Parameters
    ----------
    data
        ``(H, W)`` uint8 or uint16 class ids.
    palette
        Optional ``(N, 3)`` uint8 colours; only for uint8 data, makes an indexed ("P") PNG that
        viewers show in colour while the pixel values stay the class ids.
    """
    if data.ndim != 2 or data.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"a PNG mask must be 2D uint8/uint16, got {data.shape} {data.dtype}")
    data = np.ascontiguousarray(data)
    if data.dtype == np.uint16:
        image = Image.fromarray(data.astype("<u2"))  # mode I;16
    else:
        image = Image.fromarray(data)  # mode L
        if palette is not None:
            image = image.convert("P")  # keeps the values
            flat = np.zeros((256, 3), dtype=np.uint8)
            flat[: min(256, len(palette))] = palette[:256]
            image.putpalette(flat.ravel().tolist())
    with atomic_path(path, error=error) as tmp:
        image.save(tmp, format="PNG", compress_level=_PNG_LEVEL)


def read_mask_png(path: str | Path) -> np.ndarray:
    """Read a mask PNG written by :func:`write_mask_png` (or any 8/16-bit greyscale or indexed PNG).

    Returns ``(H, W)`` uint8 or uint16 class ids. Raises :class:`ItemReadError` naming the file.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("L", "P"):
                return np.asarray(image, dtype=np.uint8).copy()
            if image.mode in ("I;16", "I;16B", "I"):
                arr = np.asarray(image)
                if arr.min(initial=0) < 0 or arr.max(initial=0) > 65535:
                    raise ItemReadError("mask values are outside 0..65535", path)
                return arr.astype(np.uint16)
            raise ItemReadError(f"a mask PNG must be greyscale or indexed, this one is {image.mode}", path)
    except ItemReadError:
        raise
    except (OSError, SyntaxError, ValueError, zlib.error) as err:
        raise ItemReadError(f"not a readable PNG mask ({err})", path) from err


def volume_to_sitk(array: np.ndarray, volume: Volume):  # noqa: ANN201 - SimpleITK image
    """A SimpleITK image of ``array`` (``(z, y, x)``) on ``volume``'s geometry."""
    import SimpleITK as sitk

    if array.shape != volume.shape:
        raise ValueError(f"array shape {array.shape} differs from the volume's {volume.shape}")
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing(volume.spacing)
    image.SetOrigin(volume.origin)
    image.SetDirection(tuple(float(v) for v in volume.direction.ravel()))
    return image


def write_mask_nifti(path: str | Path, data: np.ndarray, volume: Volume, *, compression_level: int = 1,
                     error: type[MaskwrightError] = MaskwrightError) -> None:
    """Write a ``(z, y, x)`` uint8/uint16 label volume as NIfTI on ``volume``'s geometry, atomically."""
    import SimpleITK as sitk

    if data.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"a mask volume must be uint8/uint16, got {data.dtype}")
    image = volume_to_sitk(data, volume)
    with atomic_path(path, error=error) as tmp:
        try:
            sitk.WriteImage(image, str(tmp), True, compression_level)
        except RuntimeError as err:  # ITK reports I/O failures as RuntimeError: keep the errno when it says one
            text = str(err)
            code = errno.ENOSPC if "No space left" in text else errno.EACCES if "ermission denied" in text else errno.EIO
            raise OSError(code, os.strerror(code) if code != errno.EIO else text.strip().splitlines()[-1]) from err


def read_mask_nifti(path: str | Path, *, expect_shape: tuple[int, int, int] | None = None) -> np.ndarray:
    """Read a label volume written by :func:`write_mask_nifti` as a ``(z, y, x)`` array."""
    import SimpleITK as sitk

    path = Path(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise ItemReadError(f"not a readable NIfTI mask ({str(err).strip().splitlines()[-1]})", path) from err
    arr = sitk.GetArrayFromImage(image)
    if arr.dtype not in (np.uint8, np.uint16):
        if arr.size and (arr.min() < 0 or arr.max() > 65535 or not np.all(arr == np.round(arr))):
            raise ItemReadError("mask values are not class ids (0..65535 integers)", path)
        arr = arr.astype(np.uint16 if arr.size and arr.max() > 255 else np.uint8)
    if expect_shape is not None and arr.shape != tuple(expect_shape):
        raise ItemReadError(f"mask grid {arr.shape} does not match the volume's {tuple(expect_shape)}", path)
    return arr
