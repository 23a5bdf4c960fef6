"""The built-in thing/stuff vocabulary DenseVLM-style alignment retrieves region categories from.

Things: the 80 COCO object classes. Stuff: the 91 COCO-Stuff stuff classes (names simplified,
``-other``/``-merged`` suffixes dropped, duplicates removed). The person's own classes are
added by the recipe (as stuff when their name is a stuff name here, else as things).
"""

from __future__ import annotations

__all__ = ["THINGS", "STUFF", "build_vocabulary"]

THINGS: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)

STUFF: tuple[str, ...] = (
    "banner", "blanket", "branch", "bridge", "building", "bush", "cabinet", "cage", "cardboard", "carpet",
    "ceiling", "tile ceiling", "cloth", "clothes", "clouds", "counter", "cupboard", "curtain", "desk", "dirt",
    "door", "fence", "marble floor", "floor", "stone floor", "tile floor", "wood floor", "flower", "fog",
    "food", "fruit", "furniture", "grass", "gravel", "ground", "hill", "house", "leaves", "light", "mat",
    "metal", "mirror", "moss", "mountain", "mud", "napkin", "net", "paper", "pavement", "pillow", "plant",
    "plastic", "platform", "playingfield", "railing", "railroad", "river", "road", "rock", "roof", "rug",
    "salad", "sand", "sea", "shelf", "sky", "skyscraper", "snow", "solid", "stairs", "stone", "straw",
    "structural", "table", "tent", "textile", "towel", "tree", "vegetable", "brick wall", "concrete wall",
    "wall", "panel wall", "stone wall", "tile wall", "wood wall", "water", "waterdrops", "window blind",
    "window", "wood",
)


def build_vocabulary(person_classes: tuple[str, ...] | list[str]) -> tuple[list[str], list[bool]]:
    """Names and ``is_thing`` flags: the person's classes first, then the built-in ones.

    A person's class whose (first) name is a built-in stuff name counts as stuff, any other as a
    thing; built-in names the person already uses are not repeated.
    """
    names: list[str] = []
    things: list[bool] = []
    stuff = {s.casefold() for s in STUFF}
    for prompt in person_classes:
        first = prompt.split(";")[0].strip()
        if first and first.casefold() not in {n.casefold() for n in names}:
            names.append(prompt.strip())
            things.append(first.casefold() not in stuff)
    seen = {n.split(";")[0].strip().casefold() for n in names}
    for group, is_thing in ((THINGS, True), (STUFF, False)):
        for name in group:
            if name.casefold() not in seen:
                names.append(name)
                things.append(is_thing)
                seen.add(name.casefold())
    return names, things
