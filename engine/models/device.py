"""The one device chooser: CUDA, then Apple MPS, then CPU, unless the person says otherwise."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

__all__ = ["DeviceInfo", "choose_device", "autocast_dtype", "prepare_cpu"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceInfo:
    """A torch device and a name a person recognises ("NVIDIA RTX 4090", "CPU (2 threads)")."""

    device: torch.device
    name: str


def prepare_cpu() -> None:
    """CPU settings every model run wants: flush denormals (random-weight models run up to 7x
    slower without it)."""
    torch.set_flush_denormal(True)


def choose_device(preference: str = "auto") -> DeviceInfo:
    """Pick the device to run on.

    Parameters
    ----------
    preference
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
        Asking for a device that is absent raises ``ValueError`` with the reason, never a silent
        fallback.
    """
    pref = preference.strip().lower() or "auto"
    if pref == "auto":
        if torch.cuda.is_available():
            pref = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            pref = "mps"
        else:
            pref = "cpu"
    if pref.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError("CUDA was asked for, but torch sees no CUDA GPU on this machine")
        device = torch.device(pref)
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise ValueError(f"GPU {index} was asked for, but this machine has {torch.cuda.device_count()}")
        return DeviceInfo(torch.device("cuda", index), torch.cuda.get_device_name(index))
    if pref == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise ValueError("MPS was asked for, but this machine has no Apple GPU available to torch")
        return DeviceInfo(torch.device("mps"), "Apple GPU (MPS)")
    if pref == "cpu":
        prepare_cpu()
        return DeviceInfo(torch.device("cpu"), f"CPU ({torch.get_num_threads()} threads)")
    raise ValueError(f"unknown device {preference!r}: use auto, cpu, cuda, cuda:N or mps")


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``, or ``None`` for plain fp32.

    ``"auto"``: bf16 on CUDA when supported else fp16; fp32 on CPU and MPS. ``"bf16"``/``"fp16"``/
    ``"fp32"`` force a choice (fp16 on CPU is refused: it is slower and less exact than bf16).
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type == "cpu":
            raise ValueError("fp16 on CPU is not supported; use bf16 or fp32")
        return torch.float16
    if precision != "auto":
        raise ValueError(f"unknown precision {precision!r}: use auto, fp32, bf16 or fp16")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None
