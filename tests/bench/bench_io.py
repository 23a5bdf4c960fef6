"""DICOM I/O benchmarks: header scan of 1,000 files, loading a 512x512x300 CT series.

References measured in the same run: SimpleITK's GDCM series scan (GetGDCMSeriesIDs +
GetGDCMSeriesFileNames) and a plain pydicom header loop for the scan; a plain SimpleITK
ImageSeriesReader (GDCM file ordering, then Execute + GetArrayFromImage) for the load.
Goals (issue 2): scan 1,000 files "well under a few seconds"; load no slower than SimpleITK, with
peak memory under 2.5x the volume's bytes. Peak memory is the rise of the process's peak RSS
during the load, measured in a fresh child process per reader (so C++ allocations count too).
Data is written synthetic to a temporary folder (about 160 MB for the volume).
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from engine.io.dicom import load_series, read_dicom_folder, scan_dicom
from tests.bench._table import best_of, print_table
from tests.engine.io.dicom_synth import write_series

_SHAPE = (300, 512, 512)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()


def _hwm_bytes() -> int:
    """This process's peak RSS (VmHWM; unlike ru_maxrss it is not inherited over fork/exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_hwm() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # Linux: reset the peak RSS to the current RSS
    except OSError:
        pass


def _sitk_load(folder: str) -> np.ndarray:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
    return sitk.GetArrayFromImage(reader.Execute())


def _ours_load(folder: str) -> np.ndarray:
    return read_dicom_folder(folder).array


def _peak_child(name: str, folder: str, queue: mp.Queue) -> None:
    import gc

    fn = {"ours": _ours_load, "sitk": _sitk_load}[name]
    nbytes = fn(folder).nbytes  # warm up: lazy imports, decoder plugins
    gc.collect()
    _reset_hwm()
    before = _rss_bytes()
    array = fn(folder)
    queue.put((_hwm_bytes() - before, nbytes))
    del array


def _peak(name: str, folder: str) -> tuple[int, int]:
    """Peak RSS rise (bytes) of one load in a fresh process, and the result's bytes.

    The child loads once to warm up, resets its peak-RSS mark, then loads again: the rise of
    VmHWM over the RSS right before that load is the load's peak memory (RSS counts C++
    allocations too, which tracemalloc would miss for SimpleITK).
    """
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=_peak_child, args=(name, folder, queue))
    proc.start()
    result = queue.get(timeout=300)
    proc.join()
    return result


def _time(fn: Callable[[], object], repeat: int = 3) -> float:
    return best_of(fn, repeat=repeat, warmup=1)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mw_bench_io_") as tmp:
        root = Path(tmp)
        # --- header scan: 1,000 small files in 4 series, shuffled names
        scan_dir = root / "scan"
        t0 = time.perf_counter()
        for k in range(4):
            write_series(scan_dir, shape=(250, 64, 64), prefix=f"S{k}_", shuffle=True, seed=k, series_number=k + 1)
        write_s = time.perf_counter() - t0
        files = sorted(p for p in scan_dir.iterdir())
        assert len(files) == 1000

        def ours_scan() -> None:
            assert len(scan_dicom(scan_dir)) == 4

        def sitk_scan() -> None:
            ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(scan_dir))
            for uid in ids:
                sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(scan_dir), uid)

        def pydicom_scan() -> None:
            for p in files:
                pydicom.dcmread(p, stop_before_pixels=True)

        scan_ours, scan_ref, scan_floor = _time(ours_scan), _time(sitk_scan), _time(pydicom_scan)
        rows = [
            ["header scan, 1000 files (64x64, 4 series)", "scan_dicom", scan_ours,
             "GDCM series IDs + file names", scan_ref, f"{scan_ref / scan_ours:.2f}"],
            ["header scan, 1000 files", "scan_dicom", scan_ours, "plain pydicom dcmread loop, no grouping",
             scan_floor, f"{scan_floor / scan_ours:.2f}"],
        ]
        # --- load 512x512x300
        vol_dir = root / "vol"
        t0 = time.perf_counter()
        write_series(vol_dir, shape=_SHAPE, spacing=(0.7, 0.7, 1.0), shuffle=True)
        write_v = time.perf_counter() - t0
        [info] = scan_dicom(vol_dir)
        ours = _time(lambda: read_dicom_folder(vol_dir), repeat=2)
        ours_load_only = _time(lambda: load_series(info), repeat=2)
        ref = _time(lambda: _sitk_load(str(vol_dir)), repeat=2)
        assert np.array_equal(read_dicom_folder(vol_dir).array, _sitk_load(str(vol_dir))), "differs from SimpleITK"
        peak_ours, nbytes = _peak("ours", str(vol_dir))
        peak_ref, _ = _peak("sitk", str(vol_dir))
        rows += [
            ["load 512x512x300 int16, scan + load", "read_dicom_folder", ours,
             "sitk ImageSeriesReader, GDCM order", ref, f"{ref / ours:.2f}"],
            ["load 512x512x300, already scanned", "load_series", ours_load_only, "", "", ""],
            ["peak RSS rise during the load / volume bytes", "read_dicom_folder", f"{peak_ours / nbytes:.2f}x",
             "sitk ImageSeriesReader", f"{peak_ref / nbytes:.2f}x", ""],
        ]
    print_table("DICOM I/O (seconds, best of runs; goals: speed-up >= 1, peak < 2.5x)",
                ["task", "ours", "ours s", "reference", "ref s", "speed-up"], rows)
    print(f"(writing the synthetic data took {write_s:.1f} s for the scan set, {write_v:.1f} s for the volume)")


if __name__ == "__main__":
    main()
