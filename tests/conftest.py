"""Shared test set-up: offscreen Qt, CPU settings, paths to shipped test data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test downloads anything

REPO = Path(__file__).resolve().parents[1]
SHARED_DICOM_QA = REPO.parent / "shared" / "data" / "dicom_qa"


def pytest_configure(config: pytest.Config) -> None:
    import torch

    torch.set_flush_denormal(True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run `make test-gpu` on a GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def dicom_qa() -> Path:
    """The real scanner DICOM cases in ../shared/data/dicom_qa (skip where the folder is absent)."""
    if not SHARED_DICOM_QA.is_dir():
        pytest.skip("../shared/data/dicom_qa is not beside this checkout")
    return SHARED_DICOM_QA
