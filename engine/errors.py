"""The error hierarchy of the engine.

Every error a person can see names the file (when there is one) and the reason. Low-level
exceptions are wrapped at the boundary with ``raise ... from err`` so the cause stays attached.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "MaskwrightError",
    "ItemReadError",
    "UnsupportedFormatError",
    "ImageTooLargeError",
    "DicomError",
    "AmbiguousSeriesError",
    "SeriesGeometryError",
    "ExportError",
    "ProjectError",
    "ProjectLockedError",
    "ProjectReadError",
    "ProjectWriteError",
    "SchemaVersionError",
    "WeightsError",
    "ModelError",
    "LabelError",
    "Cancelled",
]


class MaskwrightError(Exception):
    """Base of every error Maskwright raises on purpose.

    Parameters
    ----------
    reason
        What went wrong, in words a person can act on.
    path
        The file or folder concerned, if any; it is put in front of the message.
    """

    def __init__(self, reason: str, path: str | Path | None = None) -> None:
        self.reason = reason
        self.path = Path(path) if path is not None else None
        super().__init__(f"{self.path}: {reason}" if self.path is not None else reason)


class ItemReadError(MaskwrightError):
    """A photo, volume or mask file could not be read."""


class UnsupportedFormatError(ItemReadError):
    """The file is not in a format Maskwright can read."""


class ImageTooLargeError(ItemReadError):
    """The image has more pixels than the decompression-bomb guard allows."""


class DicomError(ItemReadError):
    """A DICOM file or series is unreadable or inconsistent."""


class AmbiguousSeriesError(DicomError):
    """A folder holds several series and the caller did not say which one to load."""


class SeriesGeometryError(DicomError):
    """A series has missing slices, uneven spacing or mixed orientations."""


class ExportError(MaskwrightError):
    """An export could not be written."""


class ProjectError(MaskwrightError):
    """Base of the project-store errors."""


class ProjectLockedError(ProjectError):
    """Another process holds the project open for writing."""


class ProjectReadError(ProjectError):
    """The project folder or its database is missing or damaged."""


class ProjectWriteError(ProjectError):
    """A write to the project failed; the last committed state is intact."""


class SchemaVersionError(ProjectError):
    """The project was written by a newer Maskwright, or its schema cannot be migrated."""


class WeightsError(MaskwrightError):
    """Model weights are missing, damaged, or fail their checksum."""


class ModelError(MaskwrightError):
    """A model cannot run on the given input (classes, channels, modality...)."""


class LabelError(MaskwrightError):
    """A class name, id or colour is invalid."""


class Cancelled(MaskwrightError):
    """A long job was cancelled by the person."""

    def __init__(self, reason: str = "cancelled", path: str | Path | None = None) -> None:
        super().__init__(reason, path)
