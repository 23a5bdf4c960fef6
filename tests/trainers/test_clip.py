"""Photo loading for the CLIP recipes: large photos shrink with their labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.trainers._synth import photo_project
from trainers.clip import model_slug, read_photo_pairs
from trainers.data import ClassMap
from trainers.project import ProjectSource


def test_large_photos_shrink_with_their_labels(tmp_path: Path) -> None:
    project = photo_project(tmp_path / "p", [4], size=96)
    with ProjectSource(project, kind="photo") as source:
        items = source.trainable_items()
        cmap = ClassMap.from_labels(source.labels())
        (full,) = read_photo_pairs(source, items, cmap)
        (small,) = read_photo_pairs(source, items, cmap, max_side=48)
        (unlabelled,) = read_photo_pairs(source, items, None, max_side=200)
    assert full[0].shape == (96, 96, 3) and small[0].shape == (48, 48, 3) and small[1].shape == (48, 48)
    assert set(np.unique(small[1])) <= set(np.unique(full[1])) and (small[1] == 1).sum() > 20
    assert unlabelled[0].shape == (96, 96, 3) and not unlabelled[1].any()
    assert model_slug("cascade-clip", "ViT-B-16-quickgelu.openai") == "cascade-clip.ViT-B-16-quickgelu-openai"
