import numpy as np

from engine.sample import ensure_sample_project
from engine.store import Project, Provenance


def test_sample_project_builds_and_is_reused(tmp_path) -> None:
    folder = ensure_sample_project(tmp_path / "sample")
    with Project.open(folder) as project:
        items = project.items()
        assert sorted(i.kind for i in items) == ["photo", "photo", "photo", "volume"]
        assert [c.name for c in project.labels()][:3] == ["person", "cat", "cup"]
        volume_item = next(i for i in items if i.kind == "volume")
        assert volume_item.shape == (24, 96, 96)
        item_id = items[0].id
        project.save_annotation(item_id, np.ones(items[0].shape, np.uint8), provenance=Provenance.from_person("t"))
    # a second call keeps the existing project (and its annotation)
    assert ensure_sample_project(folder) == folder
    with Project.open(folder, readonly=True) as project:
        assert project.latest_version(item_id) is not None
