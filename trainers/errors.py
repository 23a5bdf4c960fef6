"""Errors of the training process (subclasses of the engine's :class:`MaskwrightError`)."""

from __future__ import annotations

from engine.errors import MaskwrightError

__all__ = ["TrainingError", "TrainingConfigError", "TrainingDataError", "OutOfMemoryError"]


class TrainingError(MaskwrightError):
    """Training could not go on; the message says what to do."""


class TrainingConfigError(TrainingError):
    """The settings are inconsistent (batch size, resume folder, recipe...)."""


class TrainingDataError(TrainingError):
    """The project has nothing to train on, or an item cannot be used."""


class OutOfMemoryError(TrainingError):
    """The device ran out of memory; smaller batches or crops may fit."""
