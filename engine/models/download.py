"""Resumable, verified HTTP downloads of one file (no third-party client).

The bytes go to ``DEST.part`` beside the destination. An interrupted or cancelled transfer
leaves the ``.part`` file in place, and the next call asks the server only for the missing bytes
(HTTP ``Range``). The finished file is verified against its sha256 before it is renamed to
``DEST``; a mismatch deletes the ``.part`` file and raises :class:`~engine.errors.WeightsError`.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from engine.errors import Cancelled, WeightsError
from engine.fsutil import describe_os_error, fsync_dir
from engine.jobs import CancelToken, Progress, check_cancelled, report

__all__ = ["download_url", "sha256_file", "part_path"]

_logger = logging.getLogger(__name__)

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def part_path(dest: Path) -> Path:
    """The partial-download file that belongs to ``dest``."""
    return dest.with_name(dest.name + ".part")


def sha256_file(
    path: Path,
    *,
    chunk_size: int = 1 << 20,
    cancel: CancelToken | None = None,
    progress: Callable[[int], None] | None = None,
) -> str:
    """Hex sha256 of the file at ``path``, read in chunks.

    ``cancel`` is checked and ``progress(bytes_read)`` called after every chunk.
    """
    digest = hashlib.sha256()
    done = 0
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done)
            check_cancelled(cancel)
    return digest.hexdigest()


def _open(url: str, start: int, timeout: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": "maskwright"}
    if start > 0:
        headers["Range"] = f"bytes={start}-"
    request = urllib.request.Request(url, headers=headers)
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http/https only, checked)


def download_url(
    url: str,
    dest: str | Path,
    *,
    sha256: str | None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    chunk_size: int = 1 << 20,
    timeout: float = 30.0,
) -> Path:
    """Download ``url`` to ``dest``, resuming a previous partial transfer.

    Parameters
    ----------
    url
        ``http://`` or ``https://`` address of the file.
    dest
        Final path; its folder is created. The transfer writes ``dest.part`` first.
    sha256
        Expected hex digest; ``None`` skips verification (only for sources without one).
    progress
        Called as ``progress(bytes_done, bytes_total, message)``; ``bytes_total`` is 0 when the
        server does not say.
    cancel
        Checked after every chunk; a cancel raises :class:`~engine.errors.Cancelled` and keeps
        the ``.part`` file for a later resume.
    chunk_size, timeout
        Bytes per read, and seconds a socket may stay silent.

    Returns
    -------
    Path
        ``dest``, complete and verified.

    Raises
    ------
    WeightsError
        HTTP errors, dropped connections (the ``.part`` file is kept), a checksum mismatch (the
        ``.part`` file is deleted), a full disk.
    """
    dest = Path(dest)
    if not url.startswith(("http://", "https://")):
        raise WeightsError(f"cannot download {url!r}: only http and https addresses are supported", dest)
    part = part_path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        start = part.stat().st_size if part.exists() else 0
    except OSError as err:
        raise WeightsError(f"cannot prepare the download folder: {describe_os_error(err)}", dest) from err
    digest = hashlib.sha256()
    if start > 0:
        _logger.info("resuming %s at byte %d", url, start)
        with open(part, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    check_cancelled(cancel)
    try:
        response = _open(url, start, timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and start > 0:  # the part file already holds every byte
            response = None
        else:
            raise WeightsError(f"download of {url} failed: HTTP {err.code} {err.reason}", dest) from err
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise WeightsError(f"cannot reach {url}: {reason}", dest) from err

    done = start
    total = 0
    if response is not None:
        with response:
            status = response.status
            length = int(response.headers.get("Content-Length") or 0)
            if start > 0 and status == 206:
                match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
                if match is None or int(match.group(1)) != start:
                    raise WeightsError(f"the server answered a resume with a wrong range for {url}", dest)
                total = int(match.group(3)) if match.group(3) != "*" else 0
            else:  # 200: the whole file from byte 0 (the server ignored or was not sent a Range)
                if start > 0:
                    _logger.info("server ignored the resume request; restarting %s", url)
                done, digest = 0, hashlib.sha256()
                total = length
            expected_end = done + length if length else 0
            mode = "ab" if done > 0 else "wb"
            try:
                with open(part, mode) as f:
                    report(progress, done, total, f"downloading {dest.name}")
                    while True:
                        try:
                            chunk = response.read(chunk_size)
                        except (http.client.IncompleteRead, ConnectionError, socket.timeout) as err:
                            raise WeightsError(
                                f"the connection to {url} dropped after {done} of {total or '?'} bytes; "
                                "run the same download again to resume",
                                dest,
                            ) from err
                        if not chunk:
                            break
                        f.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        report(progress, done, total, f"downloading {dest.name}")
                        if cancel is not None and cancel.cancelled:
                            f.flush()
                            raise Cancelled(f"download cancelled after {done} bytes; run it again to resume", dest)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as err:
                raise WeightsError(f"cannot write the download: {describe_os_error(err)}", part) from err
            if expected_end and done < expected_end:
                raise WeightsError(
                    f"the connection to {url} dropped after {done} of {expected_end} bytes; "
                    "run the same download again to resume",
                    dest,
                )
    actual = digest.hexdigest()
    if sha256 is not None and actual != sha256.lower():
        part.unlink(missing_ok=True)
        raise WeightsError(
            f"checksum mismatch for {url}: expected sha256 {sha256.lower()}, got {actual}; "
            "the damaged download was deleted",
            dest,
        )
    try:
        os.replace(part, dest)
        fsync_dir(dest.parent)
    except OSError as err:
        raise WeightsError(f"cannot finish the download: {describe_os_error(err)}", dest) from err
    _logger.info("downloaded %s (%d bytes, sha256 %s)", dest, done, actual)
    return dest
