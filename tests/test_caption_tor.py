"""TOR on real captions: rotated captions, the shares of planted encoders whose answers are known (an order bias
survives rotation, a preference for one object does not), and the workflow from COCO files to the table."""
import numpy as np
import pandas as pd
import pytest

from workflow_scripts.analyses.caption_tor import caption_sets, caption_tor_rows, rotated_caption

NAMES = ["dog", "cat", "car", "person"]
PHRASES = {"dog": "dog", "dogs": "dog", "cat": "cat", "cats": "cat", "car": "car", "man": "person"}


def mentions(caption: str) -> list[dict]:
    """The planted objects of a caption, as rule caption_objects writes them: {name, phrase, start} by start."""
    found = {}
    for phrase, name in PHRASES.items():
        start = f" {caption} ".find(f" {phrase} ") if f" {phrase} " in f" {caption} " else -1
        if start >= 0 and (name not in found or start < found[name]["start"]):
            found[name] = {"name": name, "phrase": phrase, "start": start}
    return sorted(found.values(), key=lambda obj: obj["start"])


CAPTIONS = ["a dog chases two cats", "a cat near a dog", "a man in a car with a dog", "a car", "the cats and a car"]
ITEMS = [{"caption": c} for c in CAPTIONS]
OBJECTS = [mentions(c) for c in CAPTIONS]


def encoder(pick):
    """One-hot of the category `pick` chooses among the (category, start) mentions of a text; a bare name is its
    own category."""
    def encode(texts):
        out = np.zeros((len(texts), len(NAMES)))
        for row, text in enumerate(texts):
            found = [(obj["name"], obj["start"]) for obj in mentions(text)] or [(text, 0)]
            out[row, NAMES.index(pick(found))] = 1.0
        return out
    return encode


def first_named(found):
    return found[0][0]


def preferred(found):
    """An object preference without any order: the category earliest in NAMES, wherever it is named."""
    return min((name for name, _ in found), key=NAMES.index)


def test_a_rotated_caption_swaps_the_object_phrases_and_keeps_the_rest():
    objects = mentions("a dog chases two cats")
    assert rotated_caption("a dog chases two cats", objects, 1) == ("a cats chases two dog", ["cat", "dog"])
    three = mentions("a man in a car with a dog")
    assert rotated_caption("a man in a car with a dog", three, 1) == ("a car in a dog with a man",
                                                                       ["car", "dog", "person"])


def test_captions_naming_one_object_are_left_out_and_rotations_balance_the_slots():
    written = caption_sets(ITEMS, OBJECTS, "as written", None, 0)
    assert [names for _, names in written] == [["dog", "cat"], ["cat", "dog"], ["person", "car", "dog"],
                                               ["cat", "car"]]
    rotated = caption_sets(ITEMS, OBJECTS, "rotated", None, 0)
    assert len(rotated) == 2 + 2 + 3 + 2 and rotated[:2] == [(CAPTIONS[0], ["dog", "cat"]),
                                                             ("a cats chases two dog", ["cat", "dog"])]
    assert len(caption_sets(ITEMS, OBJECTS, "as written", 2, 0)) == 2


def test_an_order_bias_survives_rotation_and_an_object_preference_does_not():
    first = {(r["reading"], r["candidates"], r["n_objects"]): r
             for r in caption_tor_rows(encoder(first_named), NAMES, ITEMS, OBJECTS, None, 0)}
    for reading in ("as written", "rotated"):
        assert first[(reading, "own objects", 2)]["first_retrieved_share_1"] == 1.0
        assert first[(reading, "all names", 3)]["first_retrieved_share_1"] == 1.0
    liked = {(r["reading"], r["candidates"], r["n_objects"]): r
             for r in caption_tor_rows(encoder(preferred), NAMES, ITEMS, OBJECTS, None, 0)}
    # As written (dog cat, cat dog, cat car) the preferred object stands first twice.
    assert liked[("as written", "own objects", 2)]["first_retrieved_share_1"] == pytest.approx(2 / 3)
    # Rotated, every object stands at every slot once: the preferred one at each slot equally often.
    for n in (2, 3):
        for candidates in ("own objects", "all names"):
            row = liked[("rotated", candidates, n)]
            assert [row[f"first_retrieved_share_{p}"] for p in range(1, n + 1)] == pytest.approx([1 / n] * n)
    assert liked[("rotated", "all names", 2)]["n_captions"] == 6 and liked[("rotated", "all names", 2)]["chance"] == 0.5


def test_the_workflow_runs_caption_tor_from_coco_files_to_the_table(tmp_path):
    from conftest import TINY, snakemake, write_config
    from test_mention_order import write_coco_with_instances

    coco = {**write_coco_with_instances(tmp_path / "coco"), "analyses": ["caption_tor"]}
    config = write_config(tmp_path, {**TINY, "datasets": {"coco": coco}})
    targets = ["results/paper_b/tables/caption_tor.csv", "results/paper_b/figures/caption_tor_position.png"]
    run = snakemake(*targets, "--cores", 2, "--directory", tmp_path, "--configfile", config)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "embed_images" not in run.stdout
    table = pd.read_csv(tmp_path / targets[0]).set_index(["reading", "candidates", "n_objects"])
    # Three captions name two categories (dog and cat, cat and dog, cat and sofa: couch), two name three (a man or
    # a woman: person, a bicycle or a bike, a car).
    assert table.loc[("as written", "own objects", 2), "n_captions"] == 3
    assert table.loc[("rotated", "own objects", 2), "n_captions"] == 6
    assert table.loc[("as written", "own objects", 3), "n_captions"] == 2
    assert table.loc[("rotated", "own objects", 3), "n_captions"] == 6
    own = table.xs("own objects", level="candidates")
    assert np.allclose(own[[f"first_retrieved_share_{p}" for p in (1, 2)]].sum(axis=1)
                       + own["first_retrieved_share_3"].fillna(0), 1)  # the own objects' shares sum to 1
    assert set(table["weights"]) == {"random initialisation, torch seed 5"}
