import numpy as np
import pytest

from engine.errors import LabelError
from engine.items import LabelMap, LabelSet, Photo, Volume, WindowPreset, parse_class_text


def test_parse_class_text_splits_classes_and_synonyms() -> None:
    assert parse_class_text("cat; kitten, dog,\n sky ;  ,") == [
        ("cat", "cat; kitten"), ("dog", "dog"), ("sky", "sky"),
    ]


def test_label_ids_are_stable_and_never_reused() -> None:
    labels = LabelSet.from_text("cat; kitten, dog, sky")
    assert [(c.id, c.name) for c in labels] == [(1, "cat"), (2, "dog"), (3, "sky")]
    assert labels[1].synonyms == ("cat", "kitten")
    labels.remove(3)
    assert labels.add("road").id == 4  # 3 is not handed out again
    labels.update(2, name="puppy", color=(1, 2, 3))
    assert labels[2].name == "puppy" and labels[2].color == (1, 2, 3)
    with pytest.raises(LabelError, match="used twice"):
        labels.add("Cat")
    with pytest.raises(LabelError, match="never changes"):
        labels.update(1, id=9)
    with pytest.raises(LabelError, match="no class with id 3"):
        labels[3]


def test_labelset_dtype_grows_to_uint16() -> None:
    labels = LabelSet()
    labels.add("a", id=300)
    assert labels.dtype() == np.uint16
    assert LabelMap.empty((4, 5), labels).data.dtype == np.uint16
    assert LabelSet.from_text("a").dtype() == np.uint8


def test_labelmap_validates_and_reports_ids() -> None:
    labels = LabelSet.from_text("a, b")
    data = np.zeros((3, 4), np.uint8)
    data[0, 0], data[1, 1] = 2, 7
    lm = LabelMap(data, labels)
    assert lm.present_ids() == [2, 7] and lm.unknown_ids() == [7]
    with pytest.raises(ValueError):
        LabelMap(np.zeros((3, 4), np.int32), labels)


def test_photo_and_volume_validate_shapes() -> None:
    with pytest.raises(ValueError):
        Photo(np.zeros((4, 5), np.uint8))
    photo = Photo(np.zeros((4, 5, 3), np.uint8), raw=np.zeros((4, 5), np.uint16))
    assert photo.shape == (4, 5) and photo.pixels.dtype == np.uint16
    vol = Volume(np.zeros((2, 3, 4), np.int16), spacing=(0.5, 0.5, 2), origin=(10, 20, 30))
    assert vol.shape == (2, 3, 4)
    np.testing.assert_allclose(vol.index_to_lps(np.array([1, 2, 1])), [10.5, 21.0, 32.0])


def test_window_preset_maps_to_unit_range() -> None:
    w = WindowPreset("soft tissue", 40, 400)
    np.testing.assert_allclose(w.apply(np.array([-160, 40, 240, 1000])), [0, 0.5, 1, 1])
