"""Writer process of the crash test: edits a project forever and journals every commit.

Run as ``python _crash_writer.py PROJECT JOURNAL SEED``. Before each operation it appends an
``intent`` line with the fingerprint the project must have once the operation commits (predicted
independently of the store's code, from the state it reads back); after the call returns it
checks the store against that prediction and appends a ``done`` line. Each line is fsynced.
The test kills this process with SIGKILL at random moments and checks that the reopened
project equals the last ``done`` state, or the state of the one ``intent`` after it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from engine.store import Project, Provenance  # noqa: E402
from engine.store._masks import checksum  # noqa: E402


def snapshot(project: Project) -> dict[str, Any]:
    """Everything the crash test compares: versions, statuses, classes, next class id."""
    versions = []
    for item in project.items():
        for v in project.versions(item.id):
            versions.append([v.item_id, v.version, v.checksum, v.status, v.parent, v.provenance.source])
    return {
        "versions": sorted(versions),
        "status": {str(i.id): i.status for i in project.items()},
        "classes": [[c.id, c.name, c.prompt, list(c.color), c.deleted] for c in project.classes()],
        "next_class_id": project.labels().next_id,
    }


def fingerprint(state: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


def blobs(shape: tuple[int, ...], ids: list[int], rng: np.random.Generator) -> np.ndarray:
    """A label map of a few ellipse/ellipsoid blobs of the given class ids."""
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    out = np.zeros(shape, np.uint8)
    for class_id in ids:
        centre = [rng.uniform(0, n) for n in shape]
        radii = [rng.uniform(2, max(3, n / 3)) for n in shape]
        inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii)) <= 1.0
        out[inside] = class_id
    return out


def plan(project: Project, rng: np.random.Generator, step: int) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Pick an operation; return (name, arguments, predicted state after it commits)."""
    state = snapshot(project)
    items = project.items()
    active = [c for c in project.classes() if not c.deleted]
    roll = rng.random()
    if roll < 0.6 or len(active) < 2:
        item = items[int(rng.integers(len(items)))]
        picks = rng.choice(len(active), size=min(len(active), 3), replace=False)
        ids = [int(active[k].id) for k in picks]
        data = blobs(item.shape, ids, rng)
        person = bool(rng.random() < 0.5)
        latest = project.latest_version(item.id)
        number = (latest.version if latest else 0) + 1
        status = "corrected" if person else "predicted"
        state["versions"].append([item.id, number, checksum(data), status, latest.version if latest else None,
                                  "person" if person else "model"])
        state["versions"].sort(key=lambda v: (v[0], v[1]))
        state["status"][str(item.id)] = status
        return "save", {"item": item.id, "data": data, "person": person}, state
    if roll < 0.72:
        item = items[int(rng.integers(len(items)))]
        status = str(rng.choice(["new", "predicted", "corrected", "approved"]))
        state["status"][str(item.id)] = status
        return "status", {"item": item.id, "status": status}, state
    if roll < 0.84:
        c = active[int(rng.integers(len(active)))]
        color = [int(v) for v in rng.integers(0, 256, 3)]
        name = f"{c.name.split('-')[0]}-{step}"
        for row in state["classes"]:
            if row[0] == c.id:
                row[1], row[3] = name, color  # the prompt stays as it was
        return "update", {"id": c.id, "name": name, "color": color}, state
    if roll < 0.93 and len(active) < 6:
        new_id = state["next_class_id"]
        state["classes"].append([new_id, f"k{step}", f"k{step}", None, False])
        state["next_class_id"] = new_id + 1
        return "add", {"name": f"k{step}"}, state
    victim, target = (int(active[k].id) for k in rng.choice(len(active), size=2, replace=False))
    for row in state["classes"]:
        if row[0] == victim:
            row[4] = True
    for item in items:
        latest = project.latest_version(item.id)
        if latest is None:
            continue
        data = project.load_annotation(item.id).data
        if not np.any(data == victim):
            continue
        data = np.where(data == victim, np.uint8(target), data).astype(data.dtype)
        state["versions"].append([item.id, latest.version + 1, checksum(data), item.status, latest.version, "person"])
    state["versions"].sort(key=lambda v: (v[0], v[1]))
    return "delete", {"id": victim, "into": target}, state


def matches(predicted: dict[str, Any], actual: dict[str, Any]) -> bool:
    """Equal, where a predicted colour of ``None`` (a default colour) matches any colour."""
    pred = json.loads(json.dumps(predicted))
    for p, a in zip(pred["classes"], actual["classes"]):
        if p[3] is None:
            p[3] = a[3]
    return fingerprint(pred) == fingerprint(actual)


def resolve(predicted: dict[str, Any], actual: dict[str, Any]) -> dict[str, Any]:
    """``predicted`` with default colours filled in from ``actual``."""
    pred = json.loads(json.dumps(predicted))
    for p, a in zip(pred["classes"], actual["classes"]):
        if p[3] is None:
            p[3] = a[3]
    return pred


def journal(handle: Any, record: dict[str, Any]) -> None:
    handle.write(json.dumps(record) + "\n")
    handle.flush()
    os.fsync(handle.fileno())


def main(folder: str, journal_path: str, seed: int) -> None:
    with open(journal_path, "a", encoding="utf-8") as handle, Project.open(folder) as project:
        step = sum(1 for _ in open(journal_path, encoding="utf-8"))
        journal(handle, {"kind": "start", "fp": fingerprint(snapshot(project))})
        while True:
            step += 1
            rng = np.random.default_rng([seed, step])
            op, args, predicted = plan(project, rng, step)
            journal(handle, {"kind": "intent", "step": step, "op": op, "state": predicted})
            if op == "save":
                provenance = Provenance.from_person("ana") if args["person"] else Provenance.from_model("m", "c1")
                project.save_annotation(args["item"], args["data"], provenance=provenance)
            elif op == "status":
                project.set_status(args["item"], args["status"])
            elif op == "update":
                project.update_class(args["id"], name=args["name"], color=tuple(args["color"]))
            elif op == "add":
                project.add_class(args["name"])
            else:
                project.delete_class(args["id"], merge_into=args["into"], provenance=Provenance.from_person())
            actual = snapshot(project)
            if not matches(predicted, actual):
                journal(handle, {"kind": "mismatch", "step": step, "predicted": predicted, "actual": actual})
                sys.exit(3)
            journal(handle, {"kind": "done", "step": step, "fp": fingerprint(actual)})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
