"""Resumable verified downloads against a local HTTP server on 127.0.0.1 (no network)."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from engine.errors import Cancelled, WeightsError
from engine.jobs import CancelToken
from engine.models.download import download_url, part_path

PAYLOAD = bytes((i * 7 + i // 251) % 256 for i in range(300_000))
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@dataclass
class ServerState:
    """What the test server serves and what it saw."""

    payload: bytes = PAYLOAD
    honour_range: bool = True
    drop_after: int | None = None  # close the connection after this many body bytes, once
    ranges: list[str | None] = field(default_factory=list)


def _handler(state: ServerState) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            if self.path != "/weights.bin":
                self.send_error(404, "not here")
                return
            rng = self.headers.get("Range")
            state.ranges.append(rng)
            data = state.payload
            start = 0
            if rng and state.honour_range:
                start = int(rng.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if state.drop_after is not None:
                cut, state.drop_after = state.drop_after, None
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def server() -> Iterator[tuple[str, ServerState]]:
    state = ServerState()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/weights.bin", state
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_download_reports_progress_and_verifies(tmp_path: Path, server: tuple[str, ServerState]) -> None:
    url, state = server
    events: list[tuple[int, int]] = []
    dest = download_url(url, tmp_path / "w" / "weights.bin", sha256=SHA, chunk_size=65536,
                        progress=lambda d, t, m: events.append((d, t)))
    assert dest.read_bytes() == PAYLOAD
    assert not part_path(dest).exists()
    assert events[0][0] == 0 and events[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [d for d, _ in events] == sorted(d for d, _ in events)
    assert len(events) >= 5
    assert state.ranges == [None]


def test_cancel_then_resume_completes_with_a_range_request(tmp_path: Path, server: tuple[str, ServerState]) -> None:
    url, state = server
    dest = tmp_path / "weights.bin"
    cancel = CancelToken()

    def stop_after_two_chunks(done: int, total: int, message: str) -> None:
        if done >= 2 * 65536:
            cancel.cancel()

    with pytest.raises(Cancelled):
        download_url(url, dest, sha256=SHA, chunk_size=65536, progress=stop_after_two_chunks, cancel=cancel)
    partial = part_path(dest).stat().st_size
    assert 0 < partial < len(PAYLOAD) and not dest.exists()

    events: list[tuple[int, int]] = []
    download_url(url, dest, sha256=SHA, chunk_size=65536, progress=lambda d, t, m: events.append((d, t)))
    assert dest.read_bytes() == PAYLOAD
    assert state.ranges == [None, f"bytes={partial}-"]
    assert events[0] == (partial, len(PAYLOAD))  # progress resumes where it stopped


def test_bad_checksum_deletes_the_download(tmp_path: Path, server: tuple[str, ServerState]) -> None:
    url, _ = server
    dest = tmp_path / "weights.bin"
    with pytest.raises(WeightsError, match="checksum mismatch") as info:
        download_url(url, dest, sha256="0" * 64)
    assert info.value.path == dest
    assert not dest.exists() and not part_path(dest).exists()


def test_dropped_connection_keeps_the_part_and_resumes(tmp_path: Path, server: tuple[str, ServerState]) -> None:
    url, state = server
    state.drop_after = 100_000
    dest = tmp_path / "weights.bin"
    with pytest.raises(WeightsError, match="dropped") as info:
        download_url(url, dest, sha256=SHA, chunk_size=8192, timeout=5)
    assert "resume" in str(info.value)
    assert part_path(dest).stat().st_size == 100_000
    download_url(url, dest, sha256=SHA, chunk_size=8192)
    assert dest.read_bytes() == PAYLOAD
    assert state.ranges[-1] == "bytes=100000-"


def test_server_ignoring_range_restarts_from_zero(tmp_path: Path, server: tuple[str, ServerState]) -> None:
    url, state = server
    state.honour_range = False
    dest = tmp_path / "weights.bin"
    part_path(dest).write_bytes(b"garbage that is not the start of the file")
    download_url(url, dest, sha256=SHA)
    assert dest.read_bytes() == PAYLOAD


def test_complete_part_file_is_accepted_after_416(tmp_path: Path, server: tuple[str, ServerState]) -> None:
    url, state = server
    dest = tmp_path / "weights.bin"
    part_path(dest).write_bytes(PAYLOAD)
    download_url(url, dest, sha256=SHA)
    assert dest.read_bytes() == PAYLOAD and state.ranges == [f"bytes={len(PAYLOAD)}-"]


def test_http_errors_and_bad_schemes_are_weights_errors(tmp_path: Path, server: tuple[str, ServerState]) -> None:
    url, _ = server
    with pytest.raises(WeightsError, match="HTTP 404"):
        download_url(url.replace("weights.bin", "nothing.bin"), tmp_path / "x.bin", sha256=SHA)
    with pytest.raises(WeightsError, match="only http"):
        download_url("ftp://example.org/x.bin", tmp_path / "x.bin", sha256=SHA)
    with pytest.raises(WeightsError, match="cannot reach"):
        download_url("http://127.0.0.1:9/x.bin", tmp_path / "x.bin", sha256=SHA, timeout=2)
