"""Third-party licence notices for the bundle: who wrote what we ship, under which licence.

``write_notices(paths, out)`` maps every file PyInstaller collected (modules, shared libraries,
data) to the installed distribution that owns it (``importlib.metadata`` file lists), and writes
``THIRD_PARTY_LICENSES.txt``: a table of name, version and licence, then each distribution's
licence files in full. Files no distribution owns are the Python standard library (its licence is
added) or system libraries PyInstaller copied (listed by name).

    python packaging/licenses.py --out THIRD_PARTY_LICENSES.txt    # the runtime requirements of maskwright
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Notice", "file_owners", "owners_of", "requirement_closure", "notice_for", "write_notices"]

_LICENCE_NAME = re.compile(r"(LICEN[CS]E|COPYING|NOTICE|COPYRIGHT|AUTHORS)", re.IGNORECASE)
_SKIP_NAMES = {"maskwright"}  # this project itself (Apache-2.0, LICENSE at the top of the bundle)


@dataclass
class Notice:
    """One distribution's licence notice."""

    name: str
    version: str
    licence: str
    homepage: str = ""
    files: list[tuple[str, str]] = field(default_factory=list)  # (relative path, text)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def file_owners() -> dict[str, str]:
    """Absolute (resolved) path of every file an installed distribution lists -> its normalised name."""
    owners: dict[str, str] = {}
    for dist in md.distributions():
        name = _norm(dist.metadata["Name"] or "")
        for rel in dist.files or []:
            try:
                owners[os.path.realpath(dist.locate_file(rel))] = name
            except (OSError, ValueError):
                continue
    return owners


def owners_of(paths: Iterable[str | os.PathLike[str]]) -> tuple[set[str], list[str]]:
    """Distributions owning ``paths``; and the paths no distribution owns."""
    owners = file_owners()
    found: set[str] = set()
    unowned: list[str] = []
    for p in paths:
        real = os.path.realpath(p)
        name = owners.get(real)
        if name is None and real.endswith(".pyc"):
            name = owners.get(real[:-1])
        if name is None:
            unowned.append(real)
        elif name not in _SKIP_NAMES:
            found.add(name)
    return found, unowned


def requirement_closure(root: str = "maskwright") -> set[str]:
    """``root`` and everything its (marker-filtered, extra-free) requirements pull in, installed ones only."""
    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = [root]
    while todo:
        name = _norm(todo.pop())
        if name in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        seen.add(name)
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen - _SKIP_NAMES


def _licence_field(meta: md.PackageMetadata) -> str:
    expr = meta.get("License-Expression")
    if expr:
        return expr
    text = (meta.get("License") or "").strip()
    if text and len(text) < 120 and "\n" not in text:
        return text
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    if classifiers:
        return "; ".join(classifiers)
    return "see the licence text below" if text else "UNKNOWN (no licence metadata)"


def notice_for(name: str) -> Notice:
    """The notice of an installed distribution: metadata licence plus its licence files."""
    dist = md.distribution(name)
    meta = dist.metadata
    homepage = meta.get("Home-page") or ""
    for url in meta.get_all("Project-URL") or []:
        if not homepage and "," in url:
            homepage = url.split(",", 1)[1].strip()
    files: list[tuple[str, str]] = []
    for rel in dist.files or []:
        path = str(rel)
        if ".dist-info/" not in path and ".egg-info/" not in path and "/licenses/" not in path:
            if not _LICENCE_NAME.search(Path(path).name) or Path(path).suffix in (".py", ".pyc", ".so", ".h"):
                continue
        if not _LICENCE_NAME.search(Path(path).name):
            continue
        try:
            files.append((path, Path(dist.locate_file(rel)).read_text(encoding="utf-8", errors="replace")))
        except OSError:
            continue
    long_licence = (meta.get("License") or "").strip()
    if not files and "\n" in long_licence:
        files.append(("METADATA License field", long_licence))
    return Notice(meta["Name"], dist.version, _licence_field(meta), homepage, files)


def _python_notice() -> Notice:
    candidates = [Path(sys.base_prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "LICENSE.txt",
                  Path(sys.base_prefix) / "LICENSE.txt"]
    files = [(str(p), p.read_text(encoding="utf-8", errors="replace")) for p in candidates if p.is_file()][:1]
    return Notice("Python", sys.version.split()[0], "PSF-2.0", "https://www.python.org", files)


def _pyinstaller_notice() -> Notice | None:
    try:
        notice = notice_for("pyinstaller")
    except md.PackageNotFoundError:
        return None
    notice.licence += " (the bootloader in the Maskwright executable is GPL-2.0 with the PyInstaller exception)"
    return notice


def write_notices(distributions: Iterable[str], out: Path, *, unowned: Iterable[str] = ()) -> list[Notice]:
    """Write ``out`` for ``distributions`` (+ Python and the PyInstaller bootloader); returns the notices."""
    notices = [_python_notice()]
    boot = _pyinstaller_notice()
    if boot is not None:
        notices.append(boot)
    for name in sorted(set(distributions) - {"pyinstaller"}):  # the bootloader's notice is added above
        try:
            notices.append(notice_for(name))
        except md.PackageNotFoundError:
            continue
    lines = ["Third-party software in this Maskwright bundle", "=" * 48, "",
             "Maskwright itself is licensed under Apache-2.0. It ships the following software, each under",
             "its own licence, reproduced below as its authors distribute it.", "",
             f"{'name':40} {'version':18} licence", f"{'-' * 40} {'-' * 18} {'-' * 20}"]
    lines += [f"{n.name:40} {n.version:18} {n.licence}" for n in notices]
    system = sorted({Path(p).name for p in unowned if ".so" in Path(p).name or Path(p).suffix in (".dll", ".dylib")})
    if system:
        lines += ["", "System libraries copied from the build machine (their own licences apply):",
                  "  " + ", ".join(system)]
    for n in notices:
        lines += ["", "", "#" * 100, f"{n.name} {n.version}", f"Licence: {n.licence}"]
        if n.homepage:
            lines.append(f"Home page: {n.homepage}")
        if not n.files:
            lines.append("(no licence file is shipped with this distribution; see its licence field above)")
        for rel, text in n.files:
            lines += ["", f"---- {rel} ----", text.rstrip()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return notices


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--root", default="maskwright", help="distribution whose runtime closure is listed")
    args = parser.parse_args(argv)
    notices = write_notices(requirement_closure(args.root), args.out)
    print(f"{len(notices)} notices written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
