"""Photo reading and photo exports on a 4000x3000 photo / label map, against plain references.

References measured in the same run: Pillow's ``Image.open(...).convert("RGB")`` for reading;
pycocotools' ``encode`` of each class mask for COCO RLE; scikit-image's ``find_contours`` (the
usual way to get polygons, not exact) for polygons. The fidelity column is the IoU of the
polygons rasterised back by pycocotools against the true masks (1.0 = exact).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from engine.io.export import PhotoExportEntry, export_photos
from engine.io.photos import read_photo
from engine.items import LabelSet
from tests.bench._table import best_of, print_table

H, W = 3000, 4000


def _label_map() -> np.ndarray:
    """Five classes of smooth blobs with holes, the kind of map a person corrects."""
    yy, xx = np.ogrid[:H, :W]
    data = np.zeros((H, W), dtype=np.uint8)
    rng = np.random.default_rng(0)
    for k in range(40):
        cy, cx, r = rng.integers(0, H), rng.integers(0, W), rng.integers(60, 400)
        wobble = 1 + 0.15 * np.sin(np.arctan2(yy - cy, xx - cx) * rng.integers(3, 9))
        d = np.hypot(yy - cy, xx - cx) / wobble
        data[d < r] = 1 + k % 5
        data[d < r // 3] = 0
    return data


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / max(1, np.logical_or(a, b).sum()))


def _skimage_polygons(data: np.ndarray) -> dict[int, list[list[float]]]:
    from skimage import measure

    out: dict[int, list[list[float]]] = {}
    for class_id in range(1, 6):
        padded = np.pad(data == class_id, 1).astype(np.uint8)
        contours = measure.find_contours(padded, 0.5)
        # (row, col) of a padded array -> COCO (x, y) corner coordinates
        out[class_id] = [(c[:, ::-1] - 1 + 0.5).ravel().tolist() for c in contours if len(c) >= 3]
    return out


def _coco_iou(data: np.ndarray, polys: dict[int, list[list[float]]]) -> float:
    ious = []
    for class_id, p in polys.items():
        rles = mask_utils.frPyObjects(p, H, W)
        back = mask_utils.decode(mask_utils.merge(rles, intersect=0)).astype(bool)
        ious.append(_iou(back, data == class_id))
    return min(ious)


def main() -> None:
    data = _label_map()
    labels = LabelSet.from_text("a, b, c, d, e")
    entries = [PhotoExportEntry("photo.jpg", (H, W), data)]
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        rgb = np.random.default_rng(1).integers(0, 255, size=(H, W, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(out / "p.jpg", quality=90)
        ours = best_of(lambda: read_photo(out / "p.jpg"), repeat=3)
        ref = best_of(lambda: np.asarray(Image.open(out / "p.jpg").convert("RGB")), repeat=3)
        rows.append(["read_photo 4000x3000 JPEG", ours, "Pillow open+convert", ref, "-"])

        ours = best_of(lambda: export_photos("coco", out / "rle", entries, labels), repeat=2)
        ref = best_of(lambda: [mask_utils.encode(np.asfortranarray((data == k).astype(np.uint8)))
                               for k in range(1, 6)], repeat=2)
        rows.append(["COCO RLE export", ours, "pycocotools encode only", ref, "exact"])

        ours = best_of(lambda: export_photos("coco", out / "poly", entries, labels, encoding="polygon"), repeat=1)
        import json

        doc = json.loads((out / "poly" / "annotations.json").read_text())
        polys = {a["category_id"]: a["segmentation"] for a in doc["annotations"]}
        ref_polys = _skimage_polygons(data)
        ref = best_of(lambda: _skimage_polygons(data), repeat=1)
        rows.append(["COCO polygon export", ours, "skimage find_contours", ref,
                     f"IoU ours {_coco_iou(data, polys):.4f} / ref {_coco_iou(data, ref_polys):.4f}"])

        ours = best_of(lambda: export_photos("yolo", out / "yolo", entries, labels), repeat=1)
        rows.append(["YOLO export", ours, "skimage find_contours", ref, "-"])
        ours = best_of(lambda: export_photos("png", out / "png", entries, labels), repeat=2)
        ref = best_of(lambda: Image.fromarray(data).save(out / "ref.png"), repeat=2)
        rows.append(["indexed PNG export", ours, "Pillow PNG save (level 6)", ref, "exact"])
    print_table("Photo read and exports (seconds, best of runs)",
                ["what", "ours s", "reference", "ref s", "fidelity"], rows)


if __name__ == "__main__":
    main()
