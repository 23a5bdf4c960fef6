"""Training throughput per recipe (samples per second), through the real loop, at realistic sizes.

Each recipe runs a few optimizer steps of ``Trainer.fit`` on a synthetic project; the rate is the
median of the ``step`` events after the first (warm-up) step. The reference, measured in the same
run, is a bare PyTorch step of the same model and batch (forward, loss, backward, AdamW): the
difference is the loop's own cost (data, augmentation, events, bookkeeping).

CPU: MCANet-T on 256x256 slices (batch 4), Cascade-CLIP on a random-weight ViT-B/16 at 224
(batch 2), DenseVLM on a random-weight ViT-B/16 at 224 (batch 1, up to 36 regions, each region a
224x224 teacher crop). With CUDA: the same recipes with AMP (bf16 where supported, else fp16)
and larger batches, plus the peak GPU memory. Nothing is downloaded.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from engine.openvocab.clip_model import ClipSpec
from tests.bench._table import print_table
from tests.trainers._synth import photo_project, volume_project
from trainers.cascade import CascadeSettings, CascadeTrainer
from trainers.densevlm import DenseVLMSettings, DenseVLMTrainer
from trainers.events import EventWriter
from trainers.loop import TrainConfig, Trainer
from trainers.mcanet import MCANetSettings, MCANetTrainer
from trainers.sampling import BatchSampler

VIT_B = ClipSpec(name="ViT-B-16-quickgelu", pretrained=None, seed=0)


class _Quiet:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def _fit_rate(trainer: Trainer) -> float:
    """Median samples/s over the step events after the first step."""
    rates: list[float] = []
    trainer.events = EventWriter(_Quiet(), listener=lambda e: rates.append(e["samples_per_s"])  # type: ignore[arg-type]
                                 if e["event"] == "step" and e["step"] > 1 else None)
    trainer.fit()
    return statistics.median(rates)


def _bare_rate(trainer: Trainer, steps: int) -> float:
    """Samples/s of a plain forward/backward/AdamW step on the recipe's model and batches."""
    device = torch.device(trainer.config.device if trainer.config.device != "auto" else "cpu")
    trainer.device = device
    trainer.prepare()
    model = trainer.build_model().to(device)
    trainer.set_train_mode(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    ds = trainer.train_dataset()
    draws = iter(BatchSampler(len(ds), trainer.config.batch_size, 0))
    batch = trainer.collate([ds[d] for d in next(draws)])
    batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    amp = trainer.config.precision if trainer.config.precision in ("bf16", "fp16") else None
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp or "", torch.float32)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=amp is not None):
            loss = trainer.loss(model, batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return trainer.config.batch_size / statistics.median(times[1:])


def _config(run_dir: Path, *, steps: int, batch: int, device: str, precision: str) -> TrainConfig:
    return TrainConfig(max_steps=steps, batch_size=batch, lr=1e-6, val_every=10**6, log_every=1, device=device,
                       precision=precision, run_dir=run_dir)


def _cases(root: Path, device: str) -> list[tuple[str, str, Callable[[int, str], Trainer], int]]:
    vols = volume_project(root / "vols", [1, 2, 3], depth=8, size=256)
    photos = photo_project(root / "photos", [1, 2, 3, 4], size=256)
    gpu = device == "cuda"

    def mcanet(steps: int, precision: str) -> Trainer:
        cfg = _config(root / f"r-m-{time.time_ns()}", steps=steps, batch=16 if gpu else 4, device=device,
                      precision=precision)
        return MCANetTrainer(cfg, MCANetSettings(project=vols, init="scratch", crop=256, publish=False,
                                                 val_fraction=0.0))

    def cascade(steps: int, precision: str) -> Trainer:
        cfg = _config(root / f"r-c-{time.time_ns()}", steps=steps, batch=8 if gpu else 2, device=device,
                      precision=precision)
        return CascadeTrainer(cfg, CascadeSettings(project=photos, backbone="ViT-B-16-quickgelu.random", clip=VIT_B,
                                                   crop=224, publish=False, val_fraction=0.0,
                                                   templates=("a photo of a {}.",)))

    def densevlm(steps: int, precision: str) -> Trainer:
        cfg = _config(root / f"r-d-{time.time_ns()}", steps=steps, batch=4 if gpu else 1, device=device,
                      precision=precision)
        return DenseVLMTrainer(cfg, DenseVLMSettings(project=photos, backbone="ViT-B-16-quickgelu.random", clip=VIT_B,
                                                     crop=224, publish=False, val_fraction=0.0,
                                                     templates=("a photo of a {}.",)))

    return [("mcanet", "MCANet-T, 256x256 slices", mcanet, 4),
            ("cascade", "Cascade-CLIP head, ViT-B/16 frozen, 224", cascade, 3),
            ("densevlm", "DenseVLM, ViT-B/16 student + teacher, 224", densevlm, 3)]


def main() -> None:
    torch.set_flush_denormal(True)
    rows: list[list[Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, what, make, steps in _cases(root / "cpu", "cpu"):
            fit = _fit_rate(make(steps, "fp32"))
            bare = _bare_rate(make(steps, "fp32"), min(steps, 3) if name != "densevlm" else 2)
            rows.append([name, what, "cpu fp32", fit, bare, f"{fit / bare:.0%}", "-"])
        if torch.cuda.is_available():  # the GPU path: AMP on, peak memory
            amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
            for name, what, make, steps in _cases(root / "gpu", "cuda"):
                torch.cuda.reset_peak_memory_stats()
                fit = _fit_rate(make(steps + 5, amp))
                peak = torch.cuda.max_memory_allocated() / 2**30
                bare = _bare_rate(make(steps, amp), 5)
                rows.append([name, what, f"cuda {amp}", fit, bare, f"{fit / bare:.0%}", f"{peak:.2f} GiB"])
    print_table("Training throughput (samples/s): Trainer.fit vs a bare PyTorch step of the same model",
                ["recipe", "model and size", "device", "fit samples/s", "bare step samples/s", "fit/bare",
                 "peak GPU memory"], rows)


if __name__ == "__main__":
    main()
