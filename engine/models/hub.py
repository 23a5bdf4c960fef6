"""Hugging Face hub files in the standard hub cache, downloaded resumably.

``huggingface_hub.hf_hub_download`` (2.x) writes each attempt to a process-unique temporary
file and deletes it on any error, so a cancelled or dropped transfer starts again from zero.
Here the hub is asked only for the file's metadata (``get_hf_file_metadata``: commit, etag,
size, which also honours ``HF_HUB_OFFLINE`` and mirrors); the bytes go through
:func:`engine.models.download.download_url` (``.part`` file, HTTP ``Range`` resume, progress,
cancel) straight into the cache's ``blobs/ETAG`` and are verified against the etag, which for
LFS files is their sha256. The snapshot link and ``refs/REVISION`` are then written exactly as
huggingface_hub writes them, so ``try_to_load_from_cache`` and open_clip find the file.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

from engine.errors import WeightsError
from engine.fsutil import atomic_write_bytes, describe_os_error
from engine.jobs import CancelToken, Progress
from engine.models.catalog import HubSource
from engine.models.download import download_url

__all__ = ["hub_cached", "hub_download", "hub_url", "repo_folder"]

_logger = logging.getLogger(__name__)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def hub_url(source: HubSource, endpoint: str | None = None) -> str:
    """The ``resolve`` address of a hub file (also what a person fetches by hand elsewhere)."""
    base = (endpoint or "https://huggingface.co").rstrip("/")
    return f"{base}/{source.repo_id}/resolve/{source.revision or 'main'}/{source.filename}"


def repo_folder(cache: Path, repo_id: str) -> Path:
    """``cache/models--org--name``: huggingface_hub's folder for a model repository."""
    return cache / ("models--" + repo_id.replace("/", "--"))


def hub_cached(source: HubSource, cache: Path) -> Path | None:
    """The cached file of ``source`` in the hub cache ``cache``, or ``None`` (never networks)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(source.repo_id, source.filename, cache_dir=cache, revision=source.revision)
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def _link(blob: Path, pointer: Path) -> None:
    """Point ``pointer`` at ``blob`` with a relative symlink (a copy where symlinks fail)."""
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.unlink(missing_ok=True)
    try:
        os.symlink(os.path.relpath(blob, pointer.parent), pointer)
    except OSError:
        shutil.copyfile(blob, pointer)


def hub_download(
    source: HubSource,
    cache: Path,
    *,
    endpoint: str | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Download ``source`` into the hub cache ``cache`` (resuming) and return the snapshot path.

    Raises
    ------
    WeightsError
        The hub is unreachable or offline, the file does not exist, the transfer dropped (run
        again to resume), or the bytes do not match the hub's sha256.
    Cancelled
        ``cancel`` was set; the partial blob stays for the next call.
    """
    from huggingface_hub import get_hf_file_metadata

    url = hub_url(source, endpoint)
    try:
        meta = get_hf_file_metadata(url, endpoint=endpoint)
    except Exception as err:  # offline mode, 404, auth, connection: all say the same to a person
        raise WeightsError(f"cannot get {source.filename} from {url}: {err}", cache) from err
    if not meta.commit_hash or not meta.etag:
        raise WeightsError(f"the hub did not describe {url} (no commit or etag)", cache)
    folder = repo_folder(cache, source.repo_id)
    blob = folder / "blobs" / meta.etag
    sha256 = meta.etag if _SHA256.match(meta.etag) else None
    if not blob.is_file():
        download_url(url, blob, sha256=sha256, progress=progress, cancel=cancel)
    pointer = folder / "snapshots" / meta.commit_hash / source.filename
    try:
        _link(blob, pointer)
        revision = source.revision or "main"
        if revision != meta.commit_hash:  # a branch or tag: record which commit it named
            ref = folder / "refs" / revision
            ref.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(ref, meta.commit_hash.encode(), error=WeightsError)
    except OSError as err:
        raise WeightsError(f"cannot write the hub cache: {describe_os_error(err)}", folder) from err
    _logger.info("hub file %s@%s -> %s", source.repo_id, meta.commit_hash[:8], pointer)
    return pointer
