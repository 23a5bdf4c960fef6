"""desktop/smoke.py from a checkout: the network guard, and the whole flow the bundle runs."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from desktop.smoke import NetworkGuard


def test_network_guard_refuses_remote_hosts_and_allows_loopback() -> None:
    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with NetworkGuard() as guard:
            import urllib.request

            body = urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/", timeout=10).read()
            with pytest.raises(OSError, match="refused by the smoke test"):
                socket.getaddrinfo("huggingface.co", 443)
            with pytest.raises(OSError, match="refused by the smoke test"):
                socket.create_connection(("203.0.113.5", 443), timeout=1)  # looked up first
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, \
                    pytest.raises(OSError, match="refused by the smoke test"):
                sock.connect(("203.0.113.7", 443))
        assert body == b"ok"
        assert guard.attempts == ["lookup huggingface.co", "lookup 203.0.113.5", "connect 203.0.113.7"]
        assert socket.getaddrinfo.__module__ == "socket"  # restored
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_smoke_flow_from_a_checkout(qapp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop import smoke

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # start-up must not need it
    import os

    cache_before = os.environ.get("XDG_CACHE_HOME")
    report = tmp_path / "report.json"
    # the training step (a minute of CPU) is checked on the bundle (tests/packaging/test_bundle.py)
    assert smoke.main(["--smoke-test", "--no-train", "--workdir", str(tmp_path / "work"), "--report", str(report)]) == 0
    data = json.loads(report.read_text(encoding="utf-8"))
    assert os.environ.get("XDG_CACHE_HOME") == cache_before  # the work folder's cache is not left behind
    assert data["ok"] and data["network_attempts"] == [] and not data["frozen"]
    steps = [s["step"] for s in data["steps"]]
    assert "pre-annotation with the bundled test model" in steps and "closed, reopened, edit found" in steps
    assert "missing model weights" in steps and "training process" not in steps
    assert not (Path(smoke.__file__).parents[1] / "resources" / "sample" / "project.sqlite").exists()
