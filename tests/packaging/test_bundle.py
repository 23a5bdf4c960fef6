"""The built bundle dist/Maskwright (``make package``): run only with ``-m package``.

Skipped where no bundle was built; ``make package`` builds it and runs the same checks.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.packaging._paths import BUNDLE, EXECUTABLE

pytestmark = [pytest.mark.package, pytest.mark.skipif(not EXECUTABLE.is_file(),
                                                      reason="no bundle: build it with `make package`")]


def _run(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env.pop("HF_HUB_OFFLINE", None)  # the bundle must not try the network by itself
    env.pop("PYTHONPATH", None)
    return subprocess.run([str(EXECUTABLE), *args], cwd=BUNDLE.parent, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_bundle_smoke_test(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    proc = _run(["--smoke-test", "--workdir", str(tmp_path / "work"), "--report", str(report)], timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["ok"] and data["frozen"] and data["network_attempts"] == []
    assert Path(data["executable"]).resolve() == EXECUTABLE.resolve()
    steps = {s["step"]: s["detail"] for s in data["steps"]}
    assert "missing model weights" in steps and "pre-annotation with the bundled test model" in steps
    assert steps["training process"].startswith("Maskwright trainers fit")  # the bundle trains with itself


def test_bundle_engine_cli() -> None:
    proc = _run(["engine", "--version"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = _run(["engine", "models", "list"])
    assert proc.returncode == 0 and "ViT-B-16" in proc.stdout, proc.stderr[-3000:]


def test_bundle_trainers_cli() -> None:
    proc = _run(["trainers", "--help"])
    assert proc.returncode == 0 and "fit" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]


def test_bundle_ships_resources_and_notices() -> None:
    internal = BUNDLE / "_internal"
    for rel in ("resources/models/tiny-test-clip/open_clip_model.safetensors", "resources/sample/LICENSES.md",
                "resources/icons/maskwright-256.png", "resources/styles/dark.qss", "resources/palettes/tab10.json",
                "open_clip/bpe_simple_vocab_16e6.txt.gz"):
        assert (internal / rel).is_file(), rel
    assert not list(internal.glob("resources/**/__pycache__"))
    notices = (BUNDLE / "THIRD_PARTY_LICENSES.txt").read_text(encoding="utf-8")
    for name in ("torch", "PySide6_Essentials", "open_clip_torch", "pydicom", "numpy", "Python"):
        assert f"\n{name} " in notices, name
