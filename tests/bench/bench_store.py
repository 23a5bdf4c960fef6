"""Mask save/load through the project store vs plain writers, for a large photo and a CT-sized volume.

Store save = checksum + mask file (temp file, fsync, rename, fsync folder) + one SQLite commit
(WAL, synchronous=FULL). Store load = decode + grid check + checksum verification. References,
measured in the same run on the same label maps: ``np.save``/``np.load`` (no compression, no
fsync), Pillow PNG at its default level (6), and SimpleITK's default ``.nii.gz`` write/read.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from engine.items import LabelSet, Photo, Volume
from engine.store import Project, Provenance
from tests.bench._table import best_of, print_table

PHOTO_SHAPE = (3000, 4000)
VOLUME_SHAPE = (300, 512, 512)


def blobs(shape: tuple[int, ...], count: int, *, seed: int) -> np.ndarray:
    """A realistic label map: ``count`` ellipses/ellipsoids of classes 1..4, each drawn in its bbox."""
    rng = np.random.default_rng(seed)
    out = np.zeros(shape, np.uint8)
    for k in range(count):
        radii = [rng.uniform(n / 12, n / 5) for n in shape]
        centre = [rng.uniform(r, n - r) for r, n in zip(radii, shape)]
        box = tuple(slice(max(0, int(c - r)), min(n, int(c + r) + 1)) for c, r, n in zip(centre, radii, shape))
        grids = np.ogrid[box]
        inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii)) <= 1.0
        out[box][inside] = 1 + k % 4
    return out


def _measure(project: Project, item_id: int, data: np.ndarray, folder: Path, reference: str,
             volume: Volume | None) -> list[list[object]]:
    person = Provenance.from_person("bench")
    repeat = 3
    save = best_of(lambda: project.save_annotation(item_id, data, provenance=person), repeat=repeat, warmup=1)
    size = project.latest_version(item_id).mask_file.stat().st_size  # type: ignore[union-attr]
    load = best_of(lambda: project.load_annotation(item_id), repeat=repeat, warmup=0)
    assert np.array_equal(project.load_annotation(item_id).data, data)
    rows: list[list[object]] = [["store (this)", save, load, size / 1e6]]

    npy = folder / "ref.npy"
    rows.append(["np.save / np.load", best_of(lambda: np.save(npy, data), repeat=repeat, warmup=0),
                 best_of(lambda: np.load(npy), repeat=repeat, warmup=0), npy.stat().st_size / 1e6])
    if reference == "png":
        png = folder / "ref.png"
        rows.append(["Pillow PNG, default level", best_of(lambda: Image.fromarray(data).save(png), repeat=repeat,
                                                          warmup=0),
                     best_of(lambda: np.asarray(Image.open(png)), repeat=repeat, warmup=0), png.stat().st_size / 1e6])
    else:
        import SimpleITK as sitk

        from engine.io.masks import volume_to_sitk

        nii = folder / "ref.nii.gz"
        image = volume_to_sitk(data, volume)  # type: ignore[arg-type]
        rows.append(["SimpleITK .nii.gz, default",
                     best_of(lambda: sitk.WriteImage(image, str(nii), True), repeat=repeat, warmup=0),
                     best_of(lambda: sitk.GetArrayFromImage(sitk.ReadImage(str(nii))), repeat=repeat, warmup=0),
                     nii.stat().st_size / 1e6])
    return rows


def main() -> None:
    photo_map = blobs(PHOTO_SHAPE, 6, seed=0)
    volume_map = blobs(VOLUME_SHAPE, 5, seed=1)
    with tempfile.TemporaryDirectory(prefix="bench_store_") as tmp:
        folder = Path(tmp)
        with Project.create(folder / "project", labels=LabelSet.from_text("a, b, c, d")) as project:
            photo = project.add_photo(Photo(np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (*PHOTO_SHAPE, 3)),
                                            source=folder / "photo.jpg"))
            volume = Volume(np.broadcast_to(np.zeros((), np.int16), VOLUME_SHAPE), spacing=(0.7, 0.7, 1.25),
                            source=folder / "series")
            vol_item = project.add_volume(volume)
            rows = _measure(project, photo.id, photo_map, folder, "png", None)
            print_table(f"Photo label map {PHOTO_SHAPE[1]}x{PHOTO_SHAPE[0]} uint8, 6 blobs",
                        ["writer", "save s", "load s", "file MB"], rows)
            rows = _measure(project, vol_item.id, volume_map, folder, "nifti", volume)
            print_table(f"Volume label map {VOLUME_SHAPE[2]}x{VOLUME_SHAPE[1]}x{VOLUME_SHAPE[0]} uint8, 5 blobs",
                        ["writer", "save s", "load s", "file MB"], rows)


if __name__ == "__main__":
    main()
