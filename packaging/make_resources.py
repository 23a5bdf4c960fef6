"""Build the generated files under resources/ (run once; the output is committed).

- ``icons/maskwright-<N>.png`` (16...512 px) and ``icons/maskwright.ico`` rendered from the
  hand-drawn ``icons/maskwright.svg`` with Qt's ``QSvgRenderer`` (offscreen);
- ``models/tiny-test-clip/``: a tiny open_clip ViT with RANDOM weights (seeded), in the layout
  open_clip's ``local-dir:`` loader reads (``open_clip_config.json`` + ``open_clip_model.safetensors``,
  fp16). It segments nothing useful: it exists so the packaged app's smoke test can run a whole
  pre-annotation without any download.

    QT_QPA_PLATFORM=offscreen python packaging/make_resources.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
TINY_SEED = 20261127
TINY_MODEL_CFG = {
    "embed_dim": 32,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "head_width": 32},
    # vocab 49408 keeps open_clip's stock BPE tokenizer (shipped inside open_clip, no download)
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 1, "layers": 1},
}
TINY_PREPROCESS_CFG = {
    "mean": [0.48145466, 0.4578275, 0.40821073],
    "std": [0.26862954, 0.26130258, 0.27577711],
    "interpolation": "bicubic",
    "resize_mode": "shortest",
}


def render_icons() -> None:
    """Render the SVG icon to square PNGs and a multi-size ``.ico``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - needed by QPainter
    folder = RESOURCES / "icons"
    renderer = QSvgRenderer(str(folder / "maskwright.svg"))
    if not renderer.isValid():
        raise SystemExit("icons/maskwright.svg is not a valid SVG")
    for size in ICON_SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        image.save(str(folder / f"maskwright-{size}.png"))
    big = Image.open(folder / "maskwright-256.png")
    big.save(folder / "maskwright.ico", sizes=[(s, s) for s in (16, 24, 32, 48, 64, 128, 256)])


def make_tiny_model() -> Path:
    """Write the tiny random-weight open_clip model folder; returns it."""
    import torch
    from open_clip.model import CLIP
    from safetensors.torch import save_file

    folder = RESOURCES / "models" / "tiny-test-clip"
    folder.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        model = CLIP(**json.loads(json.dumps(TINY_MODEL_CFG)))
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()
             if not k.endswith("attn_mask")}
    save_file(state, str(folder / "open_clip_model.safetensors"),
              metadata={"note": "random weights, seed %d: a test model, not a segmentation model" % TINY_SEED})
    config = {"model_cfg": TINY_MODEL_CFG, "preprocess_cfg": TINY_PREPROCESS_CFG}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return folder


def main() -> None:
    render_icons()
    folder = make_tiny_model()
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(f"icons rendered; tiny test model {size / 1e6:.1f} MB in {folder}")


if __name__ == "__main__":
    main()
