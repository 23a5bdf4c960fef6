"""``Maskwright --smoke-test``: drive the real main window through one whole flow, offscreen.

Used on the built bundle (``packaging/build.py``, ``tests/packaging``) and runnable from a
checkout (``python -m desktop.smoke``). In a temporary folder (settings, weights folder and
sample project all inside it, nothing of the person's touched) it:

1. builds the bundled sample project (``engine.sample.ensure_sample_project``) and opens it in a
   :class:`~desktop.main_window.MainWindow`;
2. pre-annotates with the default catalog model, whose weights are absent (on Linux the cache
   folder is moved into the work folder): the window must show a message saying how to get
   them, and must not try to download them by itself;
3. pre-annotates a sample photo with the bundled random-weight test model
   (``resources/models/tiny-test-clip``, loaded as ``local-dir:``) in the window's model worker;
4. paints a square of one class through the document (one undo step) and saves;
5. closes the window (which saves), reopens the project with the engine and checks the saved
   map holds the edit on top of the model's version;
6. marks the sample CT corrected (a bone threshold as "spine") and runs one step of MCANet
   training as a separate process, started the way the app starts it
   (``engine.cli.train.trainer_command``: in the bundle, this executable with ``trainers fit``),
   and checks a checkpoint was published (``--no-train`` leaves this out);
7. all the while, refuses and records every attempt to reach a host other than this machine
   (a name lookup or a connect): start-up and pre-annotation must not download anything.

Exit status 0 when every step passed; 1 with the failing step on stderr otherwise. Each step is
printed with its time, and ``--report FILE`` writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["main", "run_smoke_test", "NetworkGuard", "SmokeFailure"]

_logger = logging.getLogger(__name__)

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", ""}


class SmokeFailure(RuntimeError):
    """A smoke-test step did not do what it should."""


class NetworkGuard:
    """Refuse and record name lookups and connections to hosts other than this machine.

    Patches ``socket.getaddrinfo`` and ``socket.socket.connect``/``connect_ex`` (what urllib,
    requests/httpx and huggingface_hub all go through); Unix sockets and loopback are allowed.
    """

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._saved: tuple[Any, Any, Any] | None = None

    def _check(self, host: object, what: str) -> None:
        text = str(host[0] if isinstance(host, tuple) else host)
        if isinstance(host, (str, bytes)) and not isinstance(host, str):
            text = host.decode(errors="replace")
        if text in _LOCAL_HOSTS or text.startswith("127.") or text.startswith("/"):
            return
        self.attempts.append(f"{what} {text}")
        raise OSError(f"network access refused by the smoke test ({what} {text})")

    def __enter__(self) -> NetworkGuard:
        guard = self
        real_getaddrinfo, real_connect, real_connect_ex = socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex
        self._saved = (real_getaddrinfo, real_connect, real_connect_ex)

        def getaddrinfo(host, *args, **kwargs):  # noqa: ANN001, ANN202 - socket's own signature
            guard._check(host, "lookup")
            return real_getaddrinfo(host, *args, **kwargs)

        def connect(sock, address):  # noqa: ANN001, ANN202
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                guard._check(address, "connect")
            return real_connect(sock, address)

        def connect_ex(sock, address):  # noqa: ANN001, ANN202
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                guard._check(address, "connect")
            return real_connect_ex(sock, address)

        socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
        socket.socket.connect = connect  # type: ignore[method-assign]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex = self._saved  # type: ignore[method-assign]
            self._saved = None


def _wait(app: Any, cond: Callable[[], object], timeout_s: float, what: str, window: Any = None) -> None:
    """Process Qt events until ``cond()`` is true; fail after ``timeout_s`` or on a shown error."""
    end = time.monotonic() + timeout_s
    seen = len(window.notifier.history) if window is not None else 0
    while True:
        app.processEvents()
        if cond():
            return
        if window is not None:
            errors = [t for level, t in window.notifier.history[seen:] if level == "error"]
            if errors:
                raise SmokeFailure(f"{what}: the window showed an error: {errors[-1]}")
        if time.monotonic() > end:
            raise SmokeFailure(f"{what}: not done after {timeout_s:.0f} s")
        time.sleep(0.01)


def _idle(window: Any) -> bool:
    return not window.jobs.jobs


def _missing_weights_message(app: Any, window: Any, timeout_s: float) -> str:
    """Pre-annotate with the default catalog model while its weights are absent: a clear message, no download."""
    from engine.models.catalog import DEFAULT_PHOTO_MODEL, default_catalog
    from engine.models.weights import WeightsManager

    if WeightsManager(default_catalog()).path(DEFAULT_PHOTO_MODEL) is not None:
        return f"not checked: {DEFAULT_PHOTO_MODEL} is on this computer"
    window.settings.set("model.photo", {})
    seen = len(window.notifier.history)
    window.preannotate("current")
    _wait(app, lambda: any(level == "error" for level, _ in window.notifier.history[seen:]) and _idle(window),
          timeout_s, "pre-annotate without weights")
    text = next(t for level, t in window.notifier.history[seen:] if level == "error")
    if "download" not in text.lower() or "Traceback" in text:
        raise SmokeFailure(f"missing weights: the message does not say how to get them: {text!r}")
    box = window.notifier.box
    if box is not None:
        box.close()
    return text


def test_model_folder() -> Path:
    """The bundled random-weight open_clip model folder (``resources/models/tiny-test-clip``)."""
    import resources

    folder = resources.path("models/tiny-test-clip")
    if not (folder / "open_clip_config.json").is_file():
        raise SmokeFailure(f"the bundled test model is missing: {folder}")
    return folder


def _train_once(folder: Path, timeout_s: float) -> str:
    """Mark the sample volume corrected (a bone threshold as "spine") and run one training step.

    The training process is started the way the app starts it (:func:`engine.cli.train.trainer_command`):
    in the bundle that is this executable with ``trainers fit``, never a Python on the machine.
    """
    import subprocess

    import numpy as np

    from desktop.loading import read_item_source
    from engine.cli.train import trainer_command
    from engine.store.project import Project
    from engine.store.records import Provenance

    with Project.open(folder) as project:
        record = next(r for r in project.items() if r.kind == "volume")
        volume = read_item_source(record)
        spine = project.labels().find("spine")
        if spine is None:
            raise SmokeFailure("train: the sample project has no 'spine' class")
        labels = np.zeros(volume.shape, dtype=project.labels().dtype())
        labels[volume.array > 250] = spine.id
        project.save_annotation(record.id, labels, provenance=Provenance.from_person(), status="corrected")
    cmd = trainer_command("fit", "--project", str(folder), "--recipe", "mcanet", "--init", "scratch", "--steps", "1",
                          "--batch-size", "2", "--crop", "64", "--device", "cpu", "--warmup", "0")
    if cmd[0] != sys.executable or (getattr(sys, "frozen", False) and cmd[1] != "trainers"):
        raise SmokeFailure(f"train: the training command does not use this executable: {cmd[:3]}")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as err:
        raise SmokeFailure(f"train: no answer after {timeout_s:.0f} s") from err
    events = []
    for line in proc.stdout.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    done = [e for e in events if e.get("event") == "done"]
    if proc.returncode != 0 or not done or not done[-1].get("published"):
        raise SmokeFailure(f"train: exit {proc.returncode}, events {[e.get('event') for e in events]}: "
                           f"{proc.stderr.strip()[-1500:]}")
    published = Path(done[-1]["published"])
    if not published.is_file():
        raise SmokeFailure(f"train: the published checkpoint is missing: {published}")
    return f"{' '.join(Path(c).name for c in cmd[:3])} ... -> {published.name}"


def run_smoke_test(workdir: Path, *, timeout_s: float = 600.0, train: bool = True,
                   log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run the flow of the module docstring in ``workdir``; returns the steps (name, seconds, detail).

    Raises :class:`SmokeFailure` naming the step that failed.
    """
    import numpy as np

    steps: list[dict[str, Any]] = []
    t_all = time.perf_counter()

    def step(name: str, t0: float, detail: str = "") -> None:
        steps.append({"step": name, "seconds": round(time.perf_counter() - t0, 3), "detail": detail})
        log(f"smoke: {name}: ok ({time.perf_counter() - t0:.1f} s){' - ' + detail if detail else ''}")

    t0 = time.perf_counter()
    from desktop.app import create_app
    from desktop.main_window import MainWindow
    from desktop.settings import Settings
    from engine.sample import ensure_sample_project
    from engine.store.project import Project

    app = create_app()
    step("import and QApplication", t0, f"platform {app.platformName()}")

    t0 = time.perf_counter()
    folder = ensure_sample_project(workdir / "sample-project")
    with Project.open(folder, readonly=True) as project:
        photos = [r for r in project.items() if r.kind == "photo"]
        n_items = len(project.items())
    if not photos:
        raise SmokeFailure("the sample project has no photo")
    step("sample project built", t0, f"{n_items} items in {folder}")

    t0 = time.perf_counter()
    settings = Settings.load(workdir / "config")
    model_dir = test_model_folder()
    settings.set("device", "cpu")
    settings.set("weights_root", str(workdir / "weights"))
    window = MainWindow(settings)
    window.ask = lambda text: False  # type: ignore[method-assign] - no recovery question is expected
    window.show()
    window.open_project(folder)
    _wait(app, lambda: window.document.editor is not None and _idle(window), timeout_s, "open the sample project",
          window)
    target = photos[0]
    if window.document.record is None or window.document.record.id != target.id:
        window.load_item(target.id)
        _wait(app, lambda: window.document.record is not None and window.document.record.id == target.id
              and _idle(window), timeout_s, f"open {target.name}", window)
    step("window opened the sample project", t0, f"showing {target.name}")

    t0 = time.perf_counter()
    window.document.add_classes("cat; kitten, cup; mug, person")
    step("missing model weights", t0, _missing_weights_message(app, window, timeout_s))

    t0 = time.perf_counter()
    settings.set("model.photo", {"model": f"local-dir:{model_dir}", "segment": {"background": False}})
    window.preannotate("current")
    _wait(app, lambda: window.document.project.item(target.id).status == "predicted" and _idle(window),
          timeout_s, "pre-annotate", window)
    project = window.document.project
    predicted = project.latest_version(target.id)
    if predicted is None or predicted.provenance.source != "model":
        raise SmokeFailure(f"pre-annotate: the latest version is not the model's ({predicted})")
    pred_map = project.load_annotation(target.id).data.copy()
    found = sorted(int(v) for v in np.unique(pred_map))
    if pred_map.shape != tuple(target.shape[:2]) or not set(found) <= set(window.document.labels.ids):
        raise SmokeFailure(f"pre-annotate: a {pred_map.shape} map with ids {found} for a {target.shape} photo")
    step("pre-annotation with the bundled test model", t0, f"ids {found}, model {predicted.provenance.model}")

    t0 = time.perf_counter()
    cid = window.document.labels.ids[0]
    square = (slice(10, 60), slice(20, 90))

    def paint(editor: Any) -> None:
        where = np.zeros(editor.data.shape, dtype=bool)
        where[square] = True
        editor.set_where(where, cid)

    window.document.apply("Smoke-test square", paint)
    if not window.document.modified:
        raise SmokeFailure("edit: the document is not modified after painting")
    window.save()
    _wait(app, lambda: not window.document.modified, timeout_s, "save", window)
    step("paint and save", t0, f"class {cid} on a 50x70 square")

    t0 = time.perf_counter()
    window.close()
    _wait(app, lambda: window.document.project is None, 60.0, "close the window")
    with Project.open(folder, readonly=True) as project:
        saved = project.load_annotation(target.id).data
        latest = project.latest_version(target.id)
    expected = pred_map.astype(saved.dtype)
    expected[square] = cid
    if latest is None or latest.provenance.source == "model" or not np.array_equal(saved, expected):
        raise SmokeFailure("reopen: the saved map is not the prediction plus the painted square")
    step("closed, reopened, edit found", t0, f"version {latest.version}")
    if train:
        t0 = time.perf_counter()
        step("training process", t0, _train_once(folder, timeout_s))
    steps.append({"step": "total", "seconds": round(time.perf_counter() - t_all, 3), "detail": ""})
    return steps


def main(argv: list[str] | None = None) -> int:
    """``Maskwright --smoke-test [--workdir DIR] [--report FILE] [--timeout S]``."""
    parser = argparse.ArgumentParser(prog="Maskwright --smoke-test", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke-test", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--report", type=Path, default=None, help="write the steps as JSON here")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per step")
    parser.add_argument("--no-train", action="store_true", help="leave out the training step")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    status, steps, error = 0, [], ""
    saved_cache = os.environ.get("XDG_CACHE_HOME")
    with tempfile.TemporaryDirectory(prefix="maskwright-smoke-") as tmp, NetworkGuard() as guard:
        workdir = Path(args.workdir) if args.workdir is not None else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        if sys.platform.startswith("linux"):  # weights and caches in the work folder, not the person's
            os.environ["XDG_CACHE_HOME"] = str(workdir / "cache")
        try:
            steps = run_smoke_test(workdir, timeout_s=args.timeout, train=not args.no_train)
        except Exception as err:  # noqa: BLE001 - any failure is the smoke test's answer
            status, error = 1, f"{type(err).__name__}: {err}"
        finally:
            if saved_cache is None:
                os.environ.pop("XDG_CACHE_HOME", None)
            else:
                os.environ["XDG_CACHE_HOME"] = saved_cache
        if guard.attempts:
            status = 1
            error = (error + "; " if error else "") + f"network access attempted: {guard.attempts[:5]}"
    if args.report is not None:
        args.report.write_text(json.dumps({"ok": status == 0, "error": error, "steps": steps,
                                           "network_attempts": guard.attempts, "frozen": bool(getattr(sys, "frozen", False)),
                                           "executable": sys.executable}, indent=2), encoding="utf-8")
    if status:
        print(f"smoke: FAILED: {error}", file=sys.stderr)
    else:
        print("smoke: all steps passed")
    return status


if __name__ == "__main__":
    sys.exit(main())
