"""Warmup + poly/cosine schedules and Dice/IoU per class."""

from __future__ import annotations

import math

import pytest
import torch

from trainers.metrics import SegmentationStats
from trainers.schedule import ScheduleConfig, Scheduler, lr_factor


def test_warmup_then_poly_and_cosine() -> None:
    poly = ScheduleConfig("poly", warmup_steps=10, warmup_ratio=1e-6, power=1.0)
    assert lr_factor(poly, 0, 0.0) == pytest.approx(1e-6)
    assert lr_factor(poly, 5, 0.05) == pytest.approx(0.5, abs=1e-5)
    assert lr_factor(poly, 50, 0.5) == pytest.approx(0.5)
    assert lr_factor(poly, 100, 1.0) == 0.0
    cos = ScheduleConfig("cosine")
    assert lr_factor(cos, 0, 0.0) == 1.0 and lr_factor(cos, 5, 0.5) == pytest.approx(0.5)
    assert lr_factor(ScheduleConfig("constant", min_ratio=0.1), 9, 0.9) == 1.0
    with pytest.raises(ValueError, match="schedule"):
        ScheduleConfig("step")


def test_scheduler_scales_each_group_and_resumes() -> None:
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([{"params": [a], "lr": 1.0}, {"params": [b], "lr": 10.0}])
    sched = Scheduler(opt, ScheduleConfig("poly"))
    sched.set(3, 0.75)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.25, 2.5])
    opt2 = torch.optim.AdamW([{"params": [a], "lr": 1.0}, {"params": [b], "lr": 10.0}])
    other = Scheduler(opt2, ScheduleConfig("poly"))
    other.load_state_dict(sched.state_dict())
    assert [g["lr"] for g in opt2.param_groups] == pytest.approx([0.25, 2.5])


def test_dice_and_iou_per_class() -> None:
    target = torch.tensor([[0, 1, 1, 2], [0, 1, 255, 2]])
    pred = torch.tensor([[0, 1, 0, 2], [1, 1, 2, 2]])
    stats = SegmentationStats(4)
    stats.update(pred, target)
    m = stats.compute(["bg", "a", "b", "absent"])
    assert m["dice"]["a"] == pytest.approx(2 * 2 / (3 + 3))
    assert m["iou"]["a"] == pytest.approx(2 / 4)
    assert m["dice"]["b"] == 1.0  # the ignored pixel (255) counts for nothing
    assert "absent" not in m["dice"]
    assert m["mean_dice"] == pytest.approx((2 / 3 + 1.0) / 2)
    assert math.isnan(SegmentationStats(2).compute()["mean_dice"])
