"""Deterministic, resumable, rank-splittable batch sampling with a foreground focus."""

from __future__ import annotations

import itertools

import pytest

from trainers.sampling import BatchSampler, SamplerState


def _take(sampler: BatchSampler, n: int) -> list[list[tuple[int, int]]]:
    return [[(d.index, d.seed) for d in b] for b in itertools.islice(iter(sampler), n)]


def test_same_seed_same_batches_and_epochs_cover_everything() -> None:
    a = _take(BatchSampler(10, 5, seed=1), 4)
    assert a == _take(BatchSampler(10, 5, seed=1), 4)
    assert a != _take(BatchSampler(10, 5, seed=2), 4)
    first_epoch = sorted(i for b in a[:2] for i, _ in b)
    assert first_epoch == list(range(10))


def test_resume_from_state_continues_the_stream() -> None:
    s = BatchSampler(7, 3, seed=0, focus=[1, 2])
    full = _take(s, 6)
    resumed = BatchSampler(7, 3, seed=0, focus=[1, 2], state=s.state_after(4))
    assert _take(resumed, 2) == full[4:]


def test_ranks_split_the_global_batch() -> None:
    whole = _take(BatchSampler(9, 4, seed=3, focus=[0, 4]), 5)
    r0 = _take(BatchSampler(9, 4, seed=3, focus=[0, 4], rank=0, world_size=2), 5)
    r1 = _take(BatchSampler(9, 4, seed=3, focus=[0, 4], rank=1, world_size=2), 5)
    assert [a + b for a, b in zip(r0, r1)] == whole
    assert all(any(i in (0, 4) for i, _ in b) for b in r1)  # focus draws reach every rank


def test_focus_fraction_of_every_batch() -> None:
    focus = [3, 7]
    for batch in _take(BatchSampler(20, 4, seed=0, focus=focus, focus_fraction=0.5), 10):
        assert sum(i in focus for i, _ in batch) >= 2


def test_resume_with_another_batch_size_keeps_the_stream_position() -> None:
    s = BatchSampler(11, 4, seed=0)
    state = s.state_after(3)
    assert state == SamplerState(12, 0)
    smaller = BatchSampler(11, 2, seed=0, state=state)
    flat = [d for b in _take(BatchSampler(11, 4, seed=0), 5) for d in b]
    assert [d for b in _take(smaller, 4) for d in b] == flat[12:20]


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        BatchSampler(0, 2, seed=0)
    with pytest.raises(ValueError, match="multiple"):
        BatchSampler(5, 3, seed=0, world_size=2)
