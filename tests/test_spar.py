"""The workflow's own PUG:SPAR- and PUG:SPARE-style scenes (kind `spar`): the positional shortcut is there in
SPAR style and absent in SPARE style, measured on the item tables; captions, negatives and splits."""
from collections import Counter

import numpy as np
import pytest

from workflow_scripts.common.camera import project
from workflow_scripts.datasets import spar
from workflow_scripts.datasets.build import build_items
from workflow_scripts.datasets.kind import ItemContext

WIDTH = HEIGHT = 64


def items(style, scenes=400, seed=0):
    spec = {"kind": "spar", "style": style, "scenes_per_count": scenes, "shards": 2,
            "splits": {"train": 0.8, "val": 0.1, "test": 0.1}}
    table, vocabulary = build_items(f"{style}_scenes", spec, spar.KIND, ItemContext(seed, (WIDTH, HEIGHT)))
    return table.to_pylist(), vocabulary


def left_is_first(row) -> bool:
    """Whether the first-named object stands left of the second in the image (by its stored position)."""
    u = project([o["position"] for o in row["objects"]], **row["camera"], width=WIDTH, height=HEIGHT)[:, 0]
    return bool(u[0] < u[1])


@pytest.fixture(scope="module")
def spar_items():
    return items("spar")


@pytest.fixture(scope="module")
def spare_items():
    return items("spare")


def test_in_spar_style_the_position_gives_the_texture_pair_away(spar_items):
    rows, _ = spar_items
    left = [row["objects"][0 if left_is_first(row) else 1]["attribute"] for row in rows]
    right = [row["objects"][1 if left_is_first(row) else 0]["attribute"] for row in rows]
    assert set(left) == {"blue", "grass"} and set(right) == {"red", "stone"}  # perfectly predicted by position
    assert all(left_is_first(row) for row in rows)  # and named first, as PUG:SPAR's first character
    pairs = Counter(tuple(o["attribute"] for o in row["objects"]) for row in rows)
    assert set(pairs) == {("blue", "red"), ("grass", "stone")} and min(pairs.values()) > 150


def test_in_spare_style_the_position_says_nothing_about_the_texture(spare_items):
    """Each texture is on the left about half the time (within 3 binomial standard errors), and the first-named
    object as often left as right: no positional shortcut."""
    rows, _ = spare_items
    on_left, seen = Counter(), Counter()
    for row in rows:
        first_left = left_is_first(row)
        for index, obj in enumerate(row["objects"]):
            seen[obj["attribute"]] += 1
            on_left[obj["attribute"]] += (index == 0) == first_left
    assert set(seen) == set(spar.TEXTURES)
    for texture, n in seen.items():
        assert abs(on_left[texture] / n - 0.5) < 3 * np.sqrt(0.25 / n), texture
    first_left = np.mean([left_is_first(row) for row in rows])
    assert abs(first_left - 0.5) < 3 * np.sqrt(0.25 / len(rows))
    assert all(len({o["attribute"] for o in row["objects"]}) == 2 for row in rows)
    assert all(len({o["object"] for o in row["objects"]}) == 2 for row in rows)


def test_captions_negatives_worlds_and_grouped_splits(spar_items, spare_items):
    for rows, vocabulary in (spar_items, spare_items):
        for row in rows:
            (t1, o1), (t2, o2) = vocabulary.parse(row["caption"])
            assert [(o["attribute"], o["object"]) for o in row["objects"]] == [(t1, o1), (t2, o2)]
            assert row["negative_captions"] == [f"{t2} {o1} and {t1} {o2}"]
            assert all(o["material"] == spar.MATERIAL and o["size"] == "large" for o in row["objects"])
        assert {row["world"] for row in rows} == set(spar.WORLDS)
        split_of = {}
        for row in rows:
            for caption in (row["caption"], row["negative_captions"][0]):
                assert split_of.setdefault(vocabulary.binding(caption), row["split"]) == row["split"]
        assert Counter(row["split"] for row in rows)["train"] > 0.7 * len(rows)
    assert items("spare", scenes=20, seed=3) == items("spare", scenes=20, seed=3)
    assert items("spare", scenes=20, seed=3) != items("spare", scenes=20, seed=4)
