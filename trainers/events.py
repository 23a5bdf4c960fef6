"""Progress of a training process as JSON lines (one event per line, on stdout by default).

The desktop starts ``python -m trainers fit ...`` and reads these lines; a script or a person can
read them too. Every event is one JSON object with at least ``"event"`` (its kind) and ``"time"``
(seconds since the epoch). The kinds and their fields:

``start``
    ``recipe``, ``device``, ``precision``, ``world_size``, ``max_steps``, ``time_budget_s``,
    ``train_items``, ``val_items``, ``train_samples``, ``resumed_from_step``.
``step``
    ``step``, ``max_steps``, ``loss``, ``lr``, ``samples_per_s``, ``elapsed_s``.
``val``
    ``step``, ``metrics`` (``mean_dice``, ``mean_iou``, ``dice``/``iou`` per class name), ``best``.
``checkpoint``
    ``step``, ``path``, ``kind`` (``"resume"``, ``"best"`` or ``"published"``).
``stopped``
    ``step``, ``reason`` (``"signal"``, ``"cancelled"``): a resumable checkpoint was saved.
``done``
    ``step``, ``reason`` (``"steps"``, ``"time"``, ``"early_stop"``), ``best_metrics``, ``elapsed_s``.
``error``
    ``message`` (what happened, in words a person can act on), ``kind`` (``"out_of_memory"``,
    ``"data"``, ``"config"``, ``"internal"``), ``suggestion`` (what to try), ``step``.

Only the process of rank 0 writes events under ``torchrun``.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

__all__ = ["EventWriter", "EVENT_KINDS", "parse_event"]

_logger = logging.getLogger(__name__)

EVENT_KINDS = ("start", "step", "val", "checkpoint", "stopped", "done", "error")


def _plain(value: Any) -> Any:  # noqa: ANN401 - JSON values are untyped by nature
    """Make ``value`` JSON-safe: numpy/torch scalars to numbers, NaN/inf to ``None``, paths to str."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    return str(value)


class EventWriter:
    """Writes training events as JSON lines.

    Parameters
    ----------
    stream
        Where the lines go (default ``sys.stdout``); each line is flushed at once.
    enabled
        ``False`` on ranks other than 0: nothing is written, listeners are still called.
    listener
        Optional callable receiving every event dict (tests, in-process callers).
    """

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        enabled: bool = True,
        listener: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._stream = stream
        self.enabled = enabled
        self._listener = listener
        self._lock = threading.Lock()
        self.history: list[dict[str, Any]] = []

    def emit(self, event_kind: str, /, **fields: Any) -> dict[str, Any]:  # noqa: ANN401
        """Write one event of ``event_kind`` with ``fields`` and return it as a dict."""
        if event_kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {event_kind!r}")
        event = {"event": event_kind, "time": round(time.time(), 3), **_plain(fields)}
        with self._lock:
            self.history.append(event)
            if self.enabled:
                stream = self._stream if self._stream is not None else sys.stdout
                stream.write(json.dumps(event, separators=(",", ":")) + "\n")
                stream.flush()
        if self._listener is not None:
            self._listener(event)
        return event

    def last(self, kind: str) -> dict[str, Any] | None:
        """The most recent event of ``kind`` emitted by this writer, else ``None``."""
        return next((e for e in reversed(self.history) if e["event"] == kind), None)


def parse_event(line: str) -> dict[str, Any] | None:
    """Parse one line of a training process's stdout; ``None`` for lines that are not events."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(event, dict) or event.get("event") not in EVENT_KINDS:
        return None
    return event
