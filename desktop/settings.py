"""Settings and recent projects, as JSON under ``platformdirs.user_config_dir("maskwright")``.

Qt-free on purpose (QSettings would hide the file format); written atomically so a crash while
saving never loses the previous settings.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from engine.fsutil import atomic_path

__all__ = ["Settings", "config_dir"]

_logger = logging.getLogger(__name__)

_MAX_RECENT = 10


def config_dir() -> Path:
    """Where Maskwright keeps its settings, recent projects and crash-recovery journal."""
    return Path(platformdirs.user_config_dir("maskwright"))


@dataclass
class Settings:
    """The person's settings.

    Attributes
    ----------
    folder
        Where ``settings.json`` and ``recovery/`` live.
    recent
        Recent project folders, newest first.
    shortcuts
        Overrides of action shortcuts: action id -> key sequence text ("Ctrl+Shift+B").
    values
        Everything else by key (tool sizes, training dialog choices, window geometry...).
    """

    folder: Path
    recent: list[str] = field(default_factory=list)
    shortcuts: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.folder / "settings.json"

    @property
    def recovery_dir(self) -> Path:
        return self.folder / "recovery"

    @classmethod
    def load(cls, folder: Path | None = None) -> Settings:
        """Read the settings (defaults when the file is absent or unreadable, which is logged)."""
        folder = config_dir() if folder is None else Path(folder)
        settings = cls(folder)
        try:
            raw = json.loads(settings.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return settings
        except (OSError, ValueError) as err:
            _logger.warning("%s: unreadable settings, using defaults (%s)", settings.path, err)
            return settings
        if isinstance(raw, dict):
            settings.recent = [str(p) for p in raw.get("recent", []) if isinstance(p, str)][:_MAX_RECENT]
            settings.shortcuts = {str(k): str(v) for k, v in dict(raw.get("shortcuts", {})).items()}
            settings.values = dict(raw.get("values", {}))
        return settings

    def save(self) -> None:
        """Write the settings atomically (errors are logged, settings are never worth a crash)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            text = json.dumps({"recent": self.recent, "shortcuts": self.shortcuts, "values": self.values},
                              indent=2, sort_keys=True)
            with atomic_path(self.path) as tmp:
                tmp.write_text(text, encoding="utf-8")
        except Exception as err:  # noqa: BLE001 - settings must never take the app down
            _logger.warning("%s: could not save settings (%s)", self.path, err)

    def add_recent(self, project: Path) -> None:
        """Put ``project`` first in the recent list."""
        p = str(Path(project).resolve())
        self.recent = [p] + [r for r in self.recent if r != p]
        del self.recent[_MAX_RECENT:]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value
