"""Crash recovery: a journal of unsaved label maps, written atomically (Qt-free).

While an item has edits that are not yet in the project store, the autosave timer writes its
label map here (``<recovery>/<project key>/item-<id>.npz``). A clean save or a discard removes the
entry. What is left at the next start was unsaved when the app stopped, and is offered back.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.fsutil import atomic_path

__all__ = ["Journal", "JournalEntry", "pending_projects"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JournalEntry:
    """One unsaved label map: the item it belongs to, the version it was based on, its file."""

    item_id: int
    base_version: int | None
    path: Path


class Journal:
    """The recovery journal of one project.

    Parameters
    ----------
    root
        The recovery folder (``Settings.recovery_dir``).
    project
        The project folder; its resolved path names the journal's sub-folder.
    """

    def __init__(self, root: Path, project: Path) -> None:
        key = hashlib.sha1(str(Path(project).resolve()).encode()).hexdigest()[:16]
        self.folder = Path(root) / key
        self.project = Path(project)

    def _file(self, item_id: int) -> Path:
        return self.folder / f"item-{int(item_id)}.npz"

    def write(self, item_id: int, data: np.ndarray, base_version: int | None) -> None:
        """Store ``data`` (``(H, W)`` or ``(z, y, x)`` uint8/uint16) as the unsaved state of an item."""
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "project.txt").write_text(str(self.project.resolve()), encoding="utf-8")
        with atomic_path(self._file(item_id)) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, data=data, base=np.int64(-1 if base_version is None else base_version))

    def discard(self, item_id: int) -> None:
        """Forget the unsaved state of an item (after a save, or when the person declines it)."""
        self._file(item_id).unlink(missing_ok=True)

    def entries(self) -> list[JournalEntry]:
        """What is in the journal, by item id."""
        out = []
        for path in sorted(self.folder.glob("item-*.npz")):
            try:
                item_id = int(path.stem.split("-", 1)[1])
                with np.load(path) as z:
                    base = int(z["base"])
            except (OSError, ValueError, KeyError) as err:
                _logger.warning("%s: unreadable recovery entry, ignored (%s)", path, err)
                continue
            out.append(JournalEntry(item_id, None if base < 0 else base, path))
        return out

    def read(self, entry: JournalEntry) -> np.ndarray:
        """The label map of an entry."""
        with np.load(entry.path) as z:
            return np.array(z["data"])


def pending_projects(root: Path) -> list[Path]:
    """Project folders whose journal holds unsaved edits (the next start offers them)."""
    out = []
    for folder in sorted(Path(root).glob("*")) if Path(root).is_dir() else []:
        marker = folder / "project.txt"
        if marker.is_file() and any(folder.glob("item-*.npz")):
            project = Path(marker.read_text(encoding="utf-8").strip())
            if project.is_dir():
                out.append(project)
    return out
