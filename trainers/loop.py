"""The one training loop: a template method that every recipe fills in through hooks.

:class:`Trainer.fit` owns the order of things, the timing and the events: device and precision,
the process group under ``torchrun``, seeds, the optimizer (AdamW over the recipe's parameter
groups), warmup plus schedule, gradient accumulation and clipping, AMP with a gradient scaler for
fp16, validation with Dice/IoU per class, the best checkpoint, early stopping, the step or time
budget, SIGTERM/SIGINT (save a resumable checkpoint and stop cleanly), ``resume`` and out-of-
memory errors. A recipe overrides :meth:`Trainer.build_model`, :meth:`Trainer.train_dataset`,
:meth:`Trainer.loss` and, as needed, the other hooks; it never writes its own loop.

Datasets are indexed by :class:`~trainers.sampling.Draw` (index, augmentation seed, augment?) and
return dicts of tensors; the loop moves every tensor of a batch to the device.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate

from engine.errors import MaskwrightError
from engine.jobs import CancelToken, Progress, report
from engine.models.device import autocast_dtype, choose_device
from trainers import checkpoint, distributed
from trainers.checkpoint import RunState
from trainers.config import FitResult, TrainConfig
from trainers.data import to_device
from trainers.errors import OutOfMemoryError, TrainingConfigError, TrainingError, out_of_memory_advice
from trainers.events import EventWriter
from trainers.metrics import SegmentationStats
from trainers.project import Published
from trainers.sampling import BatchSampler, Draw
from trainers.signals import StopSignals
from trainers.schedule import Scheduler

__all__ = ["TrainConfig", "FitResult", "Trainer"]

_logger = logging.getLogger(__name__)


class Trainer:
    """Base class of every recipe (template method: override the hooks, never :meth:`fit`).

    Parameters
    ----------
    config
        Shared settings.
    events
        Where progress goes (default: JSON lines on stdout from rank 0).
    progress, cancel
        The engine's job protocol: ``progress(step, max_steps, message)``; a cancel stops like a
        signal does (resumable checkpoint, status ``"stopped"``).
    """

    name = "base"
    monitor = "mean_dice"  # the validation metric that picks the best checkpoint
    monitor_mode = "max"

    def __init__(
        self,
        config: TrainConfig,
        *,
        events: EventWriter | None = None,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        self.config = config
        self.events = events or EventWriter()
        self.progress = progress
        self.cancel = cancel
        self.device = torch.device("cpu")
        self.dist = distributed.DistInfo()
        self.after_step: Callable[[int], None] | None = None  # test and tooling hook
        self._stop = StopSignals(install=False)
        self._step = 0

    # ----------------------------------------------------------------- hooks
    def prepare(self) -> None:
        """Read the data and settle the model's shape (called first, once, on every rank)."""

    def build_model(self) -> nn.Module:
        """The module to train (its trainable parameters are optimised)."""
        raise TypeError(f"{type(self).__name__} must override build_model()")

    def train_dataset(self) -> Dataset:
        """Training samples, indexed by :class:`Draw`, each a dict of tensors."""
        raise TypeError(f"{type(self).__name__} must override train_dataset()")

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        """Scalar loss of one batch (a mean over its samples, so ranks average correctly)."""
        raise TypeError(f"{type(self).__name__} must override loss()")

    def val_dataset(self) -> Dataset | None:
        """Validation samples (``Draw.augment`` is ``False``), or ``None``."""
        return None

    def focus_indices(self) -> Sequence[int] | None:
        """Training indices to over-sample (``focus_fraction`` of every batch), or ``None``."""
        return None

    def class_names(self) -> list[str]:
        """Names of the output channels (0 = background) used in metrics."""
        return []

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        """AdamW parameter groups; an optional ``"lr_scale"`` multiplies ``config.lr``."""
        return [{"params": [p for p in model.parameters() if p.requires_grad]}]

    def predict(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(pred, target)`` ``(B, H, W)`` int64 class indices, for the default :meth:`validate`."""
        raise TypeError(f"{type(self).__name__} must override predict() or validate()")

    def validate(self, model: nn.Module, batches: Iterator[dict[str, Any]]) -> dict[str, Any]:
        """Metrics over this rank's share of the validation set, reduced over ranks."""
        names = self.class_names()
        stats = SegmentationStats(max(len(names), 2))
        for batch in batches:
            stats.update(*self.predict(model, batch))
        stats.all_reduce()
        return stats.compute(names or None)

    def model_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """What checkpoints keep of ``model`` (default all of it; frozen parts may be left out)."""
        return model.state_dict()

    def load_model_state(self, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`model_state` into ``model`` (strict)."""
        model.load_state_dict(state)

    def collate(self, samples: list[Any]) -> Any:  # noqa: ANN401
        """Stack samples into a batch (default: ``torch.utils.data.default_collate``)."""
        return default_collate(samples)

    def set_train_mode(self, model: nn.Module) -> None:
        """Put ``model`` in training mode (recipes keep frozen parts in eval mode here)."""
        model.train()

    def describe(self) -> dict[str, Any]:
        """Extra fields for the ``start`` event (items, classes...)."""
        return {}

    def publish(self, result: FitResult, model: nn.Module) -> Published | None:
        """Put the best weights into the project (rank 0 only); ``None`` when not publishing."""
        return None

    # ------------------------------------------------------------------ loop
    def fit(self) -> FitResult:
        """Train until the budget, early stop, a signal or a cancel; see the module docstring."""
        cfg = self.config
        try:
            dev = choose_device(cfg.device)
            amp = autocast_dtype(dev.device, cfg.precision)
        except ValueError as err:
            self.events.emit("error", kind="config", message=str(err), step=0,
                             suggestion="pick another --device or --precision")
            raise TrainingConfigError(str(err)) from err
        self.dist = distributed.setup(dev.device.type)
        self.events.enabled = self.events.enabled and self.dist.is_main
        self.device = dev.device
        if self.device.type == "cuda" and self.dist.world_size > 1:
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)
        self._stop = stop = StopSignals()
        self._step = 0
        try:
            return self._fit(dev.name, amp)
        except torch.OutOfMemoryError as err:
            raise self._out_of_memory(err) from err
        except MaskwrightError as err:
            if not isinstance(err, TrainingConfigError) or self.events.last("error") is None:
                kind = "config" if isinstance(err, TrainingConfigError) else "data"
                self.events.emit("error", kind=kind, message=str(err), suggestion="", step=self._step)
            raise
        except Exception as err:
            self.events.emit("error", kind="internal", message=f"{err.__class__.__name__}: {err}",
                             suggestion="this is a bug in Maskwright; please report it with the log", step=self._step)
            raise
        finally:
            stop.restore()
            distributed.teardown(self.dist)

    def _fit(self, device_name: str, amp: torch.dtype | None) -> FitResult:
        cfg, info, device = self.config, self.dist, self.device
        run_dir = Path(cfg.run_dir) if cfg.run_dir is not None else Path(tempfile.mkdtemp(prefix="maskwright-train-"))
        self.prepare()
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        random.seed(cfg.seed)
        raw = self.build_model().to(device)
        train_ds, val_ds = self.train_dataset(), self.val_dataset()
        groups = self.param_groups(raw)
        for g in groups:
            g["lr"] = cfg.lr * float(g.pop("lr_scale", 1.0))
        optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        scheduler = Scheduler(optimizer, cfg.schedule)
        scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
        state = RunState()
        if cfg.resume:
            state = self._load_resume(run_dir, raw, optimizer, scheduler, scaler)
        else:
            torch.manual_seed(cfg.seed + 1 + info.rank)
        model: nn.Module = raw
        if info.world_size > 1:
            ids = [device.index] if device.type == "cuda" else None
            if device.type == "cuda":  # batch statistics over the global batch, as one process sees them
                raw = nn.SyncBatchNorm.convert_sync_batchnorm(raw)
            model = nn.parallel.DistributedDataParallel(raw, device_ids=ids)
        sampler = BatchSampler(len(train_ds), cfg.batch_size, cfg.seed, focus=self.focus_indices(),
                               focus_fraction=cfg.focus_fraction, rank=info.rank, world_size=info.world_size,
                               state=state.sampler)
        loader = DataLoader(train_ds, batch_sampler=sampler, collate_fn=self.collate, num_workers=cfg.num_workers,
                            pin_memory=device.type == "cuda")
        precision = str(amp or "fp32").replace("torch.", "")
        self.events.emit("start", recipe=self.name, device=device_name, precision=precision,
                         world_size=info.world_size, max_steps=cfg.max_steps, time_budget_s=cfg.time_budget_s,
                         batch_size=cfg.batch_size, accum_steps=cfg.accum_steps, train_samples=len(train_ds),
                         val_samples=len(val_ds) if val_ds is not None else 0, resumed_from_step=state.step,
                         run_dir=str(run_dir), **self.describe())
        params = [p for g in optimizer.param_groups for p in g["params"]]
        batches = iter(loader)
        step, consumed, last_val = state.step, 0, -1
        t_start = time.perf_counter() - state.elapsed
        t_log, step_log = time.perf_counter(), step
        loss_acc, n_acc = torch.zeros((), device=device), 0
        self.set_train_mode(raw)
        while True:
            elapsed = time.perf_counter() - t_start
            reason = self._stop_reason(step, elapsed, state)
            if reason is not None:
                break
            progress = step / cfg.max_steps
            if cfg.time_budget_s:
                progress = max(progress, elapsed / cfg.time_budget_s)
            lr = scheduler.set(step, progress)
            for micro in range(cfg.accum_steps):
                batch = to_device(next(batches), device)
                consumed += 1
                sync = micro == cfg.accum_steps - 1 or info.world_size == 1
                with contextlib.nullcontext() if sync else model.no_sync():  # type: ignore[operator]
                    with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                        loss = self.loss(model, batch)
                    scaler.scale(loss / cfg.accum_steps).backward()
                loss_acc += loss.detach().float()
                n_acc += 1
            if cfg.clip_grad_norm:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(params, cfg.clip_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            self._step = step
            state.sampler = sampler.state_after(consumed)
            if step % cfg.log_every == 0 or step == cfg.max_steps:
                mean_loss = distributed.all_reduce_mean(float(loss_acc.item()) / max(n_acc, 1))
                if not math.isfinite(mean_loss):
                    raise TrainingError(f"the loss became {mean_loss} at step {step}: lower the learning rate "
                                        "or use --precision fp32")
                now = time.perf_counter()
                rate = (step - step_log) * cfg.batch_size * cfg.accum_steps / max(now - t_log, 1e-9)
                self.events.emit("step", step=step, max_steps=cfg.max_steps, loss=round(mean_loss, 6), lr=lr,
                                 samples_per_s=round(rate, 3), elapsed_s=round(now - t_start, 2))
                report(self.progress, step, cfg.max_steps, f"loss {mean_loss:.4f}")
                state.last_loss = mean_loss
                t_log, step_log, loss_acc, n_acc = now, step, torch.zeros((), device=device), 0
            if val_ds is not None and step % cfg.val_every == 0:
                self._validate_and_track(raw, val_ds, step, run_dir, state)
                last_val = step
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                elapsed = time.perf_counter() - t_start
                self._save_resume(run_dir, step, raw, optimizer, scheduler, scaler, state, elapsed)
            if self.after_step is not None:
                self.after_step(step)
        elapsed = time.perf_counter() - t_start
        if reason in ("signal", "cancelled"):
            self._save_resume(run_dir, step, raw, optimizer, scheduler, scaler, state, elapsed)
            self.events.emit("stopped", step=step, reason=reason, resume=str(run_dir / checkpoint.RESUME_NAME))
            return FitResult("stopped", reason, step, state.best_step, state.best_metrics, None, run_dir)
        if val_ds is not None and last_val != step and step > state.best_step:
            self._validate_and_track(raw, val_ds, step, run_dir, state)
        if val_ds is None:
            state.best_step, state.best_metrics = step, {"train_loss": state.last_loss}
            state.best_state = self._snapshot(raw) if info.is_main else None
        elif state.best_state is None and info.is_main:
            best_path = run_dir / checkpoint.BEST_NAME  # resumed run whose best came before the stop
            if state.best_step >= 0 and best_path.is_file():
                state.best_state = checkpoint.load(best_path)["model"]
            else:
                state.best_step, state.best_state = step, self._snapshot(raw)
        self._save_resume(run_dir, step, raw, optimizer, scheduler, scaler, state, elapsed)
        result = FitResult("done", reason, step, state.best_step, state.best_metrics, state.best_state, run_dir)
        pub = self.publish(result, raw) if info.is_main else None
        if pub is not None:  # every field the lock holder needs to record it when we could not
            self.events.emit("checkpoint", step=state.best_step, path=str(pub.path), kind="published",
                             description=str(pub.description), checkpoint_id=pub.checkpoint_id,
                             registered=pub.checkpoint_id is not None, model=pub.record["model"],
                             parent_id=pub.record["parent_id"], metrics=pub.record["metrics"])
        published = str(pub.path) if pub is not None else None
        self.events.emit("done", step=step, reason=reason, best_step=state.best_step,
                         best_metrics=state.best_metrics, elapsed_s=round(elapsed, 2), published=published)
        return FitResult("done", reason, step, state.best_step, state.best_metrics, state.best_state, run_dir,
                         published)

    # --------------------------------------------------------------- helpers
    def _snapshot(self, raw: nn.Module) -> dict[str, torch.Tensor]:
        return {k: v.detach().to("cpu", copy=True) for k, v in self.model_state(raw).items()}

    def _stop_reason(self, step: int, elapsed: float, state: RunState) -> str | None:
        cfg = self.config
        flags = [
            1.0 if self._stop.received is not None else 0.0,
            1.0 if self.cancel is not None and self.cancel.cancelled else 0.0,
            1.0 if cfg.time_budget_s is not None and elapsed >= cfg.time_budget_s else 0.0,
        ]
        if self.dist.world_size > 1:
            t = torch.tensor(flags, dtype=torch.float64)
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
            flags = t.tolist()
        if flags[0]:
            return "signal"
        if flags[1]:
            return "cancelled"
        if step >= cfg.max_steps:
            return "steps"
        if flags[2]:
            return "time"
        if cfg.early_stop_patience is not None and state.bad_validations >= cfg.early_stop_patience:
            return "early_stop"
        return None

    def _validate_and_track(self, raw: nn.Module, val_ds: Dataset, step: int, run_dir: Path, state: RunState) -> None:
        cfg, info = self.config, self.dist
        draws = [Draw(i, 0, False) for i in range(info.rank, len(val_ds), info.world_size)]  # type: ignore[arg-type]
        loader = DataLoader(val_ds, batch_size=cfg.val_batch_size, sampler=draws,  # type: ignore[arg-type]
                            collate_fn=self.collate,
                            num_workers=cfg.num_workers)
        amp = autocast_dtype(self.device, cfg.precision)
        raw.eval()
        autocast = torch.autocast(self.device.type, dtype=amp or torch.float32, enabled=amp is not None)
        with torch.inference_mode(), autocast:
            metrics = self.validate(raw, (to_device(b, self.device) for b in loader))
        self.set_train_mode(raw)
        value = float(metrics.get(self.monitor, math.nan))
        better = math.isfinite(value) and (
            state.best_value is None
            or (value > state.best_value if self.monitor_mode == "max" else value < state.best_value)
        )
        if better:
            state.best_value, state.best_step, state.best_metrics = value, step, metrics
            state.bad_validations = 0
            if info.is_main:
                state.best_state = self._snapshot(raw)
                path = run_dir / checkpoint.BEST_NAME
                checkpoint.save(path, {"model": state.best_state, "step": step})
                self.events.emit("checkpoint", step=step, path=str(path), kind="best")
        else:
            state.bad_validations += 1
        self.events.emit("val", step=step, metrics=metrics, best=better)

    def _save_resume(self, run_dir: Path, step: int, raw: nn.Module, optimizer: torch.optim.Optimizer,
                     scheduler: Scheduler, scaler: torch.amp.GradScaler, state: RunState, elapsed: float) -> None:
        rngs = distributed.gather_objects(distributed.rng_state())
        if self.dist.is_main:
            state.step, state.elapsed = step, elapsed
            path = run_dir / checkpoint.RESUME_NAME
            checkpoint.save_resume(path, recipe=self.name, model_state=self.model_state(raw), optimizer=optimizer,
                                   scheduler=scheduler, scaler=scaler, state=state, rngs=rngs,
                                   config=self.config.as_dict())
            self.events.emit("checkpoint", step=step, path=str(path), kind="resume")

    def _load_resume(self, run_dir: Path, raw: nn.Module, optimizer: torch.optim.Optimizer,
                     scheduler: Scheduler, scaler: torch.amp.GradScaler) -> RunState:
        state, rngs = checkpoint.load_resume(run_dir / checkpoint.RESUME_NAME, recipe=self.name,
                                             load_model=lambda sd: self.load_model_state(raw, sd),
                                             optimizer=optimizer, scheduler=scheduler, scaler=scaler)
        if len(rngs) == self.dist.world_size:
            distributed.set_rng_state(rngs[self.dist.rank])
        else:  # another number of processes: the data order stays exact, dropout noise cannot
            torch.manual_seed(self.config.seed + 1 + self.dist.rank + state.step)
        return state

    def _out_of_memory(self, err: BaseException) -> OutOfMemoryError:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        message, suggestion = out_of_memory_advice(self.device.type, self.config.batch_size, self.config.accum_steps,
                                                   world_size=self.dist.world_size, step=self._step)
        self.events.emit("error", kind="out_of_memory", message=message, suggestion=suggestion, step=self._step)
        return OutOfMemoryError(f"{message}; {suggestion}")
