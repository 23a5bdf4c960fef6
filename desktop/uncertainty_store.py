"""Uncertainty maps and scores of model predictions, kept between sessions (Qt-free).

"Next item to correct" ranks items by the mean uncertainty of their latest prediction; the maps
also feed the uncertainty overlay. They live beside the settings (``<config>/uncertainty/<project
key>/``), one ``item-<id>.npz`` per item (uint8-quantised map + the version it belongs to), so a
restart keeps the ranking. A map whose version is no longer the item's latest model version is
ignored.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from engine.fsutil import atomic_path

__all__ = ["UncertaintyStore"]

_logger = logging.getLogger(__name__)


class UncertaintyStore:
    """Per-project uncertainty maps.

    Parameters
    ----------
    root
        ``<config>/uncertainty``.
    project
        The project folder (its resolved path names the sub-folder).
    """

    def __init__(self, root: Path, project: Path) -> None:
        key = hashlib.sha1(str(Path(project).resolve()).encode()).hexdigest()[:16]
        self.folder = Path(root) / key

    def _file(self, item_id: int) -> Path:
        return self.folder / f"item-{int(item_id)}.npz"

    def put(self, item_id: int, version: int, values: np.ndarray) -> float:
        """Keep the map (``[0, 1]`` floats on the item's grid) of a prediction version; returns its score."""
        values = np.asarray(values)
        q = np.empty(values.shape, dtype=np.uint8)
        for k in range(values.shape[0]):  # row by row (slice by slice): one float copy at a time
            q[k] = np.clip(np.nan_to_num(values[k].astype(np.float32)) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        score = float(q.mean()) / 255.0 if q.size else 0.0
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self._file(item_id)) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, map=q, version=np.int64(version), score=np.float64(score))
        return score

    def get(self, item_id: int, version: int | None = None) -> np.ndarray | None:
        """The map as float32 in ``[0, 1]`` (``None`` when absent, unreadable or of another version)."""
        try:
            with np.load(self._file(item_id)) as z:
                if version is not None and int(z["version"]) != version:
                    return None
                return z["map"].astype(np.float32) / 255.0
        except (OSError, KeyError, ValueError):
            return None

    def scores(self) -> dict[int, tuple[int, float]]:
        """``item id -> (version, score)`` of every kept map."""
        out: dict[int, tuple[int, float]] = {}
        for path in sorted(self.folder.glob("item-*.npz")) if self.folder.is_dir() else []:
            try:
                with np.load(path) as z:
                    out[int(path.stem.split("-", 1)[1])] = (int(z["version"]), float(z["score"]))
            except (OSError, KeyError, ValueError) as err:
                _logger.warning("%s: unreadable uncertainty map, ignored (%s)", path, err)
        return out
