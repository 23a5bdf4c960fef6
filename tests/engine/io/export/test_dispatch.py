"""The export registry and dispatchers, and what every writer shares: names, full disk, cancel."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.errors import Cancelled, ExportError
from engine.io.export import (
    FORMATS, ExportFormat, ExportRegistry, PhotoExportEntry, export_photos, export_volume, format_names,
)
from engine.items import LabelSet, Volume
from engine.jobs import CancelToken

PHOTO_FORMATS = ["png", "coco", "voc", "yolo"]


def test_registry_lists_every_format() -> None:
    assert format_names() == ["png", "coco", "voc", "yolo", "nifti", "dicom-seg"]
    assert format_names("photo") == PHOTO_FORMATS
    assert format_names("volume") == ["nifti", "dicom-seg"]
    assert FORMATS.get("COCO").options == ("encoding", "instances", "file_name")
    assert "dicom-seg" in FORMATS and "mesh" not in FORMATS
    registry = ExportRegistry()
    registry.register(ExportFormat("x", "photo", FORMATS.get("png").writer, ""))
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(ExportFormat("x", "photo", FORMATS.get("png").writer, ""))


def test_dispatch_errors(tmp_path: Path, labels: LabelSet) -> None:
    with pytest.raises(ExportError, match=r"unknown export format 'mesh' \(known: png, coco"):
        export_photos("mesh", tmp_path, [], labels)
    with pytest.raises(ExportError, match="use export_volume"):
        export_photos("nifti", tmp_path, [], labels)
    with pytest.raises(ExportError, match="use export_photos"):
        export_volume("voc", tmp_path / "v", Volume(np.zeros((1, 2, 2))), np.zeros((1, 2, 2), np.uint8), labels)
    with pytest.raises(ExportError, match="format 'yolo' has no option encoding"):
        export_photos("yolo", tmp_path, [], labels, encoding="rle")
    with pytest.raises(ExportError, match="no classes"):
        export_photos("png", tmp_path, [], LabelSet())


@pytest.mark.parametrize("fmt", ["png", "voc", "yolo"])  # COCO writes one JSON and only records the names
def test_unsafe_and_clashing_names(tmp_path: Path, labels: LabelSet, fmt: str) -> None:
    with pytest.raises(ExportError, match=r"\.\./evil\.png: an image name must be a relative path"):
        export_photos(fmt, tmp_path / "out", [PhotoExportEntry("../evil.png", (2, 2))], labels)
    clash = [PhotoExportEntry("a.jpg", (2, 2)), PhotoExportEntry("A.png", (2, 2))]
    with pytest.raises(ExportError, match="both 'a.jpg' and 'A.png' would be written"):
        export_photos(fmt, tmp_path / "out", clash, labels)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt", PHOTO_FORMATS)
def test_progress_and_cancel(tmp_path: Path, entries: list[PhotoExportEntry], labels: LabelSet, fmt: str) -> None:
    calls: list[tuple[int, int, str]] = []
    export_photos(fmt, tmp_path / "a", entries, labels, progress=lambda d, t, m: calls.append((d, t, m)))
    assert [c[:2] for c in calls] == [(1, 3), (2, 3), (3, 3)]
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        export_photos(fmt, tmp_path / "b", entries, labels, cancel=token)
    assert not [p for p in tmp_path.joinpath("b").rglob("*") if p.is_file()]


def _no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.rglob(".*tmp-*")]


@pytest.mark.parametrize("fmt", PHOTO_FORMATS)
def test_full_disk_leaves_no_partial_file(tmp_path: Path, entries: list[PhotoExportEntry], labels: LabelSet,
                                          fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    first = export_photos(fmt, out, entries, labels)  # a complete earlier export
    before = {p: p.read_bytes() for p in first.files}
    real_fsync = os.fsync

    def full(fd: int) -> None:  # the data went into the page cache; flushing it finds no space
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("engine.fsutil.os.fsync", full)
    other = [PhotoExportEntry(e.name, e.size, None) for e in entries]
    with pytest.raises(ExportError, match="could not write: the disk is full") as info:
        export_photos(fmt, out, other, labels)
    assert info.value.path in first.files  # names the file it was writing
    monkeypatch.setattr("engine.fsutil.os.fsync", real_fsync)
    assert {p: p.read_bytes() for p in first.files} == before  # earlier files intact
    assert _no_temporaries(out)


def test_full_disk_during_png_encoding(tmp_path: Path, entries: list[PhotoExportEntry], labels: LabelSet,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    real_save = Image.Image.save

    def save_half(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        real_save(self, fp, *args, **kwargs)
        Path(str(fp)).write_bytes(Path(str(fp)).read_bytes()[:20])  # a partial file on disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", save_half)
    with pytest.raises(ExportError, match=r"img1\.png: could not write: the disk is full"):
        export_photos("png", tmp_path, entries, labels)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == []


def test_full_disk_during_volume_exports(tmp_path: Path, labels: LabelSet, monkeypatch: pytest.MonkeyPatch) -> None:
    volume = Volume(np.zeros((2, 4, 4), np.int16))
    data = np.zeros((2, 4, 4), np.uint8)
    data[0, 1:3, 1:3] = 1

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("engine.fsutil.os.fsync", full)
    with pytest.raises(ExportError, match=r"v\.nii\.gz: could not write: the disk is full"):
        export_volume("nifti", tmp_path / "v.nii.gz", volume, data, labels)
    assert list(tmp_path.iterdir()) == []


def test_full_disk_while_saving_a_dicom_seg(tmp_path: Path, labels: LabelSet, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydicom.dataset import Dataset

    from engine.items import SourceInstance
    from tests.engine.io.dicom_synth import write_series

    series = write_series(tmp_path / "ct", shape=(3, 16, 16))
    volume = Volume(series.stored.astype(np.float32), spacing=series.spacing, origin=series.origin,
                    source_instances=tuple(SourceInstance(p) for p in series.paths))
    data = np.zeros(volume.shape, np.uint8)
    data[1, 4:9, 4:9] = 3
    real_save = Dataset.save_as

    def save_half(self: Dataset, filename: object, *args: object, **kwargs: object) -> None:
        real_save(self, filename, *args, **kwargs)
        Path(str(filename)).write_bytes(Path(str(filename)).read_bytes()[:100])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Dataset, "save_as", save_half)
    out = tmp_path / "seg"
    out.mkdir()
    with pytest.raises(ExportError, match=r"seg\.dcm: could not write: the disk is full"):
        export_volume("dicom-seg", out / "seg.dcm", volume, data, labels)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("fmt", PHOTO_FORMATS)
def test_lazy_label_maps(tmp_path: Path, entries: list[PhotoExportEntry], labels: LabelSet, fmt: str) -> None:
    loaded: list[str] = []

    def loader(entry: PhotoExportEntry):  # noqa: ANN202
        def load() -> np.ndarray:
            loaded.append(entry.name)
            return entry.label_data()
        return load

    lazy = [PhotoExportEntry(e.name, e.size, loader(e)) for e in entries]
    eager = export_photos(fmt, tmp_path / "eager", entries, labels)
    result = export_photos(fmt, tmp_path / "lazy", lazy, labels)
    assert loaded == [e.name for e in entries]  # each mask loaded once, in order
    for a, b in zip(eager.files, result.files):
        if a.name != "annotations.json":  # COCO records a creation time
            assert a.read_bytes() == b.read_bytes()
    wrong = [PhotoExportEntry("w.png", (3, 3), lambda: np.zeros((3, 4), np.uint8))]
    with pytest.raises(ExportError, match=r"w\.png: the mask is \(3, 4\) but the image is \(3, 3\)"):
        export_photos(fmt, tmp_path / "w", wrong, labels)
    floats = [PhotoExportEntry("f.png", (3, 3), lambda: np.zeros((3, 3), np.float32))]
    with pytest.raises(ExportError, match=r"f\.png: a label map must be a uint8 or uint16 array, got float32"):
        export_photos(fmt, tmp_path / "f", floats, labels)
