"""``make bench``: run every ``tests/bench/bench_*.py`` (or those named on the command line).

Each benchmark module has a ``main() -> None`` that measures our code and a reference in the
same run and prints a table. ``python -m tests.bench io medical`` runs bench_io and bench_medical.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

import torch


def main(argv: list[str]) -> int:
    torch.set_flush_denormal(True)
    here = Path(__file__).parent
    names = sorted(p.stem for p in here.glob("bench_*.py"))
    if argv:
        wanted = {a.removeprefix("bench_") for a in argv}
        names = [n for n in names if n.removeprefix("bench_") in wanted]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CUDA: {torch.cuda.is_available()}")
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        importlib.import_module(f"tests.bench.{name}").main()
        print(f"({name} took {time.perf_counter() - start:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
