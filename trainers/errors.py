"""Errors of the training process (subclasses of the engine's :class:`MaskwrightError`)."""

from __future__ import annotations

from engine.errors import MaskwrightError

__all__ = ["TrainingError", "TrainingConfigError", "TrainingDataError", "OutOfMemoryError", "out_of_memory_advice"]


class TrainingError(MaskwrightError):
    """Training could not go on; the message says what to do."""


class TrainingConfigError(TrainingError):
    """The settings are inconsistent (batch size, resume folder, recipe...)."""


class TrainingDataError(TrainingError):
    """The project has nothing to train on, or an item cannot be used."""


class OutOfMemoryError(TrainingError):
    """The device ran out of memory; smaller batches or crops may fit."""


def out_of_memory_advice(device_type: str, batch_size: int, accum_steps: int, *, world_size: int, step: int
                         ) -> tuple[str, str]:
    """``(message, suggestion)`` for an out-of-memory at ``step`` with these batch settings."""
    smaller = max(batch_size // 2, world_size)
    message = f"the {device_type.upper()} ran out of memory at step {step} with a batch of {batch_size}"
    suggestion = (f"train with a smaller batch (--batch-size {smaller} --accum-steps {accum_steps * 2} keeps the "
                  "effective batch) or a smaller crop (--crop), or use --precision bf16")
    return message, suggestion
