"""The authors' image-text matching per position of the large object (one folder of scenes each, as they report it)
beside the pooled row, on hand-made scenes whose every pair's outcome is worked out by hand."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from workflow_scripts.analyses.matching import authors_matching_rows, matching_rows
from workflow_scripts.datasets.items import Vocabulary
from workflow_scripts.summary.figures import draw
from workflow_scripts.summary.tables import matching_markdown, matching_table

NAMES = Vocabulary(objects=("cube", "cone", "star", "moon", "leaf"))
VECTORS = dict(zip(NAMES.objects, np.eye(len(NAMES.objects))))
SMALL = (0.6, 0.3, 0.0)  # a small object's weight in the image by its index in the scene's object list
LURE = {"cube": 0.2, "cone": 0.2, "star": 0.2, "moon": 0.7, "leaf": 1.1}  # an absent class's weight in the image


def scene(item_id, *objects):
    """A scene as the item table gives it; the name marked '*' is the large object."""
    names = [o.rstrip("*") for o in objects]
    return {"item_id": item_id, "n_objects": len(objects), "caption": NAMES.caption(names),
            "negative_captions": [NAMES.caption(names[::-1])],
            "objects": [{"object": o.rstrip("*"), "size": "large" if o.endswith("*") else "small"} for o in objects]}


SCENES = [scene("A", "cube*", "cone", "star"), scene("B", "cone*", "star", "leaf"),  # large object 1st
          scene("C", "cube", "moon*", "star"),  # 2nd
          scene("D", "star", "cube", "cone*"), scene("E", "leaf", "star", "cube*"),  # 3rd
          scene("F", "moon", "star*"),  # two objects, large 2nd
          scene("G", "cube", "cone", "star")]  # no large object: no pair in the authors' scenarios


def image(scene):
    """The scene's objects' vectors, the large one weighing 1 and a small one SMALL[its index], plus each absent
    class's vector weighing LURE[class]."""
    own = {o["object"]: 1.0 if o["size"] == "large" else SMALL[k] for k, o in enumerate(scene["objects"])}
    return sum(own.get(name, LURE[name]) * vector for name, vector in VECTORS.items())


def first_plus_twice_last(texts):
    """A text: its first name's vector plus twice its last one's. Every caption names distinct first and last
    objects, so every text has norm sqrt(5) and the cosines compare as image . text = a[first] + 2 a[last]
    (a: the image's weights), which the hand counts below use."""
    embedded = []
    for text in texts:
        names = [name for _, name in NAMES.parse(text)]
        embedded.append(VECTORS[names[0]] + 2 * VECTORS[names[-1]])
    return np.array(embedded)


# By hand. Scenario 1 (large swapped first; distractor: its first object replaced by the absent x) is won when
# a[large] = 1 > a[x]: won against cube, cone, star (0.2) and moon (0.7), lost against leaf (1.1).
# Scenario 2 (large swapped last, caption's first object f; distractor: large first, last object replaced by x) is
# won when a[f] + 2 a[large] > a[large] + 2 a[x], i.e. a[f] + 1 > 2 a[x]. f is the small object at index 2 when
# the large object is 1st (weight 0.0), else the one at index 0 (weight 0.6): leaf (2.2) always wins, moon (1.4)
# wins only when the large object is 1st, the others (0.4) never.
#   scene  position  absent        scenario 1  scenario 2
#   A      1         moon, leaf    1 of 2      0 of 2
#   B      1         cube, moon    2 of 2      1 of 2
#   C      2         cone, leaf    1 of 2      1 of 2
#   D      3         moon, leaf    1 of 2      1 of 2
#   E      3         cone, moon    2 of 2      2 of 2
#   F      2 (of 2)  cube, cone, leaf  2 of 3  2 of 3
EXPECTED = {  # (n_objects, scenario, large_position): (accuracy, n_pairs, n_scenes)
    (3, "authors 1: large first", "1"): (3 / 4, 4, 2),
    (3, "authors 1: large first", "2"): (1 / 2, 2, 1),
    (3, "authors 1: large first", "3"): (3 / 4, 4, 2),
    (3, "authors 1: large first", "pooled"): (7 / 10, 10, 5),
    (3, "authors 2: large last", "1"): (1 / 4, 4, 2),
    (3, "authors 2: large last", "2"): (1 / 2, 2, 1),
    (3, "authors 2: large last", "3"): (3 / 4, 4, 2),
    (3, "authors 2: large last", "pooled"): (5 / 10, 10, 5),
    (2, "authors 1: large first", "2"): (2 / 3, 3, 1),
    (2, "authors 1: large first", "pooled"): (2 / 3, 3, 1),
    (2, "authors 2: large last", "2"): (2 / 3, 3, 1),
    (2, "authors 2: large last", "pooled"): (2 / 3, 3, 1),
}


@pytest.fixture(scope="module")
def rows():
    images = np.stack([image(s) for s in SCENES])
    return pd.DataFrame(authors_matching_rows(SCENES, images, first_plus_twice_last, NAMES))


def test_authors_matching_gives_the_hand_counted_accuracy_per_large_object_position(rows):
    found = {(r.n_objects, r.condition, r.large_position): (r.accuracy, r.n_pairs, r.n_scenes)
             for r in rows.itertuples()}
    assert found.keys() == EXPECTED.keys()
    for key, (accuracy, n_pairs, n_scenes) in EXPECTED.items():
        assert found[key][0] == pytest.approx(accuracy), key
        assert found[key][1:] == (n_pairs, n_scenes), key
    assert set(rows["protocol"]) == {"authors"} and set(rows["method"]) == {"caption"}


def test_the_pooled_row_is_the_pair_weighted_mean_of_the_positions(rows):
    for (n, scenario), group in rows.groupby(["n_objects", "condition"]):
        pooled = group[group["large_position"] == "pooled"].iloc[0]
        positions = group[group["large_position"] != "pooled"]
        assert pooled["n_pairs"] == positions["n_pairs"].sum()
        assert pooled["n_scenes"] == positions["n_scenes"].sum()
        mean = (positions["accuracy"] * positions["n_pairs"]).sum() / positions["n_pairs"].sum()
        assert pooled["accuracy"] == pytest.approx(mean), (n, scenario)
    rows_of_three = rows[rows["n_objects"] == 3]
    assert list(rows_of_three["large_position"]) == ["1", "2", "3", "pooled"] * 2  # positions, then the pooled row


def test_workflow_rows_say_which_position_they_keep(rows):
    """This workflow's own conditions pool every position, except 'large named <p>', which keeps position p;
    every row has the large_position and n_scenes columns as strings and counts."""
    images = np.stack([image(s) for s in SCENES])
    workflow = pd.DataFrame(matching_rows(SCENES, images, first_plus_twice_last, NAMES, ["max"]))
    three = workflow[(workflow["n_objects"] == 3) & (workflow["method"] == "caption")].set_index("condition")
    assert three.loc["original", ["large_position", "n_scenes"]].tolist() == ["pooled", 6]  # G counts here
    assert three.loc["large named 1", ["large_position", "n_pairs", "n_scenes"]].tolist() == ["1", 2, 2]
    assert three.loc["large named 3", "large_position"] == "3"
    both = pd.concat([workflow, rows])
    assert both["large_position"].map(type).eq(str).all()


def test_table_and_figure_show_the_positions(rows, tmp_path):
    images = np.stack([image(s) for s in SCENES])
    workflow = pd.DataFrame(matching_rows(SCENES, images, first_plus_twice_last, NAMES, ["max"]))
    labels = {"dataset": "hand", "model_id": "planted", "weights": "random initialisation, torch seed 0"}
    table = matching_table(pd.concat([workflow, rows]).assign(**labels))
    markdown = matching_markdown(table)
    assert "| authors | 3 | authors 2: large last | 1 | caption | 0.250 [" in markdown
    assert "| authors | 3 | authors 2: large last | pooled | caption | 0.500 [" in markdown
    assert "one folder of scenes per position" in markdown and "pairs as independent" in markdown
    draw("matching_conditions", {"matching": table}, tmp_path / "m.png", tmp_path / "m.pdf")
    with Image.open(tmp_path / "m.png") as png:
        assert png.size[0] > 300
