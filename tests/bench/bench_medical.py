"""MCANet speed: slices per second on CPU, and a 512x512x300 CT volume end to end.

Table 1: MCANet-T and -S at 256x256 and 512x512, batch 1 and 8. Reference: the plain eager
forward of the same network with the same weights (``torch.no_grad``, NCHW, unfused modules,
the default glibc allocator), measured in this run. Ours: :func:`engine.medical.fast.fuse_for_inference`
(folded BN/layer scales, merged strip convs, low-res squeeze, NHWC) under ``inference_mode``
with the allocator tuned (:func:`~engine.medical.fast.tune_cpu_allocator`); "max |dlogit|" is the
largest difference to the reference logits (fp32). bf16: the fused network under CPU bf16
autocast, with the Dice of its labels against the fp32 labels. Table 2 separates the allocator's
share of the gain. Weights are name-seeded random weights (no trained MCANet exists).

Table 2 (end to end): a synthetic 300x512x512 int16 CT at 0.7 mm through ``segment()`` (CT window,
resampling to the model's 0.8 mm, batches of 8, back to 0.7 mm, uint8 probabilities) and a
NIfTI write, in a child process so its peak RSS is its own. ``MASKWRIGHT_BENCH_CT_SLICES``
lowers the slice count for a quick look (then the table says so). With CUDA, the same on GPU
in bf16 and fp16.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from tests.bench._table import best_of, print_table

_REPO = Path(__file__).resolve().parents[2]
_CT_SLICES = int(os.environ.get("MASKWRIGHT_BENCH_CT_SLICES", "300"))


def _seeded_model(variant: str, classes: int = 3) -> torch.nn.Module:
    from engine.medical.mcanet import create_mcanet
    from tests.engine.medical._seeded import seeded_state_dict

    model = create_mcanet(variant, out_channels=classes).eval()
    model.load_state_dict(seeded_state_dict({k: tuple(v.shape) for k, v in model.state_dict().items()}))
    return model


def _dice(a: torch.Tensor, b: torch.Tensor) -> float:
    fa, fb = a > 0, b > 0
    inter = (fa & fb & (a == b)).sum().item()
    return 2.0 * inter / max(1, fa.sum().item() + fb.sum().item())


def _timed(fn: Callable[[], torch.Tensor], *, warm: bool) -> tuple[float, torch.Tensor]:
    """``(best seconds, output)``: batch-1 cases get a warm-up and two timed calls, batch-8 cases
    one timed call (after the batch-1 case of the same size has warmed the kernels up)."""
    if not warm:
        t0 = time.perf_counter()
        out = fn()
        return time.perf_counter() - t0, out
    out = fn()
    return best_of(fn, repeat=2, warmup=0), out


def _throughput() -> None:
    from engine.medical.fast import fuse_for_inference, tune_cpu_allocator

    cases = [(v, s, b) for v in ("t", "s") for s in (256, 512) for b in (1, 8)]
    models = {v: _seeded_model(v) for v in ("t", "s")}
    inputs = {(s, b): torch.randn(b, 3, s, s, generator=torch.Generator().manual_seed(s + b)) for s in (256, 512)
              for b in (1, 8)}
    ref_time, ref_out = {}, {}
    for v, s, b in cases:  # the reference first, with the default allocator
        x = inputs[(s, b)]
        with torch.no_grad():
            ref_time[(v, s, b)], ref_out[(v, s, b)] = _timed(lambda: models[v](x), warm=b == 1)
    tune_cpu_allocator()
    fused = {v: fuse_for_inference(m) for v, m in models.items()}
    rows = []
    for v, s, b in cases:
        x, net = inputs[(s, b)], fused[v]
        with torch.inference_mode():
            t, out = _timed(lambda: net(x), warm=b == 1)
            diff = (out - ref_out[(v, s, b)]).abs().max().item()
            bf16_cells: list[object] = ["-", "-", "-"]
            if b == 8:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    t16, out16 = _timed(lambda: net(x), warm=False)
                dice = _dice(out16.float().argmax(1), ref_out[(v, s, b)].argmax(1))
                bf16_cells = [b / t16, f"{ref_time[(v, s, b)] / t16:.2f}x", f"{dice:.3f}"]
        rows.append([f"MCANet-{v.upper()}", f"{s}x{s}", b, b / ref_time[(v, s, b)], b / t,
                     f"{ref_time[(v, s, b)] / t:.2f}x", f"{diff:.1e}", *bf16_cells])
    print_table("MCANet CPU throughput (slices/s; reference = plain eager fp32, same weights, same run)",
                ["model", "size", "batch", "eager ref", "ours fp32", "speed-up", "max |dlogit|",
                 "ours bf16", "bf16 speed-up", "Dice bf16/fp32"], rows)
    # how much of the gain is the allocator alone: the plain eager forward again, now with it tuned
    x = inputs[(256, 8)]
    with torch.no_grad():
        t_eager_tuned, _ = _timed(lambda: models["t"](x), warm=False)
    with torch.inference_mode():
        t_ours, _ = _timed(lambda: fused["t"](x), warm=False)
    print_table("Share of the allocator (MCANet-T, 256x256, batch 8, slices/s)",
                ["eager, default malloc", "eager, tuned malloc", "ours (fused + tuned malloc)"],
                [[8 / ref_time[("t", 256, 8)], 8 / t_eager_tuned, 8 / t_ours]])


_CHILD = r"""
import json, sys, time, resource, tempfile
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, {repo!r})
torch.set_flush_denormal(True)
from engine.items import Volume
from engine.io.masks import write_mask_nifti
from engine.medical.checkpoint import IntensityWindow, MCANetMeta, softmax_classes, save_mcanet_checkpoint, build_model
from engine.medical.infer import InferenceOptions, segment
from tests.engine.medical._seeded import seeded_state_dict
device, precision, depth = sys.argv[1], sys.argv[2], int(sys.argv[3])
meta = MCANetMeta(variant="t", classes=softmax_classes(["liver", "spleen"]), modality="CT",
                  window=IntensityWindow("ct", 40.0, 400.0), spacing=(0.8, 0.8), tile_size=(512, 512))
model = build_model(meta).eval()
model.load_state_dict(seeded_state_dict({{k: tuple(v.shape) for k, v in model.state_dict().items()}}))
folder = Path(tempfile.mkdtemp())
ckpt = folder / "ct.safetensors"
save_mcanet_checkpoint(ckpt, model, meta)
rng = np.random.default_rng(0)
yy, xx = np.ogrid[:512, :512]
arr = (-1000 + 1040 * (((yy - 256) ** 2 + (xx - 256) ** 2) < 200 ** 2)).astype(np.int16) + rng.integers(
    -30, 30, size=(1, 512, 512), dtype=np.int16)
vol = Volume(np.ascontiguousarray(np.broadcast_to(arr, (depth, 512, 512))), spacing=(0.7, 0.7, 1.5), modality="CT")
opts = InferenceOptions(device=device, precision=precision, batch_size=8)
if device == "cuda":
    segment(Volume(vol.array[:8].copy(), spacing=vol.spacing, modality="CT"), ckpt, options=opts)  # warm-up
    torch.cuda.synchronize()
t0 = time.perf_counter()
result = segment(vol, ckpt, options=opts)
t1 = time.perf_counter()
write_mask_nifti(folder / "mask.nii.gz", result.label_map.data, vol)
t2 = time.perf_counter()
peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else 0.0
def peak_rss_mb():
    # VmHWM belongs to this process image; ru_maxrss would include the forked parent's pages
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(dict(segment=t1 - t0, write=t2 - t1, gpu_mb=peak_gpu, rss_mb=peak_rss_mb())))
"""


def _volume_end_to_end() -> None:
    runs = [("cpu", "fp32")]
    if torch.cuda.is_available():
        runs += [("cuda", "bf16"), ("cuda", "fp16")]
    rows = []
    for device, precision in runs:
        code = _CHILD.format(repo=str(_REPO))
        with tempfile.TemporaryDirectory():
            proc = subprocess.run([sys.executable, "-c", code, device, precision, str(_CT_SLICES)],
                                  capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            reason = (proc.stderr.strip().splitlines() or ["?"])[-1]
            rows.append([device, precision, _CT_SLICES, "failed: " + reason, "", "", "", "", ""])
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        total = r["segment"] + r["write"]
        rows.append([device, precision, _CT_SLICES, r["segment"], r["write"], total,
                     f"{1000 * r['segment'] / _CT_SLICES:.0f}", f"{r['rss_mb']:.0f}",
                     f"{r['gpu_mb']:.0f}" if device == "cuda" else "-"])
    label = "" if _CT_SLICES == 300 else f" [ONLY {_CT_SLICES} SLICES: MASKWRIGHT_BENCH_CT_SLICES is set]"
    print_table(f"CT 512x512x{_CT_SLICES} int16 end to end, MCANet-T (window, resample 0.7->0.8 mm, batch 8, back,"
                f" NIfTI write){label}",
                ["device", "precision", "slices", "segment s", "write s", "total s", "ms/slice",
                 "peak RSS MB", "peak GPU MB"], rows)


def main() -> None:
    torch.set_flush_denormal(True)
    t0 = time.perf_counter()
    _throughput()
    _volume_end_to_end()
    print(f"(bench_medical: {time.perf_counter() - t0:.0f} s; peak RSS of the throughput part "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
