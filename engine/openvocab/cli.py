"""``maskwright segment`` for photos: typed classes in, PNG masks and a COCO JSON out.

``maskwright segment --classes "cat; kitten, dog, sky" PHOTOS... --out OUT [--model ...]
[--strategy ...]`` writes ``OUT/masks/<photo name>.png`` (class ids as pixel values, with a colour
palette when ids fit in 8 bits; :mod:`engine.io.masks`) and ``OUT/annotations.json`` (COCO,
:mod:`engine.io.export.coco`, category ids = class ids).

``--model`` is a catalog name (default ``ViT-B-16-quickgelu.openai``), ``local-dir:FOLDER``
(an open_clip folder), a weights file for ``ViT-B-16-quickgelu``, or one of our checkpoints: a
trained Cascade-CLIP head (run on the backbone it names, blended with the training-free
probabilities) or fine-tuned image-encoder weights (on the base they name); see
:func:`engine.openvocab.photo_model.load_photo_model`. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from engine.errors import ItemReadError, LabelError, MaskwrightError
from engine.items import LabelSet
from engine.openvocab.clip_model import ClipModel
from engine.openvocab.photo_model import load_clip_arg, load_photo_model
from engine.openvocab.pipeline import SegmentSettings
from engine.openvocab.predictor import OpenVocabPredictor
from engine.openvocab.text import TextEncoder

__all__ = ["run_segment", "collect_photos", "load_model_arg", "DEFAULT_MODEL"]

_logger = logging.getLogger(__name__)

DEFAULT_MODEL = "ViT-B-16-quickgelu.openai"


def collect_photos(inputs: list[Path]) -> list[tuple[Path, str]]:
    """``(path, export name)`` of every photo in ``inputs`` (files, or folders searched recursively).

    Export names are relative to the folder given (file inputs: the bare file name) and made
    unique by a numeric suffix.
    """
    from engine.io.photos import is_photo, list_photos

    found: list[tuple[Path, str]] = []
    for item in inputs:
        if item.is_dir():
            found += [(p, p.relative_to(item).as_posix()) for p in list_photos(item)]
        elif item.is_file():
            if not is_photo(item):
                raise ItemReadError("not a photo Maskwright can read", item)
            found.append((item, item.name))
        else:
            raise ItemReadError("no such file or folder", item)
    seen: set[str] = set()
    out = []
    for path, name in found:
        unique, k = name, 1
        while unique.casefold() in seen:
            stem, dot, suffix = name.rpartition(".")
            unique = f"{stem}_{k}.{suffix}" if dot else f"{name}_{k}"
            k += 1
        seen.add(unique.casefold())
        out.append((path, unique))
    return out


def load_model_arg(model: str | None, *, device: str = "cpu", weights_root: str | Path | None = None) -> ClipModel:
    """The plain dense CLIP named on the command line (no head; see
    :func:`~engine.openvocab.photo_model.load_clip_arg`)."""
    return load_clip_arg(model or DEFAULT_MODEL, device=device, weights_root=weights_root)


def _text_cache_dir() -> Path:
    from engine.models.weights import default_root

    return default_root() / "text-embeddings"


def run_segment(args: argparse.Namespace) -> int:
    """Segment the photos of ``args.inputs`` with ``args.classes``; returns the exit status."""
    from engine.io.export._common import PhotoExportEntry
    from engine.io.export.coco import write_coco
    from engine.io.masks import write_mask_png
    from engine.io.photos import read_photo
    from engine.models.device import choose_device

    labels = LabelSet.from_text(args.classes or "")
    if len(labels) == 0:
        raise LabelError('no class names: give --classes, e.g. --classes "cat; kitten, dog, sky"')
    photos = collect_photos(list(args.inputs))
    if not photos:
        raise ItemReadError("no photos found", args.inputs[0] if args.inputs else None)
    try:
        device = choose_device(getattr(args, "device", "auto") or "auto").device
        settings = SegmentSettings(strategy=args.strategy or "naclip", precision=getattr(args, "precision", "auto") or "auto")
    except ValueError as err:
        raise MaskwrightError(str(err)) from err
    model = load_photo_model(args.model or DEFAULT_MODEL, device=str(device))
    if model.checkpoint is not None:
        print(f"using checkpoint {model.checkpoint}" + (" (Cascade-CLIP head)" if model.head is not None else ""))
    text = TextEncoder(model.clip, cache_dir=_text_cache_dir())
    predictor = OpenVocabPredictor.from_photo_model(model, settings, text_encoder=text)
    out = Path(args.out)
    masks_dir = out / "masks"
    masks_dir.mkdir(parents=True, exist_ok=True)
    palette = labels.palette() if labels.dtype() == "uint8" else None
    entries: list[PhotoExportEntry] = []
    for k, (path, name) in enumerate(photos, 1):
        t0 = time.perf_counter()
        photo = read_photo(path)
        predictor.set_image(photo)
        seg = predictor.predict(labels)
        predictor.reset_image()
        mask_path = masks_dir / (name.rpartition(".")[0] or name)
        mask_path = mask_path.with_name(mask_path.name + ".png")
        mask_path.parent.mkdir(parents=True, exist_ok=True)
        write_mask_png(mask_path, seg.label_map.data, palette=palette)
        entries.append(PhotoExportEntry(name, photo.shape, seg.label_map.data))
        print(f"[{k}/{len(photos)}] {path} -> {mask_path} ({time.perf_counter() - t0:.1f} s)", flush=True)
    result = write_coco(out, entries, labels)
    print(f"wrote {len(entries)} masks in {masks_dir} and {', '.join(str(f) for f in result.files)}")
    return 0
