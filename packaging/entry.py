"""The bundle's one executable, three programs (PyInstaller entry script).

    Maskwright [PROJECT]            the desktop app (desktop.app:main)
    Maskwright --smoke-test ...     the offscreen end-to-end check (desktop.smoke:main)
    Maskwright trainers fit ...     the training process: ``python -m trainers ...`` of a checkout
    Maskwright engine ...           the ``maskwright`` command line (engine.cli:main)

The desktop starts training as ``[sys.executable, "trainers", "fit", ...]`` when ``sys.frozen`` is
set, so training uses this executable and never needs a Python on the machine.
"""

from __future__ import annotations

import multiprocessing
import runpy
import sys


def main() -> int:
    multiprocessing.freeze_support()  # DataLoader workers / spawn re-enter here on Windows and macOS
    args = sys.argv[1:]
    if args[:1] == ["trainers"]:
        sys.argv = [f"{sys.argv[0]} trainers", *args[1:]]
        try:
            runpy.run_module("trainers", run_name="__main__", alter_sys=True)
        except SystemExit as stop:
            return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        except ImportError as err:
            if "trainers" not in str(err):
                raise
            print(f"Maskwright: this build has no training command line ({err})", file=sys.stderr)
            return 2
        return 0
    if args[:1] == ["engine"]:
        from engine.cli import main as engine_main

        return int(engine_main(args[1:]))
    if "--smoke-test" in args:
        from desktop.smoke import main as smoke_main

        return int(smoke_main(args))
    from desktop.app import main as desktop_main

    return int(desktop_main(args))


if __name__ == "__main__":
    sys.exit(main())
