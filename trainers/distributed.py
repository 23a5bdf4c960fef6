"""torch.distributed set-up for the training process (``torchrun`` or a single process).

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the process group is started with
NCCL on CUDA and gloo elsewhere; a plain ``python -m trainers`` runs as rank 0 of 1.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

__all__ = [
    "DistInfo", "setup", "teardown", "all_reduce_max", "all_reduce_mean", "gather_objects", "rng_state",
    "set_rng_state",
]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size``, ``local_rank`` on its machine,
    and whether :func:`setup` started the process group (and so must end it)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0 writes events, checkpoints and publishes."""
        return self.rank == 0


def setup(device_type: str) -> DistInfo:
    """Join the process group described by the environment, if any.

    Parameters
    ----------
    device_type
        ``"cuda"`` selects the NCCL backend, anything else gloo.
    """
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    backend = "nccl" if device_type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    info = DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), True)
    _logger.info("joined process group: rank %d of %d (%s)", info.rank, info.world_size, backend)
    return info


def teardown(info: DistInfo) -> None:
    """End the process group if :func:`setup` started it."""
    if info.owns_group and dist.is_initialized():
        # every rank reaches this point before any tears down: a rank destroying gloo while another is
        # still in its last collective aborts that one ("terminate called without an active exception")
        dist.barrier()
        dist.destroy_process_group()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_max(value: float) -> float:
    """The maximum of ``value`` over ranks (``value`` itself in a single process)."""
    if not _active():
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def all_reduce_mean(value: float) -> float:
    """The mean of ``value`` over ranks."""
    if not _active():
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def gather_objects(obj: Any) -> list[Any]:  # noqa: ANN401
    """Every rank's ``obj``, in rank order (``[obj]`` in a single process)."""
    if not _active():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def rng_state() -> dict[str, Any]:
    """This process's random states as plain tensors and tuples (loadable with weights_only)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
