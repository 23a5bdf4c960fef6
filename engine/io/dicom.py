"""DICOM input: scan folders for series, load a series as a :class:`~engine.items.Volume`.

The work is split over small modules; this one is the public face:

* :mod:`engine.io.dicom_headers`: one file's header -> per-slice records (classic, multi-frame,
  enhanced per-frame functional groups), through :mod:`engine.io.dicom_quick` (a raw element
  reader for classic files) or pydicom, with the value helpers of :mod:`engine.io.dicom_values`;
* :mod:`engine.io.dicom_geometry`: sort along the slice normal, measure spacing, find missing
  slices, uneven spacing, repeated positions, gantry tilt;
* :mod:`engine.io.dicom_scan`: walk a folder, skip non-DICOM files, group into 3D series;
* :mod:`engine.io.dicom_load`: pixels into one preallocated array, rescale, window presets.

Typical use::

    series = scan_dicom(folder)            # headers only, fast
    volume = load_series(series[0])        # raises SeriesGeometryError when irregular
    volume = read_dicom_folder(folder)     # one call; AmbiguousSeriesError if several series
"""

from __future__ import annotations

import logging
from pathlib import Path

from engine.errors import AmbiguousSeriesError, DicomError
from engine.io.dicom_headers import SliceHeader, read_headers
from engine.io.dicom_load import load_series
from engine.io.dicom_scan import DicomScan, SeriesInfo, scan_dicom, scan_folder
from engine.items import Volume
from engine.jobs import CancelToken, Progress

__all__ = [
    "SeriesInfo",
    "SliceHeader",
    "DicomScan",
    "scan_dicom",
    "scan_folder",
    "load_series",
    "read_headers",
    "read_dicom_folder",
    "select_series",
]

_logger = logging.getLogger(__name__)


def select_series(series: list[SeriesInfo] | tuple[SeriesInfo, ...], wanted: str | None,
                  folder: str | Path) -> SeriesInfo:
    """Pick one series by key or SeriesInstanceUID; never guess.

    Parameters
    ----------
    series
        What a scan found.
    wanted
        A :attr:`SeriesInfo.key` or a SeriesInstanceUID; ``None`` is fine only when there is
        exactly one series. A key ``"<uid>#k"`` from a scan of a wider folder also finds its
        series in a narrower source (one file) where that UID names exactly one series.

    Raises
    ------
    DicomError
        No image series at all, or ``wanted`` matches none.
    AmbiguousSeriesError
        Several series match; the message lists them (key, modality, description, size).
    """
    if not series:
        raise DicomError("no DICOM image series found", folder)
    if wanted is None:
        matches = list(series)
    else:
        matches = [s for s in series if s.key == wanted] or [s for s in series if s.series_uid == wanted]
        if not matches and "#" in wanted:
            # a key from a wider scan ("<uid>#3") when this narrower source (one file, a sub-folder)
            # holds only one stack of that series: the UID still names exactly one series here
            uid_only = [s for s in series if s.series_uid == wanted.rpartition("#")[0]]
            matches = uid_only if len(uid_only) == 1 else []
        if not matches:
            listing = "\n  ".join(s.summary() for s in series)
            raise DicomError(f"no series {wanted!r}; the series here are:\n  {listing}", folder)
    if len(matches) > 1:
        listing = "\n  ".join(s.summary() for s in matches)
        raise AmbiguousSeriesError(f"{len(matches)} series found, say which one to load (by key):\n  {listing}",
                                   folder)
    return matches[0]


def read_dicom_folder(folder: str | Path, series_uid: str | None = None, *, allow_irregular: bool = False,
                      progress: Progress | None = None, cancel: CancelToken | None = None) -> Volume:
    """Scan ``folder`` and load its one series (or the series ``series_uid`` names).

    Parameters
    ----------
    folder
        A folder (searched recursively) or a single DICOM file.
    series_uid
        A SeriesInstanceUID or a :attr:`SeriesInfo.key` (needed when the folder holds several
        series, or a series split into several stacks).
    allow_irregular, progress, cancel
        As :func:`load_series`; ``progress`` hears the header scan, then the slice reading.

    Raises
    ------
    AmbiguousSeriesError
        Several series and no (or an ambiguous) ``series_uid``: the message lists them.
    SeriesGeometryError, DicomError
        As :func:`load_series`; also when the folder holds no DICOM image series.
    """
    scan = scan_folder(folder, progress=progress, cancel=cancel)
    if not scan.series and scan.skipped:
        path, reason = scan.skipped[0]
        raise DicomError(f"no DICOM image series found ({len(scan.skipped)} file(s) skipped; {path.name}: {reason})",
                         folder)
    info = select_series(scan.series, series_uid, folder)
    return load_series(info, allow_irregular=allow_irregular, progress=progress, cancel=cancel)
