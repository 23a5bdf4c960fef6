"""packaging/entry.py dispatches one executable to the desktop app, the engine CLI or the trainers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.packaging._paths import PACKAGING, REPO, load_packaging_module

entry = load_packaging_module("entry")


def test_trainers_mode_runs_the_trainers_package_as_main(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_run_module(name: str, run_name: str, alter_sys: bool) -> None:
        calls.append((name, run_name, alter_sys, list(sys.argv)))
        raise SystemExit(3)

    monkeypatch.setattr(entry.runpy, "run_module", fake_run_module)
    monkeypatch.setattr(sys, "argv", ["/opt/Maskwright/Maskwright", "trainers", "fit", "--project", "p"])
    assert entry.main() == 3
    assert calls == [("trainers", "__main__", True, ["/opt/Maskwright/Maskwright trainers", "fit", "--project", "p"])]


def test_desktop_and_smoke_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    import desktop.app
    import desktop.smoke

    seen = []
    monkeypatch.setattr(desktop.app, "main", lambda argv: seen.append(("desktop", argv)) or 0)
    monkeypatch.setattr(desktop.smoke, "main", lambda argv: seen.append(("smoke", argv)) or 0)
    monkeypatch.setattr(sys, "argv", ["Maskwright", "/some/project"])
    assert entry.main() == 0
    monkeypatch.setattr(sys, "argv", ["Maskwright", "--smoke-test", "--report", "r.json"])
    assert entry.main() == 0
    assert seen == [("desktop", ["/some/project"]), ("smoke", ["--smoke-test", "--report", "r.json"])]


def test_engine_mode_is_the_maskwright_cli() -> None:
    proc = subprocess.run([sys.executable, str(PACKAGING / "entry.py"), "engine", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "usage: maskwright" in proc.stdout
    bad = subprocess.run([sys.executable, str(PACKAGING / "entry.py"), "engine", "no-such-command"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
