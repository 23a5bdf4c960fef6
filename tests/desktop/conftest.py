"""GUI test helpers: a real MainWindow with its settings in a temporary folder, mouse drags, waits."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "desktop"


@pytest.fixture
def window(qtbot, tmp_path: Path) -> Iterator[object]:
    from desktop.main_window import MainWindow
    from desktop.settings import Settings

    w = MainWindow(Settings.load(tmp_path / "config"))
    w.ask = lambda text: True  # type: ignore[method-assign]
    qtbot.addWidget(w)
    w.resize(1280, 820)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()


def wait_idle(qtbot, window, timeout: int = 60000) -> None:
    """Wait until every background job has ended and its callback ran."""
    qtbot.waitUntil(lambda: not window.jobs.jobs, timeout=timeout)
    qtbot.wait(20)


def wait_for(qtbot, cond: Callable[[], object], timeout: int = 60000) -> None:
    qtbot.waitUntil(lambda: bool(cond()), timeout=timeout)


def drag(canvas, points: list[tuple[float, float]]) -> None:
    """A left-button drag through image points ``(row, col)`` on a canvas."""
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    def send(kind: QEvent.Type, pos: QPointF, button: Qt.MouseButton, buttons: Qt.MouseButton) -> None:
        ev = QMouseEvent(kind, pos, canvas.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(canvas, ev)

    left = Qt.MouseButton.LeftButton
    pts = [canvas.to_widget(r, c) for r, c in points]
    send(QEvent.Type.MouseButtonPress, pts[0], left, left)
    for p in pts[1:]:
        send(QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, left)
    send(QEvent.Type.MouseButtonRelease, pts[-1], left, Qt.MouseButton.NoButton)


def click(canvas, row: float, col: float, *, double: bool = False) -> None:
    from PySide6.QtCore import QEvent, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    pos = canvas.to_widget(row, col)
    left = Qt.MouseButton.LeftButton
    kinds = [QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease]
    if double:
        kinds.append(QEvent.Type.MouseButtonDblClick)
    for kind in kinds:
        buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else left
        QApplication.sendEvent(canvas, QMouseEvent(kind, pos, canvas.mapToGlobal(pos), left, buttons,
                                                   Qt.KeyboardModifier.NoModifier))


def screenshot(window, name: str) -> Path:
    """Save the window as test-artifacts/desktop/<name>.png for review."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    window.grab().save(str(path))
    return path


def sample_photo(folder: Path, name: str = "chelsea") -> Path:
    from PIL import Image
    from skimage import data

    path = folder / f"{name}.png"
    Image.fromarray(getattr(data, name)()).save(path)
    return path


def synthetic_ct(folder: Path, *, slices: int = 12, size: int = 48) -> Path:
    """A synthetic CT series written by pydicom (via the shared test helper when present)."""
    series = folder / "ct"
    series.mkdir(parents=True)
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    study, uid, frame = generate_uid(), generate_uid(), generate_uid()
    yy, xx = np.mgrid[:size, :size]
    for k in range(slices):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(series / f"s{k:03d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, uid, frame
        ds.Modality, ds.PatientName, ds.PatientID, ds.SeriesDescription = "CT", "Phantom", "P1", "synthetic"
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.ImagePositionPatient = [0.0, 0.0, float(k) * 2.0]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [1.0, 1.0]
        ds.SliceThickness = 2.0
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = -1024.0, 1.0
        ds.WindowCenter, ds.WindowWidth = 40.0, 400.0
        hu = np.full((size, size), -1000.0)
        hu[(yy - size // 2) ** 2 + (xx - size // 2) ** 2 < (size // 3) ** 2] = 40.0
        hu[(yy - size // 2) ** 2 + (xx - size // 2) ** 2 < (size // 8) ** 2] = 700.0
        ds.PixelData = (hu + 1024).astype(np.int16).tobytes()
        pydicom.dcmwrite(ds.filename, ds, enforce_file_format=True)
    return series


def open_sample_photo(qtbot, window, tmp_path: Path, classes: str = "cat") -> None:
    """A new project in ``tmp_path/proj`` with ``classes``, the chelsea photo open and every job done."""
    window.open_project(tmp_path / "proj", create=True)
    window.document.add_classes(classes)
    window.open_paths([sample_photo(tmp_path)])
    wait_for(qtbot, lambda: window.document.editor is not None)
    wait_idle(qtbot, window)
