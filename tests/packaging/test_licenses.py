"""packaging/licenses.py: distributions owning collected files, and the notices file."""

from __future__ import annotations

from pathlib import Path

import numpy
import PySide6

from tests.packaging._paths import load_packaging_module

licenses = load_packaging_module("licenses")


def test_owners_of_maps_files_to_their_distributions(tmp_path: Path) -> None:
    stray = tmp_path / "mine.py"
    stray.write_text("x = 1\n")
    found, unowned = licenses.owners_of([numpy.__file__, Path(PySide6.__file__).parent / "__init__.py", stray])
    assert found == {"numpy", "pyside6-essentials"}
    assert unowned == [str(stray.resolve())]


def test_requirement_closure_is_the_runtime_dependencies() -> None:
    closure = licenses.requirement_closure("maskwright")
    assert {"torch", "open-clip-torch", "pydicom", "pyside6-essentials", "qtawesome", "numpy"} <= closure
    assert "pytest" not in closure and "pyinstaller" not in closure and "maskwright" not in closure


def test_notices_hold_name_version_licence_and_text(tmp_path: Path) -> None:
    out = tmp_path / "THIRD_PARTY_LICENSES.txt"
    notices = licenses.write_notices(["numpy", "natsort"], out, unowned=["/usr/lib/libfoo.so.1"])
    names = [n.name for n in notices]
    assert names[0] == "Python" and "numpy" in names and "natsort" in names
    text = out.read_text(encoding="utf-8")
    np_notice = next(n for n in notices if n.name == "numpy")
    assert np_notice.version == numpy.__version__ and "BSD" in np_notice.licence and np_notice.files
    assert f"numpy {numpy.__version__}" in text and "Copyright" in text
    assert "libfoo.so.1" in text  # system libraries are named
