"""The one weights manager: where model files live, and how they get there.

Layout under the root (default ``platformdirs.user_cache_dir("maskwright")``, or any folder the
caller passes)::

    ROOT/hub/                      Hugging Face hub cache (models--org--name/snapshots/REV/FILE),
                                   filled resumably by :mod:`engine.models.hub`
    ROOT/files/NAME/FILE           URL downloads and imported files, one folder per catalog name

Nothing downloads behind the person's back: :meth:`WeightsManager.ensure_local` only finds
files, and a miss raises :class:`~engine.errors.WeightsError` naming the missing file and the
exact ``maskwright models download NAME`` / ``maskwright models import FILE --name NAME`` command.
Downloads happen only in :meth:`WeightsManager.download` (or ``ensure_local(...,
allow_download=True)``), report progress, can be cancelled and resume. Offline (``offline=True``
or ``HF_HUB_OFFLINE=1`` at call time) a miss fails at once, without network retries.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.errors import WeightsError
from engine.fsutil import atomic_path, describe_os_error
from engine.jobs import CancelToken, Progress, check_cancelled, report
from engine.models.catalog import Catalog, FileSource, HubSource, ModelEntry, UrlSource
from engine.models.download import download_url, part_path, sha256_file
from engine.models.hub import hub_cached, hub_download, hub_url

__all__ = ["WeightsManager", "default_root", "read_state_dict", "check_weights_file", "hub_url"]

_logger = logging.getLogger(__name__)

_TRUE = {"1", "on", "yes", "true"}


def default_root() -> Path:
    """The default weights folder: ``$MASKWRIGHT_CACHE_DIR`` when set (read at each call, so the
    CLI, the desktop and the bundle agree), else ``platformdirs.user_cache_dir("maskwright")``."""
    import platformdirs

    override = os.environ.get("MASKWRIGHT_CACHE_DIR", "").strip()
    return Path(override).expanduser() if override else Path(platformdirs.user_cache_dir("maskwright"))


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """Read a state dict without unpickling arbitrary objects.

    ``.safetensors`` through safetensors; anything else through
    ``torch.load(weights_only=True, map_location="cpu")``. A ``{"state_dict": ...}`` or
    ``{"model": ...}`` wrapper is unwrapped.

    Raises
    ------
    WeightsError
        The file is missing, damaged, or holds something other than tensors.
    """
    import torch

    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        raise WeightsError("weights file not found", path) from err
    except Exception as err:  # safetensors/pickle errors have no common base class
        raise WeightsError(f"cannot read weights ({type(err).__name__}: {err})", path) from err
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError("the file does not hold a state dict of tensors", path)
    return dict(state)


def check_weights_file(path: str | Path) -> None:
    """Cheaply check that ``path`` is a readable weights file (safetensors header, or a
    ``weights_only`` torch file opened memory-mapped); raises :class:`~engine.errors.WeightsError`."""
    import torch

    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt", device="cpu") as f:
                if not list(f.keys()):
                    raise ValueError("no tensors")
            return
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:
            if "mmap" not in str(err):
                raise
            state = torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except Exception as err:  # safetensors/pickle errors have no common base class
        raise WeightsError(f"not a weights file ({type(err).__name__}: {err})", path) from err
    if not isinstance(state, Mapping):
        raise WeightsError("the file does not hold a state dict", path)


class WeightsManager:
    """Finds, downloads, imports, verifies and removes the weights of catalog entries.

    Parameters
    ----------
    catalog
        The catalog whose entries it manages.
    root
        Weights folder; ``None`` means :func:`default_root`.
    offline
        Never touch the network. ``None``: offline when ``HF_HUB_OFFLINE`` is set (read at each
        call, never at import).
    hub_endpoint
        Hugging Face hub address (a mirror); ``None`` uses huggingface_hub's default.
    hub_cache
        Hugging Face hub cache folder; ``None`` means ``root / "hub"``.
    """

    def __init__(
        self,
        catalog: Catalog,
        root: str | Path | None = None,
        *,
        offline: bool | None = None,
        hub_endpoint: str | None = None,
        hub_cache: str | Path | None = None,
    ) -> None:
        self.catalog = catalog
        self.root = Path(root) if root is not None else default_root()
        self._hub_cache = Path(hub_cache) if hub_cache is not None else None
        self._offline = offline
        self.hub_endpoint = hub_endpoint
        self._verified: dict[tuple[str, int, int], str] = {}

    # -- where things live ----------------------------------------------------------------
    @property
    def hub_cache(self) -> Path:
        """The Hugging Face hub cache folder used for hub sources."""
        return self._hub_cache if self._hub_cache is not None else self.root / "hub"

    @property
    def offline(self) -> bool:
        """Whether network access is forbidden right now."""
        if self._offline is not None:
            return self._offline
        return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE

    def _filename(self, entry: ModelEntry) -> str:
        src = entry.source
        return src.path.name if isinstance(src, FileSource) else src.filename

    def file_slot(self, name: str) -> Path:
        """Where a URL download or an import of ``name`` is stored (whether present or not)."""
        entry = self.catalog.get(name)
        return self.root / "files" / entry.name / self._filename(entry)

    def _hub_cached(self, src: HubSource) -> Path | None:
        return hub_cached(src, self.hub_cache)

    def path(self, name: str) -> Path | None:
        """The local weights file of ``name``, or ``None`` when it is not on this machine.

        Order: an imported or URL-downloaded file, then the hub cache, then a
        :class:`~engine.models.catalog.FileSource` path.
        """
        entry = self.catalog.get(name)
        slot = self.file_slot(name)
        if slot.is_file():
            return slot
        src = entry.source
        if isinstance(src, HubSource):
            return self._hub_cached(src)
        if isinstance(src, FileSource) and src.path.is_file():
            return src.path
        return None

    def is_local(self, name: str) -> bool:
        """Whether the weights of ``name`` are on this machine."""
        return self.path(name) is not None

    # -- the one entry point models use ---------------------------------------------------
    def ensure_local(
        self,
        name: str,
        *,
        allow_download: bool = False,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> Path:
        """The local weights file of ``name``; downloads only when ``allow_download`` is true.

        Raises
        ------
        WeightsError
            The file is missing (the message names it and gives the download and import
            commands), or a local file fails its checksum.
        """
        entry = self.catalog.get(name)
        found = self.path(name)
        if found is not None:
            src = entry.source
            if isinstance(src, FileSource) and found == src.path and src.sha256:
                self._verify(found, src.sha256, cancel=cancel)
            return found
        if not allow_download:
            raise self._missing(entry)
        return self.download(name, progress=progress, cancel=cancel)

    def _missing(self, entry: ModelEntry, extra: str = "") -> WeightsError:
        src = entry.source
        size = f", {entry.size_bytes / 1e6:.0f} MB" if entry.size_bytes else ""
        if isinstance(src, FileSource):
            return WeightsError(
                f"the weights of {entry.name} are missing{extra}: the file was moved or deleted. "
                f"Run `maskwright models import FILE --name {entry.name}` with a copy of it",
                src.path,
            )
        where = hub_url(src, self.hub_endpoint) if isinstance(src, HubSource) else src.url
        return WeightsError(
            f"the weights of {entry.name} are not on this machine{extra} (file {src.filename}{size}, from {where}). "
            f"Download them with `maskwright models download {entry.name}`, or, without network, fetch "
            f"that file elsewhere and run `maskwright models import FILE --name {entry.name}`",
            self.file_slot(entry.name),
        )

    # -- download ---------------------------------------------------------------------------
    def download(self, name: str, *, progress: Progress | None = None, cancel: CancelToken | None = None) -> Path:
        """Download the weights of ``name`` (resuming a partial transfer) and return the file.

        Already-present weights are returned at once. Offline, raises
        :class:`~engine.errors.WeightsError` immediately.
        """
        entry = self.catalog.get(name)
        present = self.path(name)
        if present is not None:
            return present
        src = entry.source
        if isinstance(src, FileSource):
            raise self._missing(entry)
        if self.offline:
            raise self._missing(entry, extra=" and this machine is offline (HF_HUB_OFFLINE)")
        check_cancelled(cancel)
        if isinstance(src, UrlSource):
            return download_url(src.url, self.file_slot(name), sha256=src.sha256, progress=progress, cancel=cancel)
        return hub_download(src, self.hub_cache, endpoint=self.hub_endpoint, progress=progress, cancel=cancel)

    # -- import, verify, remove ---------------------------------------------------------------
    def _verify(self, path: Path, sha256: str, *, cancel: CancelToken | None = None) -> None:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if self._verified.get(key) == sha256.lower():
            return
        actual = sha256_file(path, cancel=cancel)
        if actual != sha256.lower():
            raise WeightsError(f"checksum mismatch: expected sha256 {sha256.lower()}, got {actual}", path)
        self._verified[key] = actual

    def _expected_sha(self, entry: ModelEntry) -> str | None:
        src = entry.source
        return None if isinstance(src, HubSource) else src.sha256

    def import_file(
        self,
        path: str | Path,
        name: str | None = None,
        *,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> Path:
        """Copy a weights file into the cache as the weights of ``name``; works offline.

        Parameters
        ----------
        path
            The file to import (it is copied, not moved).
        name
            Catalog name; ``None`` picks the entry whose sha256 matches the file.

        Raises
        ------
        WeightsError
            Unreadable file, checksum mismatch with the catalog, no matching entry, or not a
            loadable weights file.
        """
        path = Path(path)
        if not path.is_file():
            raise WeightsError("no such file to import", path)
        size = path.stat().st_size
        total = 2 * size  # progress: one pass to hash, one to copy
        try:
            actual = sha256_file(path, cancel=cancel,
                                 progress=lambda done: report(progress, done, total, f"checking {path.name}"))
        except OSError as err:
            raise WeightsError(f"cannot read: {describe_os_error(err)}", path) from err
        if name is None:
            matches = [e.name for e in self.catalog.list() if self._expected_sha(e) == actual]
            if not matches:
                raise WeightsError(
                    "this file matches no catalog entry's checksum; say which model it is with --name NAME "
                    "(see `maskwright models list`)",
                    path,
                )
            name = matches[0]
        entry = self.catalog.get(name)
        expected = self._expected_sha(entry)
        if expected is not None and expected.lower() != actual:
            raise WeightsError(
                f"this file is not the weights of {name}: expected sha256 {expected.lower()}, got {actual}", path
            )
        check_weights_file(path)  # refuses files that are not weights, before they take disk space
        dest = self.file_slot(name)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(dest, error=WeightsError) as tmp, open(path, "rb") as src, open(tmp, "wb") as out:
                done = 0
                while chunk := src.read(1 << 20):
                    out.write(chunk)
                    done += len(chunk)
                    report(progress, size + done, total, f"copying {path.name}")
                    check_cancelled(cancel)  # a cancel leaves no partial file behind
        except OSError as err:
            raise WeightsError(f"cannot import: {describe_os_error(err)}", dest) from err
        _logger.info("imported %s as %s (sha256 %s)", path, name, actual)
        return dest

    def verify(self, name: str, *, cancel: CancelToken | None = None) -> str:
        """Hash the local file of ``name``; check it against the catalog when a sha256 is known.

        Returns the hex sha256. Raises :class:`~engine.errors.WeightsError` when missing or wrong.
        """
        entry = self.catalog.get(name)
        found = self.ensure_local(name)
        expected = self._expected_sha(entry)
        if expected is not None:
            self._verify(found, expected, cancel=cancel)
            return expected.lower()
        return sha256_file(found, cancel=cancel)

    def remove(self, name: str) -> list[Path]:
        """Delete the cached weights of ``name`` (downloaded, imported, partial); returns what went.

        A :class:`~engine.models.catalog.FileSource` file outside the cache is never deleted.
        """
        entry = self.catalog.get(name)
        removed: list[Path] = []
        slot = self.file_slot(name)
        for p in (slot, part_path(slot)):
            if p.is_file():
                p.unlink()
                removed.append(p)
        if slot.parent.is_dir() and not any(slot.parent.iterdir()):
            slot.parent.rmdir()
        src = entry.source
        if isinstance(src, HubSource):
            cached = self._hub_cached(src)
            if cached is not None:
                blob = cached.resolve()
                cached.unlink()
                removed.append(cached)
                if blob != cached and blob.is_file() and blob.is_relative_to(self.hub_cache.resolve()):
                    blob.unlink()
                    removed.append(blob)
        _logger.info("removed weights of %s: %s", name, [str(p) for p in removed])
        return removed
