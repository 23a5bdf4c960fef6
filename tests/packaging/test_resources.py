"""The data under resources/: palettes, styles, the icon and the bundled test model."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import resources
from engine.items import default_color

HEX = re.compile(r"^#[0-9a-f]{6}$")


def _rgb(text: str) -> tuple[int, int, int]:
    return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)


@pytest.mark.parametrize("name", ["tab10", "okabe_ito", "anatomy"])
def test_palettes_are_valid(name: str) -> None:
    data = json.loads(resources.path(f"palettes/{name}.json").read_text(encoding="utf-8"))
    assert data["name"] == name and data["description"] and data["licence"]
    colors = list(data["colors"]) + list(data.get("by_name", {}).values())
    assert len(data["colors"]) >= 8 and all(HEX.match(c) for c in colors), colors
    assert all(k == k.lower().strip() for k in data.get("by_name", {}))
    assert len(set(data["colors"])) == len(data["colors"])


def test_tab10_palette_is_the_engine_default() -> None:
    data = json.loads(resources.path("palettes/tab10.json").read_text(encoding="utf-8"))
    assert [_rgb(c) for c in data["colors"]] == [default_color(i) for i in range(1, 11)]


@pytest.mark.parametrize("name", ["light", "dark"])
def test_styles_parse_in_qt(qapp, name: str) -> None:
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler
    from PySide6.QtWidgets import QPushButton

    messages: list[str] = []
    previous = qInstallMessageHandler(lambda kind, ctx, msg: messages.append(msg) if kind != QtMsgType.QtDebugMsg else None)
    try:
        button = QPushButton("x")
        button.setStyleSheet(resources.path(f"styles/{name}.qss").read_text(encoding="utf-8"))
        button.ensurePolished()  # parses the sheet
        good = [m for m in messages if "parse" in m.lower()]
        # the check can fail: a sheet Qt cannot parse gives "Could not parse stylesheet of object ..."
        bad = QPushButton("y")
        bad.setStyleSheet("QPushButton { color: ")
        bad.ensurePolished()
        broken = [m for m in messages if "parse" in m.lower()]
    finally:
        qInstallMessageHandler(previous)
    assert good == [] and len(broken) >= 1, (good, broken)


def test_icon_renders_and_png_sizes_match(qapp) -> None:
    from PIL import Image
    from PySide6.QtSvg import QSvgRenderer

    assert QSvgRenderer(str(resources.path("icons/maskwright.svg"))).isValid()
    for size in (16, 32, 48, 64, 128, 256, 512):
        img = Image.open(resources.path(f"icons/maskwright-{size}.png"))
        assert img.size == (size, size) and img.mode == "RGBA"
        alpha = np.asarray(img)[..., 3]
        assert alpha[0, 0] == 0 and alpha[size // 2, size // 2] == 255  # transparent corners, opaque middle
    ico = Image.open(resources.path("icons/maskwright.ico"))
    assert (256, 256) in ico.info["sizes"] and (16, 16) in ico.info["sizes"]


def test_test_model_is_small_and_loads_from_its_folder() -> None:
    from safetensors.torch import load_file

    from engine.openvocab.cli import load_model_arg

    folder = resources.path("models/tiny-test-clip")
    files = {p.name: p.stat().st_size for p in folder.iterdir()}
    assert set(files) == {"open_clip_config.json", "open_clip_model.safetensors"}
    assert sum(files.values()) < 5_000_000
    clip = load_model_arg(f"local-dir:{folder}")
    assert clip.patch_size == 8 and clip.native_grid == (4, 4) and clip.embed_dim == 32
    stored = load_file(str(folder / "open_clip_model.safetensors"))
    loaded = clip.model.state_dict()
    # the weights are the file's (fp16 values), not a fresh random draw
    for key in ("visual.conv1.weight", "token_embedding.weight", "text_projection"):
        assert torch_equal(loaded[key], stored[key].float()), key


def torch_equal(a, b) -> bool:  # noqa: ANN001 - tensors
    return bool((a == b).all())
