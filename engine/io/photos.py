"""Reading photos (PNG, JPEG, TIFF, BMP, WebP) into :class:`engine.items.Photo`.

What a read gives (``rgb`` is what models and the canvas see, ``raw`` the faithful pixels):

==========================  ==========================================  =====================
source                      ``rgb`` (H, W, 3) uint8                     ``raw``
==========================  ==========================================  =====================
8-bit RGB                   as stored                                   ``None``
8-bit RGBA, LA, palette     composited over white                       ``(H, W, 4|2)`` uint8
with transparency
greyscale 8-bit (L, 1)      grey repeated in the three channels         ``(H, W)`` uint8/bool
greyscale 16/32-bit, float  linear min-max stretch to 0..255 (these     ``(H, W)`` uint16,
                            are scientific images that rarely use the   int32 or float32
                            full range); a constant image is black
16-bit RGB(A) PNG/TIFF      value / 257, rounded (photographs use the   ``(H, W, 3|4)`` uint16
                            full range); alpha composited over white
CMYK, YCbCr, LAB...         Pillow's conversion to RGB                  ``None``
==========================  ==========================================  =====================

EXIF orientation is applied to ``rgb`` and ``raw`` alike. Multi-page TIFFs give frame 0 unless
another is asked for. Pillow reads 16-bit colour as 8 bits, so those files are decoded by
SimpleITK (ITK's PNG and TIFF readers keep the 16 bits).

Before any pixel is decoded the header's size is checked against ``max_pixels`` (a
decompression-bomb guard): a too large image raises :class:`ImageTooLargeError` naming the file,
its size and the limit, never a ``MemoryError``.
"""

from __future__ import annotations

import logging
import threading
import warnings
import zlib
from pathlib import Path

import numpy as np
from natsort import natsorted, ns
from PIL import Image, UnidentifiedImageError

from engine.errors import ImageTooLargeError, ItemReadError, UnsupportedFormatError
from engine.items import Photo

__all__ = ["PHOTO_SUFFIXES", "DEFAULT_MAX_PIXELS", "read_photo", "list_photos", "is_photo"]

_logger = logging.getLogger(__name__)

PHOTO_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".tif", ".tiff", ".bmp", ".dib", ".webp"}
)
"""File name suffixes (lower case) that :func:`list_photos` treats as photos."""

DEFAULT_MAX_PIXELS = 200_000_000
"""Default decompression-bomb limit: 200 megapixels (an RGB decode of that size is 600 MB)."""

_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error, IndexError, KeyError)
_PILLOW_LIMIT_LOCK = threading.Lock()
_ORIENTATION_TAG = 0x0112


def is_photo(path: str | Path) -> bool:
    """Whether ``path``'s name says it is a photo (suffix in :data:`PHOTO_SUFFIXES`, not hidden)."""
    p = Path(path)
    return p.suffix.lower() in PHOTO_SUFFIXES and not p.name.startswith(".")


def list_photos(folder: str | Path, *, recursive: bool = True) -> list[Path]:
    """The photos in ``folder``, in natural order ("img2" before "img10", case ignored).

    Parameters
    ----------
    folder
        The folder to list.
    recursive
        Also list sub-folders (their photos sort by relative path).

    Returns
    -------
    list of Path
        Files whose suffix is in :data:`PHOTO_SUFFIXES`; hidden files (name starting with ".",
        e.g. macOS "._x.jpg" companions) and hidden folders are skipped.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ItemReadError("not a folder" if folder.exists() else "no such folder", folder)
    pattern = "**/*" if recursive else "*"
    try:
        found = [
            p for p in folder.glob(pattern)
            if is_photo(p) and not any(part.startswith(".") for part in p.relative_to(folder).parts[:-1])
            and p.is_file()
        ]
    except OSError as err:
        raise ItemReadError(f"cannot list the folder ({err.strerror or err})", folder) from err
    return natsorted(found, key=lambda p: p.relative_to(folder).as_posix(), alg=ns.PATH | ns.IGNORECASE)


def _too_large(path: Path, size: tuple[int, int] | None, pixels: int, max_pixels: int) -> ImageTooLargeError:
    dims = f"{size[0]} x {size[1]} pixels, " if size else ""
    return ImageTooLargeError(
        f"the image is too large to open safely ({dims}{pixels / 1e6:.1f} megapixels; the limit is "
        f"{max_pixels / 1e6:g} megapixels)", path)


def _open(path: Path, max_pixels: int) -> Image.Image:
    """Open lazily (header only), turning every failure into a clear error."""
    try:
        size = path.stat().st_size
    except OSError as err:
        raise ItemReadError("no such file" if not path.exists() else f"cannot read ({err.strerror})", path) from err
    if not path.is_file():
        raise ItemReadError("not a file", path)
    if size == 0:
        raise ItemReadError("the file is empty (0 bytes)", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                return Image.open(path)
            except Image.DecompressionBombError:
                # Pillow refuses to even open it; lift its limit for this lazy (header-only) open
                # so that the size check in read_photo can name the size and our own limit.
                with _PILLOW_LIMIT_LOCK:
                    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
                    try:
                        return Image.open(path)
                    finally:
                        Image.MAX_IMAGE_PIXELS = saved
    except UnidentifiedImageError as err:
        raise UnsupportedFormatError("not an image Maskwright can read (PNG, JPEG, TIFF, BMP or WebP)",
                                     path) from err
    except _DECODE_ERRORS as err:
        raise ItemReadError(f"cannot read the image header ({err})", path) from err


def _is_16bit_colour(path: Path, image: Image.Image) -> bool:
    """Whether a PNG/TIFF stores 16-bit colour that Pillow would cut to 8 bits."""
    if image.format == "PNG":
        with open(path, "rb") as f:
            head = f.read(26)
        return len(head) == 26 and head[24] == 16 and head[25] in (2, 6)
    if image.format == "TIFF":
        bits = image.tag_v2.get(258, (8,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        return image.mode in ("RGB", "RGBA", "RGBX") and max(bits) == 16
    return False


def _read_16bit_colour(path: Path, frame: int) -> np.ndarray:
    """``(H, W, 3|4)`` uint16 pixels of a 16-bit colour PNG or TIFF, through SimpleITK."""
    import SimpleITK as sitk

    try:
        arr = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    except RuntimeError as err:
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else "unreadable"
        raise ItemReadError(f"the image data is damaged or truncated ({reason})", path) from err
    if arr.ndim == 4:
        arr = arr[frame]
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ItemReadError(f"unexpected 16-bit colour layout {arr.shape}", path)
    return arr.astype(np.uint16, copy=False)


def _stretch(values: np.ndarray) -> np.ndarray:
    """Linear min-max stretch of any numeric ``(H, W)`` array to uint8 (NaN and inf give 0)."""
    v = values.astype(np.float64, copy=False)
    finite = np.isfinite(v)
    if not finite.any():
        return np.zeros(v.shape, dtype=np.uint8)
    lo, hi = float(v[finite].min()), float(v[finite].max())
    if hi <= lo:
        return np.zeros(v.shape, dtype=np.uint8)
    out = np.where(finite, (v - lo) * (255.0 / (hi - lo)), 0.0)
    return np.rint(out).astype(np.uint8)


def _over_white(colour: np.ndarray, alpha: np.ndarray, full: int) -> np.ndarray:
    """Composite ``colour`` (``(H, W, C)``, 0..full) over white with ``alpha`` (0..full) to uint8."""
    c = colour.astype(np.float32) / np.float32(full)
    a = (alpha.astype(np.float32) / np.float32(full))[..., None]
    out = (c * a + (1.0 - a)) * 255.0
    return np.rint(out).astype(np.uint8)


def _convert(image: Image.Image, path: Path, frame: int, sixteen: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode the current frame to ``(rgb, raw)`` as the module docstring describes."""
    if sixteen:
        raw = _read_16bit_colour(path, frame)
        rgb = np.rint(raw[..., :3] / 257.0).astype(np.uint8)
        if raw.shape[2] == 4:
            rgb = _over_white(raw[..., :3], raw[..., 3], 65535)
        return rgb, raw
    mode = image.mode
    if mode == "P" or mode == "PA":
        has_alpha = mode == "PA" or "transparency" in image.info or image.palette.mode == "RGBA"
        image, mode = image.convert("RGBA" if has_alpha else "RGB"), "RGBA" if has_alpha else "RGB"
    elif mode in ("RGBa", "RGBX"):
        image, mode = image.convert("RGBA" if mode == "RGBa" else "RGB"), "RGBA" if mode == "RGBa" else "RGB"
    elif mode == "La":
        image, mode = image.convert("LA"), "LA"
    if mode == "RGB":
        return np.asarray(image, dtype=np.uint8).copy(), None
    if mode == "RGBA":
        raw = np.asarray(image, dtype=np.uint8).copy()
        return _over_white(raw[..., :3], raw[..., 3], 255), raw
    if mode == "LA":
        raw = np.asarray(image, dtype=np.uint8).copy()
        grey = _over_white(raw[..., :1], raw[..., 1], 255)
        return np.repeat(grey, 3, axis=2), raw
    if mode in ("L", "1"):
        raw = np.asarray(image).copy()
        grey = raw.astype(np.uint8) * 255 if raw.dtype == bool else raw.astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2), raw
    if mode.startswith("I;16") or mode in ("I", "F"):
        raw = np.asarray(image)
        if mode.startswith("I;16"):
            raw = raw.astype(np.uint16)
        elif mode == "I":
            raw = raw.astype(np.int32)
        else:
            raw = raw.astype(np.float32)
        return np.repeat(_stretch(raw)[..., None], 3, axis=2), np.ascontiguousarray(raw)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy(), None


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to an ``(H, W, ...)`` array, as Pillow's exif_transpose does."""
    if orientation == 2:
        arr = arr[:, ::-1]
    elif orientation == 3:
        arr = arr[::-1, ::-1]
    elif orientation == 4:
        arr = arr[::-1]
    elif orientation == 5:
        arr = arr.swapaxes(0, 1)
    elif orientation == 6:
        arr = np.rot90(arr, -1)
    elif orientation == 7:
        arr = arr[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        arr = np.rot90(arr, 1)
    return np.ascontiguousarray(arr)


def read_photo(path: str | Path, *, frame: int = 0, max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    """Read a photo file.

    Parameters
    ----------
    path
        A PNG, JPEG, TIFF, BMP or WebP file (the content decides, not the suffix).
    frame
        Page of a multi-page file (TIFF, animated WebP), 0-based.
    max_pixels
        Refuse images with more pixels than this, checked from the header before decoding.

    Returns
    -------
    Photo
        ``rgb`` ``(H, W, 3)`` uint8 and, when the source is not plain 8-bit RGB, ``raw`` at its
        own depth and channel count (see the module docstring); EXIF orientation applied to both.

    Raises
    ------
    ImageTooLargeError
        The image has more than ``max_pixels`` pixels.
    UnsupportedFormatError
        The file is not an image Pillow recognises (a text file named .png, for instance).
    ItemReadError
        Missing, empty, truncated or damaged file, or no such frame.
    """
    path = Path(path)
    with _open(path, max_pixels) as image:
        width, height = image.size
        try:
            frames = int(getattr(image, "n_frames", 1))
            if not 0 <= frame < frames:
                raise ItemReadError(f"frame {frame} does not exist (the file has {frames})", path)
            if frame:
                image.seek(frame)
            width, height = image.size
            if width * height > max_pixels:
                raise _too_large(path, (width, height), width * height, max_pixels)
            orientation = int(image.getexif().get(_ORIENTATION_TAG, 1) or 1)
            sixteen = _is_16bit_colour(path, image)
            if not sixteen:
                image.load()
            rgb, raw = _convert(image, path, frame, sixteen)
        except ItemReadError:
            raise
        except _DECODE_ERRORS as err:
            raise ItemReadError(f"the image data is damaged or truncated ({err})", path) from err
        except MemoryError as err:
            raise ItemReadError(f"not enough memory to decode a {width} x {height} image", path) from err
    if orientation != 1:
        rgb = _orient(rgb, orientation)
        raw = _orient(raw, orientation) if raw is not None else None
    _logger.debug("read %s: %s, rgb %s, raw %s", path, image.mode,
                  rgb.shape, None if raw is None else (raw.shape, raw.dtype))
    return Photo(rgb=rgb, source=path, raw=raw, frame=frame)
