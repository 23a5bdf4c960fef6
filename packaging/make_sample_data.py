"""Build the data of the bundled sample project under resources/sample/ (run once; output committed).

- photos/: three public-domain / CC0 photos from scikit-image's bundled data
  (astronaut: NASA, public domain; chelsea: CC0, Stefan van der Walt; coffee: CC0, Rachel Michetti).
- ct_phantom/: a small synthetic CT series (96x96x24, 1.5 mm pixels, 3 mm slices, HU values) of an
  abdomen-like phantom: body, liver, spine, kidneys; written with pydicom, one file per slice,
  with window presets in the header. Made for the purpose; no patient data.

    python packaging/make_sample_data.py
"""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

OUT = Path(__file__).resolve().parents[1] / "resources" / "sample"
UID_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's root for generated UIDs


def copy_photos() -> None:
    import skimage.data

    src = Path(skimage.data.__file__).parent
    dst = OUT / "photos"
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("astronaut.png", "chelsea.png", "coffee.png"):
        shutil.copyfile(src / name, dst / name)


def phantom(nz: int = 24, ny: int = 96, nx: int = 96) -> np.ndarray:
    """HU values of a simple abdomen phantom, ``(z, y, x)`` int16."""
    z, y, x = np.meshgrid(np.linspace(-1, 1, nz), np.linspace(-1, 1, ny), np.linspace(-1, 1, nx), indexing="ij")
    rng = np.random.default_rng(7)
    hu = np.full((nz, ny, nx), -1000.0)
    body = (x / 0.9) ** 2 + (y / 0.7) ** 2 <= 1
    hu[body] = -80  # fat
    hu[(x / 0.8) ** 2 + (y / 0.6) ** 2 <= 1] = 40  # soft tissue
    liver = ((x + 0.35) / 0.35) ** 2 + ((y + 0.1) / 0.3) ** 2 + (z / 0.9) ** 2 <= 1
    hu[liver] = 60
    spine = (x / 0.12) ** 2 + ((y - 0.45) / 0.12) ** 2 <= 1
    hu[spine] = 700
    for cx in (-0.45, 0.45):
        kidney = ((x - cx) / 0.14) ** 2 + ((y - 0.3) / 0.2) ** 2 + (z / 0.5) ** 2 <= 1
        hu[kidney & ~liver] = 30
    hu[body] += rng.normal(0, 12, size=int(body.sum()))
    return np.round(hu).astype(np.int16)


def write_ct(volume: np.ndarray, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for f in folder.glob("*.dcm"):
        f.unlink()
    study, series, frame = (generate_uid(UID_ROOT) for _ in range(3))
    spacing, thickness = 1.5, 3.0
    nz, ny, nx = volume.shape
    now = datetime.datetime(2026, 1, 1, 12, 0, 0)
    for k in range(nz):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid(UID_ROOT)
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"slice{k:03d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientName, ds.PatientID = "Phantom^Sample", "MW-SAMPLE-1"
        ds.StudyDate = ds.SeriesDate = now.strftime("%Y%m%d")
        ds.StudyTime = ds.SeriesTime = now.strftime("%H%M%S")
        ds.Modality, ds.SeriesDescription, ds.SeriesNumber, ds.InstanceNumber = "CT", "Sample abdomen phantom", 1, k + 1
        ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "1", "", ""
        ds.Manufacturer = "Maskwright sample generator"
        ds.ImagePositionPatient = [-(nx - 1) * spacing / 2, -(ny - 1) * spacing / 2, k * thickness]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [spacing, spacing], thickness
        ds.Rows, ds.Columns = ny, nx
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.WindowCenter, ds.WindowWidth = [40, 400], [400, 1800]
        ds.WindowCenterWidthExplanation = ["ABDOMEN", "BONE"]
        ds.PixelData = (volume[k].astype(np.int32) + 1024).astype(np.uint16).tobytes()
        ds.save_as(folder / f"slice{k:03d}.dcm", enforce_file_format=True)


def main() -> None:
    copy_photos()
    write_ct(phantom(), OUT / "ct_phantom")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
