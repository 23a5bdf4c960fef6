"""``maskwright models ...`` through engine.cli.main (offline; a local server for the download)."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import engine.cli
import engine.models.catalog as catalog_mod
from engine.cli import main
from engine.models.catalog import ModelEntry, UrlSource


@pytest.fixture(autouse=True)
def _only_models_command(monkeypatch: pytest.MonkeyPatch) -> None:
    # test this command on its own, whatever state the other command modules are in
    monkeypatch.setattr(engine.cli, "COMMAND_MODULES", ("engine.cli.models",))


def _weights(path: Path) -> Path:
    save_file({"w": torch.ones(8)}, str(path))
    return path


def test_list_json_shows_builtins_and_what_is_local(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--cache-dir", str(tmp_path), "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["ViT-B-16-quickgelu.openai"]["local"] is False
    assert rows["ViT-B-16.laion2b_s34b_b88k"]["licence"] == "MIT"


def test_list_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--cache-dir", str(tmp_path), "list"]) == 0
    assert "ViT-L-14-quickgelu.openai" in capsys.readouterr().out


def test_import_path_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache"
    src = _weights(tmp_path / "file.safetensors")
    name = "ViT-B-16.laion2b_s34b_b88k"
    assert main(["models", "--cache-dir", str(cache), "path", name]) == 2
    err = capsys.readouterr().err
    assert f"maskwright models download {name}" in err and f"maskwright models import FILE --name {name}" in err
    assert main(["models", "--cache-dir", str(cache), "import", str(src), "--name", name]) == 0
    imported = Path(capsys.readouterr().out.strip())
    assert imported.read_bytes() == src.read_bytes() and imported.is_relative_to(cache)
    assert main(["models", "--cache-dir", str(cache), "path", name]) == 0
    assert capsys.readouterr().out.strip() == str(imported)
    assert main(["models", "--cache-dir", str(cache), "remove", name]) == 0
    assert "removed 1 file" in capsys.readouterr().out
    assert not imported.exists()


def test_import_of_unknown_file_needs_a_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _weights(tmp_path / "mystery.safetensors")
    assert main(["models", "--cache-dir", str(tmp_path / "c"), "import", str(src)]) == 2
    err = capsys.readouterr().err
    assert "mystery.safetensors" in err and "--name" in err


def test_download_from_a_local_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    served = tmp_path / "served"
    served.mkdir()
    data = _weights(served / "w.safetensors").read_bytes()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(served), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/w.safetensors"
    real_default = catalog_mod.default_catalog

    def with_remote() -> catalog_mod.Catalog:
        cat = real_default()
        cat.register(ModelEntry(name="tiny.remote", kind="photo", architecture="open_clip",
                                source=UrlSource(url, hashlib.sha256(data).hexdigest(), "w.safetensors"),
                                size_bytes=len(data)))
        return cat

    monkeypatch.setattr("engine.cli.models.default_catalog", with_remote)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    try:
        assert main(["models", "--cache-dir", str(tmp_path / "cache"), "download", "tiny.remote"]) == 0
    finally:
        httpd.shutdown()
        httpd.server_close()
    path = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert path.read_bytes() == data
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["models", "--cache-dir", str(tmp_path / "cache2"), "download", "tiny.remote"]) == 2
    assert "offline" in capsys.readouterr().err
