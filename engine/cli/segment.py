"""``maskwright segment``: pre-annotate photos (open-vocabulary CLIP) or volumes (MCANet).

Photos: ``maskwright segment --classes "cat; kitten, dog, sky" PHOTOS... --out OUT``.
Volumes: ``maskwright segment --model CHECKPOINT SERIES_DIR_OR_FILE --out OUT``.
The inputs decide: DICOM folders and NIfTI/NRRD/MHA files go to the medical engine, photos and
folders of photos to the open-vocabulary engine.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("segment", help="pre-annotate photos or volumes", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", type=Path, help="photos, folders, DICOM folders or volume files")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--classes", default="", help='class names, e.g. "cat; kitten, dog, sky" (photos)')
    p.add_argument("--model", default=None, help="catalog name or checkpoint file")
    p.add_argument("--strategy", default="naclip", help="dense CLIP strategy: naclip, sclip, clearclip, maskclip")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", default="auto", help="auto, fp32, bf16 or fp16")
    p.add_argument("--series", default=None, help="SeriesInstanceUID when a folder holds several series")
    return p


def run(args: argparse.Namespace) -> int:
    from engine.io.volumes import is_volume_source

    volumes = [p for p in args.inputs if is_volume_source(p)]
    if volumes and len(volumes) != len(args.inputs):
        raise SystemExit("maskwright segment: give either photos or volumes in one call, not both")
    if volumes:
        from engine.medical.cli import run_segment
    else:
        from engine.openvocab.cli import run_segment
    return run_segment(args)
