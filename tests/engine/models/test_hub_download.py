"""Hub downloads through huggingface_hub against a fake hub on 127.0.0.1 (no network):
progress, cancel mid-way, resume with a Range request, the file lands in the hub cache."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import pytest

from engine.errors import Cancelled, WeightsError
from engine.jobs import CancelToken
from engine.models.catalog import default_catalog
from engine.models.weights import WeightsManager

DATA = bytes(range(250)) * 12_000  # 3 MB: three 1 MiB chunks
SHA = hashlib.sha256(DATA).hexdigest()
REV = "b" * 40
NAME = "ViT-B-16-quickgelu.openai"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # this test's hub is local
    seen: list[tuple[str, str | None]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _headers(self, status: int, length: int, start: int | None = None) -> None:
            self.send_response(status)
            self.send_header("X-Repo-Commit", REV)
            self.send_header("ETag", f'"{SHA}"')
            self.send_header("Content-Length", str(length))
            if start is not None:
                self.send_header("Content-Range", f"bytes {start}-{len(DATA) - 1}/{len(DATA)}")
            self.end_headers()

        def do_HEAD(self) -> None:  # noqa: N802 (http.server API)
            seen.append(("HEAD", None))
            if not self.path.endswith("/timm/vit_base_patch16_clip_224.openai/resolve/main/open_clip_model.safetensors"):
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._headers(200, len(DATA))

        def do_GET(self) -> None:  # noqa: N802
            rng = self.headers.get("Range")
            seen.append(("GET", rng))
            start = int(rng.split("=")[1].split("-")[0]) if rng else 0
            self._headers(206 if rng else 200, len(DATA) - start, start if rng else None)
            self.wfile.write(DATA[start:])

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_hub_download_progress_cancel_and_resume(tmp_path: Path, hub: tuple[str, list]) -> None:
    endpoint, seen = hub
    manager = WeightsManager(default_catalog(), tmp_path, offline=False, hub_endpoint=endpoint)
    cancel = CancelToken()
    events: list[tuple[int, int]] = []

    def progress(done: int, total: int, message: str) -> None:
        events.append((done, total))
        if done >= 1_000_000:
            cancel.cancel()

    with pytest.raises(Cancelled):
        manager.download(NAME, progress=progress, cancel=cancel)
    assert not manager.is_local(NAME)
    assert events[-1][1] == len(DATA) and 0 < events[-1][0] < len(DATA)
    gets = [r for m, r in seen if m == "GET"]
    assert gets == [None]
    partial = events[-1][0]

    events.clear()
    path = manager.download(NAME, progress=lambda d, t, m: events.append((d, t)))
    assert path.read_bytes() == DATA and events[-1] == (len(DATA), len(DATA))
    assert [r for m, r in seen if m == "GET"] == [None, f"bytes={partial}-"]
    assert events[0][0] == partial
    # it is now in the hub cache layout and found offline
    offline = WeightsManager(default_catalog(), tmp_path, offline=True)
    assert offline.ensure_local(NAME) == path
    assert f"snapshots/{REV}/open_clip_model.safetensors" in path.as_posix()


def test_hub_errors_are_weights_errors(tmp_path: Path, hub: tuple[str, list]) -> None:
    endpoint, _ = hub
    manager = WeightsManager(default_catalog(), tmp_path, offline=False, hub_endpoint=endpoint)
    with pytest.raises(WeightsError, match="cannot get open_clip_model.safetensors from .*laion"):
        manager.download("ViT-B-16.laion2b_s34b_b88k")
