"""``maskwright segment --model CHECKPOINT SERIES_DIR_OR_FILE... --out OUT`` for volumes.

Called by :mod:`engine.cli.segment` when the inputs are volumes (DICOM folders or files, NIfTI,
NRRD, MetaImage). For each input it writes ``OUT/<name>.nii.gz`` (the label map on the volume's
geometry) and, when the source is DICOM, ``OUT/<name>.seg.dcm`` (a DICOM SEG referencing it).
``--model`` is an MCANet checkpoint file (``.safetensors``; an official mmseg ``.pth`` also
works) or the name of a catalog entry.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

from engine.errors import ModelError
from engine.items import Volume
from engine.jobs import Progress
from engine.medical.checkpoint import MCANetMeta, load_mcanet_checkpoint
from engine.medical.infer import InferenceOptions, segment
from engine.medical.mcanet import MCANet

__all__ = ["run_segment", "load_model_argument"]

_logger = logging.getLogger(__name__)


def load_model_argument(model: str | None) -> tuple[MCANet, MCANetMeta]:
    """The network and metadata that ``--model`` names: a checkpoint file or a catalog entry."""
    if not model:
        raise ModelError("segmenting volumes needs --model (an MCANet checkpoint file or catalog name)")
    path = Path(model).expanduser()
    if path.exists() or path.suffix in (".safetensors", ".pth", ".pt") or len(path.parts) > 1:
        return load_mcanet_checkpoint(path)  # WeightsError naming the file when it is absent
    from engine.models.catalog import default_catalog
    from engine.models.weights import WeightsManager

    catalog = default_catalog()
    entry = catalog.get(model)  # ModelError listing the known names when absent
    if entry.architecture != "mcanet":
        raise ModelError(f"{model!r} is a {entry.kind} model ({entry.architecture}), not an MCANet for volumes")
    loaded = catalog.load(model, WeightsManager(catalog))
    return loaded  # type: ignore[no-any-return]


def _stem(path: Path, volume: Volume) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "volume"
    return name


def _progress(label: str) -> Progress:
    def show(done: int, total: int, message: str) -> None:
        if total:
            print(f"\r{label}: {message} {done}/{total}", end="" if done < total else "\n",
                  file=sys.stderr, flush=True)

    return show


def run_segment(args: argparse.Namespace) -> int:
    """Segment every volume in ``args.inputs`` with ``args.model``; returns the exit status."""
    from engine.io.export import export_volume
    from engine.io.volumes import read_volume

    net, meta = load_model_argument(args.model)
    options = InferenceOptions(device=getattr(args, "device", "auto") or "auto",
                               precision=getattr(args, "precision", "auto") or "auto",
                               keep_probabilities=False)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for path in args.inputs:
        volume = read_volume(path, series=getattr(args, "series", None), progress=_progress(f"reading {path.name}"))
        result = segment(volume, net, meta=meta, options=options, progress=_progress(f"segmenting {path.name}"))
        stem = _stem(Path(path), volume)
        while stem in used:
            stem += "_"
        used.add(stem)
        written = [out_dir / f"{stem}.nii.gz"]
        export_volume("nifti", written[0], volume, result.label_map.data, result.label_map.labels)
        if volume.source_instances:
            written.append(out_dir / f"{stem}.seg.dcm")
            export_volume("dicom-seg", written[1], volume, result.label_map.data, result.label_map.labels,
                          algorithm=f"MCANet-{meta.variant.upper()}")
        present = result.label_map.present_ids()
        names = ", ".join(result.label_map.labels[i].name for i in present) or "nothing"
        print(f"{path}: {names} in {result.seconds:.1f} s -> {', '.join(str(w) for w in written)}")
    return 0
