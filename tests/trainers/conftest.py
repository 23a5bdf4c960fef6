"""Trainer tests run torch on one thread: on a loaded 2-core machine two OpenMP threads that
wait for each other are up to 10x slower than one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
