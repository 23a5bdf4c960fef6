"""A tiny recipe for testing the training loop: segment bright squares in noise (16x16, 3 classes)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from trainers.loop import Trainer
from trainers.sampling import Draw


class SquaresDataset(Dataset):
    """``n`` images; item ``i`` has a square of class 1 and (odd ``i``) a smaller square of class 2."""

    def __init__(self, n: int, size: int = 16, offset: int = 0) -> None:
        self.n, self.size, self.offset = n, size, offset

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, draw: Draw) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng(draw.index + self.offset)
        s = self.size
        image = rng.normal(0, 0.3, (1, s, s)).astype(np.float32)
        target = np.zeros((s, s), dtype=np.int64)
        y, x = rng.integers(0, s - 6, 2)
        image[0, y : y + 6, x : x + 6] += 1.0
        target[y : y + 6, x : x + 6] = 1
        if (draw.index + self.offset) % 2:
            y, x = rng.integers(0, s - 3, 2)
            image[0, y : y + 3, x : x + 3] -= 1.0
            target[y : y + 3, x : x + 3] = 2
        if draw.augment and np.random.default_rng(draw.seed).random() < 0.5:
            image, target = image[:, :, ::-1].copy(), target[:, ::-1].copy()
        return {"image": torch.from_numpy(image), "target": torch.from_numpy(target)}


class TinyNet(nn.Module):
    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.GELU(), nn.Conv2d(8, 8, 3, padding=1), nn.GELU())
        self.head = nn.Conv2d(8, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class OOMNet(TinyNet):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


class ToyTrainer(Trainer):
    name = "toy"

    def __init__(self, *args: Any, n_train: int = 24, n_val: int = 8, model_cls: type = TinyNet, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.n_train, self.n_val, self.model_cls = n_train, n_val, model_cls

    def build_model(self) -> nn.Module:
        return self.model_cls()

    def train_dataset(self) -> Dataset:
        return SquaresDataset(self.n_train)

    def val_dataset(self) -> Dataset | None:
        return SquaresDataset(self.n_val, offset=1000) if self.n_val else None

    def focus_indices(self) -> list[int]:
        return [i for i in range(self.n_train) if i % 2]

    def class_names(self) -> list[str]:
        return ["background", "square", "small"]

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        return [{"params": list(model.body.parameters())}, {"params": list(model.head.parameters()), "lr_scale": 10.0}]

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        return F.cross_entropy(model(batch["image"]), batch["target"])

    def predict(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        return model(batch["image"]).argmax(1), batch["target"]


def ddp_worker(rank: int, world: int, port: int, config: Any, cancel_at: int | None = None) -> None:
    """Entry point of one process of a gloo process group on 127.0.0.1 (for ``mp.spawn``); with
    ``cancel_at``, rank 0 cancels after that step (every rank stops, resumable)."""
    import io
    import os

    from engine.jobs import CancelToken
    from trainers.events import EventWriter

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    token = CancelToken()
    trainer = ToyTrainer(config, events=EventWriter(io.StringIO()), cancel=token)
    if cancel_at is not None and rank == 0:
        trainer.after_step = lambda step: token.cancel() if step == cancel_at else None
    trainer.fit()
