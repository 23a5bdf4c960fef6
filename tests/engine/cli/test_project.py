"""``maskwright project new|add|info`` through the real command line entry point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.store import Project, Provenance
from tests.engine.io.dicom_synth import write_series


def _photos(folder: Path, names: list[str], size: tuple[int, int] = (40, 30)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k, name in enumerate(names):
        arr = np.full((size[1], size[0], 3), 40 * k, np.uint8)
        Image.fromarray(arr).save(folder / name)
        out.append(folder / name)
    return out


def _nifti(path: Path) -> Path:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.zeros((4, 10, 12), np.int16))
    image.SetSpacing((0.5, 0.5, 3.0))
    image.SetOrigin((1.0, 2.0, 3.0))
    sitk.WriteImage(image, str(path))
    return path


def test_new_creates_a_project_with_classes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["project", "new", str(tmp_path / "p"), "--name", "Pets", "--classes", "cat; kitten, dog"]) == 0
    assert "Created project 'Pets'" in capsys.readouterr().out
    with Project.open(tmp_path / "p", readonly=True) as project:
        assert [(c.id, c.name, c.prompt) for c in project.labels()] == [(1, "cat", "cat; kitten"), (2, "dog", "dog")]
    assert main(["project", "new", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "maskwright: error:" in err and str(tmp_path / "p") in err and "already holds" in err


def test_add_photos_volumes_and_a_folder_with_two_dicom_series(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    main(["project", "new", str(tmp_path / "p"), "--classes", "organ"])
    _photos(tmp_path / "photos", ["img10.png", "img2.png", "img1.png"])
    (tmp_path / "photos" / "broken.jpg").write_bytes(b"")
    nifti = _nifti(tmp_path / "scan.nii.gz")
    first = write_series(tmp_path / "dicom", shape=(5, 16, 20), prefix="A", description="first", seed=1)
    second = write_series(tmp_path / "dicom", shape=(3, 12, 14), prefix="B", description="second", series_number=2,
                          seed=2)
    code = main(["project", "add", str(tmp_path / "p"), str(tmp_path / "photos"), str(nifti),
                 str(tmp_path / "dicom"), str(tmp_path / "missing")])
    out, err = capsys.readouterr()
    assert code == 1  # some sources failed, the rest were added
    assert "holds 2 DICOM series; each is added as its own item" in out
    assert f"{tmp_path / 'photos' / 'broken.jpg'}:" in err and f"{tmp_path / 'missing'}: no such file" in err
    assert "6 item(s) added (3 photos, 3 volumes)" in out
    with Project.open(tmp_path / "p", readonly=True) as project:
        items = project.items()
        assert [i.name for i in items if i.kind == "photo"] == ["img1.png", "img2.png", "img10.png"]
        assert all(i.shape == (30, 40) and i.status == "new" for i in items if i.kind == "photo")
        volumes = {i.series_uid: i for i in items if i.kind == "volume" and i.series_uid}
        assert set(volumes) == {first.series_uid, second.series_uid}
        assert volumes[first.series_uid].shape == (5, 16, 20) and volumes[second.series_uid].shape == (3, 12, 14)
        assert volumes[first.series_uid].series_key != volumes[second.series_uid].series_key
        np.testing.assert_allclose(volumes[first.series_uid].geometry.spacing, first.spacing)
        np.testing.assert_allclose(volumes[first.series_uid].geometry.origin, first.origin, atol=1e-6)
        (nii,) = [i for i in items if i.source == nifti]
        assert nii.shape == (4, 10, 12) and nii.geometry.spacing == (0.5, 0.5, 3.0)
    assert main(["project", "add", str(tmp_path / "p"), str(tmp_path / "dicom"), str(nifti)]) == 0
    assert "0 item(s) added (0 photos, 0 volumes), 3 already there" in capsys.readouterr().out


def test_adding_the_project_folder_never_adds_its_own_masks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["project", "new", str(tmp_path / "p"), "--classes", "a"])
    _photos(tmp_path / "p" / "images", ["x.png"])
    assert main(["project", "add", str(tmp_path / "p"), str(tmp_path / "p")]) == 0
    with Project.open(tmp_path / "p") as project:
        (item,) = project.items()
        project.save_annotation(item.id, np.ones(item.shape, np.uint8), provenance=Provenance.from_person())
        assert item.source_relative == Path("images/x.png")
    assert main(["project", "add", str(tmp_path / "p"), str(tmp_path / "p")]) == 0
    assert "0 item(s) added" in capsys.readouterr().out


def test_info_reports_statuses_classes_versions_and_checkpoints(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    main(["project", "new", str(tmp_path / "p"), "--classes", "cat; kitten, dog"])
    _photos(tmp_path / "photos", ["a.png", "b.png"])
    main(["project", "add", str(tmp_path / "p"), str(tmp_path / "photos")])
    with Project.open(tmp_path / "p") as project:
        a, b = project.items()
        project.save_annotation(a.id, np.ones(a.shape, np.uint8), provenance=Provenance.from_model("naclip"))
        record = project.save_annotation(a.id, np.full(a.shape, 2, np.uint8), provenance=Provenance.from_person())
        project.set_status(b.id, "approved")
        project.delete_class(1)
        ck = project.add_checkpoint(tmp_path / "w.safetensors", model="cascade", metrics={"miou": 0.61}, active=True)
    capsys.readouterr()
    assert main(["project", "info", str(tmp_path / "p"), "--check"]) == 0
    out = capsys.readouterr().out
    assert "Items: 2 (2 photos, 0 volumes)" in out and "corrected 1" in out and "approved 1" in out
    assert "Classes: 1 (+1 deleted)" in out and "dog" in out
    assert "Versions: 2 on 1 item(s) (1 by a model, 1 by a person)" in out
    assert f"*{ck.id:>3}  cascade" in out and "miou 0.61" in out
    assert "all complete and unchanged" in out
    record.mask_file.unlink()
    assert main(["project", "info", str(tmp_path / "p"), "--check"]) == 1
    assert record.mask_file.name in capsys.readouterr().err


def test_a_project_open_for_writing_elsewhere_gives_a_clear_error(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    main(["project", "new", str(tmp_path / "p")])
    _photos(tmp_path / "photos", ["a.png"])
    with Project.open(tmp_path / "p"):
        assert main(["project", "add", str(tmp_path / "p"), str(tmp_path / "photos")]) == 2
        err = capsys.readouterr().err
        assert str(tmp_path / "p") in err and "open for writing in another process" in err
        assert main(["project", "info", str(tmp_path / "p")]) == 0  # reading is fine meanwhile


def test_commands_on_a_folder_that_is_no_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["project", "info", str(tmp_path)]) == 2
    assert "not a Maskwright project" in capsys.readouterr().err
