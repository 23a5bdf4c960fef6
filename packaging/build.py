"""Build the one-folder bundle ``dist/Maskwright/`` and check it (``make package``).

1. PyInstaller with ``packaging/maskwright.spec`` (work files in ``build/pyinstaller``);
2. ``THIRD_PARTY_LICENSES.txt`` copied next to the executable;
3. a size report (``dist/Maskwright-size.txt``): the bundle and its largest parts;
4. checks of the built executable: ``Maskwright engine --version``, ``Maskwright trainers --help``
   and ``Maskwright --smoke-test`` offscreen (see ``desktop/smoke.py``), with ``HF_HUB_OFFLINE``
   unset so a download attempt at start-up would fail it.

    python packaging/build.py [--skip-build] [--no-checks]

Exit status 0 only when the build and every check passed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
BUNDLE = DIST / "Maskwright"
EXECUTABLE = BUNDLE / ("Maskwright.exe" if os.name == "nt" else "Maskwright")


def tree_size(path: Path) -> int:
    """Bytes in the files under ``path`` (links not followed)."""
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def size_report(bundle: Path, top: int = 20) -> str:
    """The bundle's size and its largest parts (folders two levels into ``_internal``, and files)."""
    internal = bundle / "_internal"
    parts: list[tuple[int, str]] = []
    for child in internal.iterdir() if internal.is_dir() else []:
        if child.is_dir() and child.name in ("nvidia", "torch", "PySide6"):
            parts += [(tree_size(c), str(c.relative_to(bundle))) for c in child.iterdir()]
        else:
            parts.append((tree_size(child), str(child.relative_to(bundle))))
    parts.sort(reverse=True)
    total = tree_size(bundle)
    lines = [f"bundle {bundle}: {total / 2**20:,.0f} MiB in {sum(1 for p in bundle.rglob('*') if p.is_file()):,} files",
             "largest parts:"]
    lines += [f"  {size / 2**20:9,.1f} MiB  {100 * size / max(total, 1):5.1f}%  {name}" for size, name in parts[:top]]
    return "\n".join(lines)


def run_pyinstaller() -> float:
    """Run PyInstaller on the spec; returns the seconds it took."""
    cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
           "--distpath", str(DIST), "--workpath", str(ROOT / "build" / "pyinstaller"),
           str(ROOT / "packaging" / "maskwright.spec")]
    print("build:", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True)
    return time.perf_counter() - t0


def _env() -> dict[str, str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env.pop("HF_HUB_OFFLINE", None)  # the bundle must not try the network on its own
    env.pop("PYTHONPATH", None)  # only the bundle's own modules
    return env


def check(name: str, args: list[str], *, timeout: float, expect: str = "") -> dict[str, object]:
    """Run the executable with ``args``; passed when it exits 0 (and prints ``expect``)."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([str(EXECUTABLE), *args], cwd=DIST, env=_env(), capture_output=True, text=True,
                              timeout=timeout)
        code, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as err:
        code, out = -1, f"timed out after {timeout:.0f} s: {err}"
    ok = code == 0 and expect in out
    seconds = time.perf_counter() - t0
    print(f"check {name}: {'ok' if ok else 'FAILED'} (exit {code}, {seconds:.1f} s)", flush=True)
    if not ok:
        print(out[-4000:], flush=True)
    return {"check": name, "ok": ok, "exit": code, "seconds": round(seconds, 1), "output_tail": out[-2000:]}


def run_checks() -> list[dict[str, object]]:
    """The executable's checks (see the module docstring)."""
    report = DIST / "smoke-report.json"
    results = [
        check("engine --version", ["engine", "--version"], timeout=300),
        check("trainers --help", ["trainers", "--help"], timeout=300, expect="fit"),
        check("smoke test", ["--smoke-test", "--report", str(report)], timeout=900, expect="all steps passed"),
    ]
    if report.is_file():
        results[-1]["report"] = json.loads(report.read_text(encoding="utf-8"))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-build", action="store_true", help="only check an existing dist/Maskwright")
    parser.add_argument("--no-checks", action="store_true", help="build only")
    args = parser.parse_args(argv)
    summary: dict[str, object] = {}
    if not args.skip_build:
        seconds = run_pyinstaller()
        summary["build_seconds"] = round(seconds, 1)
        print(f"build: PyInstaller took {seconds / 60:.1f} min", flush=True)
        notices = BUNDLE / "_internal" / "THIRD_PARTY_LICENSES.txt"
        if not notices.is_file():
            print("build: THIRD_PARTY_LICENSES.txt is missing from the bundle", file=sys.stderr)
            return 1
        shutil.copyfile(notices, BUNDLE / "THIRD_PARTY_LICENSES.txt")
    if not EXECUTABLE.is_file():
        print(f"build: no executable at {EXECUTABLE}", file=sys.stderr)
        return 1
    sizes = size_report(BUNDLE)
    (DIST / "Maskwright-size.txt").write_text(sizes + "\n", encoding="utf-8")
    print(sizes, flush=True)
    summary["bundle_bytes"] = tree_size(BUNDLE)
    ok = True
    if not args.no_checks:
        results = run_checks()
        summary["checks"] = results
        ok = all(bool(r["ok"]) for r in results)
    (DIST / "build-summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print("build: all checks passed" if ok else "build: SOME CHECKS FAILED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
