"""Atomic file writes: temporary file in the same folder, fsync, rename, fsync the folder.

A process killed at any instant leaves either the old file or the new one, never a partial one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from engine.errors import MaskwrightError

__all__ = ["atomic_path", "atomic_write_bytes", "replace_durably", "fsync_dir", "describe_os_error"]


def fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def describe_os_error(err: OSError) -> str:
    """A short reason a person understands for an ``OSError`` (full disk, permissions...)."""
    if err.errno == errno.ENOSPC:
        return "the disk is full"
    if err.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if err.errno == errno.EROFS:
        return "the disk is read-only"
    if err.errno == errno.ENOENT:
        return "no such file or folder"
    return err.strerror or str(err)


def replace_durably(tmp: Path, path: Path) -> None:
    """fsync the complete file ``tmp``, rename it over ``path``, fsync the folder (raises ``OSError``)."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, error: type[MaskwrightError] = MaskwrightError) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    The temporary name keeps ``path``'s suffixes, so writers that choose their format by
    extension (SimpleITK, Pillow) work on it. The caller writes the temporary file completely;
    this function fsyncs it, renames it over ``path`` and fsyncs the folder. On any error the
    temporary file is removed, ``path`` is untouched and ``error`` is raised naming ``path``.
    """
    path = Path(path)
    suffix = "".join(path.suffixes)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    tmp = path.with_name(f".{stem}.tmp-{secrets.token_hex(4)}{suffix}")
    try:
        yield tmp
        replace_durably(tmp, path)
    except OSError as err:
        raise error(f"could not write: {describe_os_error(err)}", path) from err
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def atomic_write_bytes(path: str | Path, data: bytes, *, error: type[MaskwrightError] = MaskwrightError) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, error=error) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
