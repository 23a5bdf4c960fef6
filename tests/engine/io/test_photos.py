"""Tests for engine.io.photos: formats, depths, EXIF orientation, frames, bomb guard, bad files."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from engine.errors import ImageTooLargeError, ItemReadError, UnsupportedFormatError
from engine.io.photos import DEFAULT_MAX_PIXELS, PHOTO_SUFFIXES, is_photo, list_photos, read_photo


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _write_png(path: Path, arr: np.ndarray, *, bit_depth: int, colour_type: int,
               size: tuple[int, int] | None = None) -> Path:
    """A minimal PNG writer (Pillow cannot write 16-bit colour, nor lie about the size)."""
    h, w = size or arr.shape[:2]
    dtype = ">u2" if bit_depth == 16 else "u1"
    rows = b"".join(b"\x00" + np.ascontiguousarray(row).astype(dtype).tobytes() for row in arr)
    header = struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
                     + _png_chunk(b"IDAT", zlib.compress(rows)) + _png_chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()[:120, :160].copy()


@pytest.mark.parametrize("suffix,fmt,kwargs", [
    (".png", "PNG", {}), (".bmp", "BMP", {}), (".tif", "TIFF", {}),
    (".webp", "WEBP", {"lossless": True}),
])
def test_lossless_rgb_formats_read_exactly(tmp_path: Path, astronaut: np.ndarray, suffix: str, fmt: str,
                                          kwargs: dict) -> None:
    path = tmp_path / f"a{suffix}"
    Image.fromarray(astronaut).save(path, format=fmt, **kwargs)
    photo = read_photo(path)
    np.testing.assert_array_equal(photo.rgb, astronaut)
    assert photo.raw is None and photo.source == path and photo.shape == (120, 160)


def test_jpeg_reads_close_to_the_original(tmp_path: Path, astronaut: np.ndarray) -> None:
    path = tmp_path / "a.jpg"
    Image.fromarray(astronaut).save(path, quality=95)
    photo = read_photo(path)
    assert photo.rgb.dtype == np.uint8 and photo.rgb.shape == astronaut.shape
    assert np.abs(photo.rgb.astype(int) - astronaut).mean() < 4


def test_greyscale_keeps_raw(tmp_path: Path) -> None:
    import skimage.data

    grey = skimage.data.camera()[:64, :80]
    path = tmp_path / "g.png"
    Image.fromarray(grey).save(path)
    photo = read_photo(path)
    np.testing.assert_array_equal(photo.raw, grey)
    np.testing.assert_array_equal(photo.rgb, np.repeat(grey[..., None], 3, axis=2))


def test_16bit_greyscale_raw_is_exact_and_rgb_is_stretched(tmp_path: Path) -> None:
    values = (np.arange(12 * 10).reshape(12, 10) * 30 + 1000).astype(np.uint16)
    path = _write_png(tmp_path / "g16.png", values, bit_depth=16, colour_type=0)
    photo = read_photo(path)
    assert photo.raw.dtype == np.uint16
    np.testing.assert_array_equal(photo.raw, values)
    assert photo.rgb[0, 0, 0] == 0 and photo.rgb[-1, -1, 0] == 255
    expect = np.rint((values - 1000.0) * 255.0 / (values.max() - 1000.0)).astype(np.uint8)
    np.testing.assert_array_equal(photo.rgb[..., 1], expect)


def test_16bit_colour_png_keeps_all_bits(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    values = rng.integers(0, 65536, size=(9, 11, 3)).astype(np.uint16)
    photo = read_photo(_write_png(tmp_path / "c16.png", values, bit_depth=16, colour_type=2))
    assert photo.raw.dtype == np.uint16
    np.testing.assert_array_equal(photo.raw, values)
    np.testing.assert_array_equal(photo.rgb, np.rint(values / 257.0).astype(np.uint8))


def test_16bit_colour_tiff_keeps_all_bits(tmp_path: Path) -> None:
    tifffile = pytest.importorskip("tifffile")
    values = np.random.default_rng(2).integers(0, 65536, size=(7, 13, 3)).astype(np.uint16)
    path = tmp_path / "c16.tif"
    tifffile.imwrite(path, values, photometric="rgb")
    photo = read_photo(path)
    np.testing.assert_array_equal(photo.raw, values)


def test_rgba_is_composited_over_white_and_alpha_kept(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[0, :, 3] = 255  # opaque row
    rgba[1, :, 3] = 0  # transparent row
    rgba[2, :, 3] = 128
    path = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(path)
    photo = read_photo(path)
    np.testing.assert_array_equal(photo.raw, rgba)
    assert tuple(photo.rgb[0, 0]) == (200, 0, 0)
    assert tuple(photo.rgb[1, 0]) == (255, 255, 255)
    assert tuple(photo.rgb[2, 0]) == (round(200 * 128 / 255 + 255 * 127 / 255), 127, 127)


def test_palette_images(tmp_path: Path) -> None:
    idx = np.array([[0, 1], [2, 1]], dtype=np.uint8)
    pal = [10, 20, 30, 40, 50, 60, 70, 80, 90] + [0] * (256 * 3 - 9)
    image = Image.fromarray(idx, "L").convert("P")
    image.putpalette(pal)
    image.save(tmp_path / "p.png")
    photo = read_photo(tmp_path / "p.png")
    assert photo.raw is None
    assert tuple(photo.rgb[1, 0]) == (70, 80, 90)
    image.save(tmp_path / "pt.png", transparency=1)
    photo = read_photo(tmp_path / "pt.png")
    assert photo.raw.shape == (2, 2, 4) and photo.raw[0, 1, 3] == 0 and photo.raw[0, 0, 3] == 255
    assert tuple(photo.rgb[0, 1]) == (255, 255, 255)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path: Path, astronaut: np.ndarray, orientation: int) -> None:
    image = Image.fromarray(astronaut[:40, :60])
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.jpg"
    image.save(path, exif=exif, quality=95)
    expect = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    photo = read_photo(path)
    np.testing.assert_array_equal(photo.rgb, expect)
    assert photo.shape == ((60, 40) if orientation >= 5 else (40, 60))


def test_exif_orientation_applies_to_raw(tmp_path: Path) -> None:
    grey = np.arange(6 * 4, dtype=np.uint8).reshape(6, 4)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    path = tmp_path / "g.png"
    Image.fromarray(grey).save(path, exif=exif)
    photo = read_photo(path)
    np.testing.assert_array_equal(photo.raw, np.rot90(grey, -1))
    np.testing.assert_array_equal(photo.rgb[..., 0], photo.raw)


def test_multipage_tiff_frames(tmp_path: Path) -> None:
    pages = [Image.fromarray(np.full((5, 6, 3), v, dtype=np.uint8)) for v in (10, 20, 30)]
    path = tmp_path / "m.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    assert read_photo(path).rgb[0, 0, 0] == 10
    photo = read_photo(path, frame=2)
    assert photo.rgb[0, 0, 0] == 30 and photo.frame == 2
    with pytest.raises(ItemReadError, match="frame 3 does not exist"):
        read_photo(path, frame=3)


def test_decompression_bomb_gets_a_clear_error(tmp_path: Path) -> None:
    # A 40,000 x 40,000 header with almost no data: must be refused before any decoding.
    path = _write_png(tmp_path / "bomb.png", np.zeros((1, 1), np.uint8), bit_depth=8, colour_type=0,
                      size=(40_000, 40_000))
    with pytest.raises(ImageTooLargeError) as info:
        read_photo(path)
    message = str(info.value)
    assert str(path) in message and "40000 x 40000" in message
    assert f"{DEFAULT_MAX_PIXELS / 1e6:g} megapixels" in message


def test_max_pixels_is_honoured_both_ways(tmp_path: Path) -> None:
    path = tmp_path / "s.png"
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(path)
    with pytest.raises(ImageTooLargeError, match="100 x 100"):
        read_photo(path, max_pixels=9_999)
    assert read_photo(path, max_pixels=10_000).shape == (100, 100)


def test_limit_above_pillows_own_is_allowed(tmp_path: Path) -> None:
    # Pillow refuses to open more than 2 * MAX_IMAGE_PIXELS; a caller may raise our limit past it.
    side = int((2 * Image.MAX_IMAGE_PIXELS) ** 0.5) + 10
    path = _write_png(tmp_path / "big.png", np.zeros((1, 1), np.uint8), bit_depth=8, colour_type=0,
                      size=(side, side))
    with pytest.raises(ItemReadError) as info:  # the header passes; the data is truncated
        read_photo(path, max_pixels=side * side)
    assert not isinstance(info.value, ImageTooLargeError)
    assert Image.MAX_IMAGE_PIXELS is not None  # Pillow's global limit is restored


@pytest.mark.parametrize("kind", ["png", "jpg"])
def test_truncated_files(tmp_path: Path, astronaut: np.ndarray, kind: str) -> None:
    path = tmp_path / f"t.{kind}"
    Image.fromarray(astronaut).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ItemReadError) as info:
        read_photo(path)
    assert str(path) in str(info.value) and "truncated" in str(info.value)


def test_zero_byte_text_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ItemReadError, match="empty"):
        read_photo(empty)
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n")
    with pytest.raises(UnsupportedFormatError, match="notes.png: not an image"):
        read_photo(text)
    with pytest.raises(ItemReadError, match="no such file"):
        read_photo(tmp_path / "missing.jpg")
    with pytest.raises(ItemReadError, match="not a file"):
        read_photo(tmp_path)


def test_list_photos_natural_order_and_filters(tmp_path: Path) -> None:
    for name in ["img10.png", "img2.JPG", "img1.tif", "readme.txt", ".hidden.png", "._img3.jpg"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.webp").write_bytes(b"x")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "b.png").write_bytes(b"x")
    names = [p.relative_to(tmp_path).as_posix() for p in list_photos(tmp_path)]
    assert names == ["img1.tif", "img2.JPG", "img10.png", "sub/a.webp"]
    assert [p.name for p in list_photos(tmp_path, recursive=False)] == ["img1.tif", "img2.JPG", "img10.png"]
    with pytest.raises(ItemReadError, match="no such folder"):
        list_photos(tmp_path / "nope")
    assert is_photo("x.JPEG") and not is_photo("x.txt") and ".webp" in PHOTO_SUFFIXES


def test_multipage_16bit_colour_tiff(tmp_path: Path) -> None:
    tifffile = pytest.importorskip("tifffile")
    pages = np.random.default_rng(3).integers(0, 65536, size=(2, 5, 6, 3)).astype(np.uint16)
    path = tmp_path / "mp16.tif"
    tifffile.imwrite(path, pages, photometric="rgb")
    np.testing.assert_array_equal(read_photo(path).raw, pages[0])
    np.testing.assert_array_equal(read_photo(path, frame=1).raw, pages[1])


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path: Path, astronaut: np.ndarray) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(astronaut).convert("CMYK").save(path, quality=95)
    photo = read_photo(path)
    assert photo.raw is None
    assert np.abs(photo.rgb.astype(int) - astronaut).mean() < 4


def test_bilevel_grey_alpha_and_float_images(tmp_path: Path) -> None:
    bits = np.array([[0, 1, 1], [1, 0, 0]], dtype=bool)
    Image.fromarray(bits).save(tmp_path / "b.png")
    photo = read_photo(tmp_path / "b.png")
    np.testing.assert_array_equal(photo.raw, bits)
    np.testing.assert_array_equal(photo.rgb[..., 2], bits.astype(np.uint8) * 255)

    la = np.zeros((2, 2, 2), dtype=np.uint8)
    la[..., 0] = 40
    la[0, :, 1] = 255
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    photo = read_photo(tmp_path / "la.png")
    np.testing.assert_array_equal(photo.raw, la)
    assert tuple(photo.rgb[0, 0]) == (40, 40, 40) and tuple(photo.rgb[1, 0]) == (255, 255, 255)

    values = np.array([[-1.5, 0.0], [2.5, np.nan]], dtype=np.float32)
    Image.fromarray(values, "F").save(tmp_path / "f.tif")
    photo = read_photo(tmp_path / "f.tif")
    np.testing.assert_array_equal(photo.raw, values)
    assert photo.rgb[..., 0].tolist() == [[0, 96], [255, 0]]  # min-max stretch, NaN shown black
