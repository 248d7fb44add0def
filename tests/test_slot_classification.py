"""Object classification by slot (paper B's IOC and TOC) on planted embeddings whose answer is known: only slot 1
is decodable, so slot 1 classifies (almost) perfectly and every other slot near chance."""
import numpy as np
import pandas as pd
import pytest

from workflow_scripts.analyses.embedded import Embedded
from workflow_scripts.analyses.slot_classification import slot_classification_rows, slot_objects
from workflow_scripts.datasets.items import Vocabulary

NAMES = ("cube", "sphere", "cylinder", "mug", "cone", "star")
SETTINGS = {"Cs": [0.1, 1.0], "max_iter": 1000}


def planted(n_items=1200, dim=32, seed=0) -> Embedded:
    """Items of 2 or 3 distinct objects. The caption embedding carries only the first-named object (a direction per
    name, plus noise); the image embedding carries only the largest object (its radius is 0.7, the others 0.35),
    which stands at a random caption position, so the image says nothing about the caption's first slot."""
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((len(NAMES), dim)) * 3
    items, image, caption = [], [], []
    for i in range(n_items):
        names = [NAMES[j] for j in rng.choice(len(NAMES), 2 + i % 2, replace=False)]
        large = int(rng.integers(len(names)))
        objects = [{"object": name, "attribute": "gray", "radius": 0.7 if k == large else 0.35}
                   for k, name in enumerate(names)]
        split = ("train", "train", "train", "train", "train", "train", "train", "train", "val", "test")[i // 2 % 10]
        items.append({"item_id": f"s{i}", "objects": objects, "caption": " and ".join(names), "split": split,
                      "n_objects": len(names), "negative_captions": [""]})
        caption.append(directions[NAMES.index(names[0])] + rng.standard_normal(dim))
        image.append(directions[NAMES.index(names[large])] + rng.standard_normal(dim))
    image, caption = np.array(image, np.float32), np.array(caption, np.float32)
    return Embedded(items, image, caption, caption, "planted", Vocabulary(objects=NAMES))


def test_slot_order():
    item = {"objects": [{"object": "cube", "radius": 0.35}, {"object": "star", "radius": 0.7},
                        {"object": "mug", "radius": 0.35}]}
    assert slot_objects(item, "caption position") == ["cube", "star", "mug"]
    assert slot_objects(item, "size rank") == ["star", "cube", "mug"]  # ties keep the caption order
    with pytest.raises(ValueError, match="slot order"):
        slot_objects(item, "alphabetical")


def test_only_the_planted_slot_classifies():
    rows = slot_classification_rows(planted(), SETTINGS)
    found = {(r["task"], r["slot"]): r for r in rows}
    assert sorted(found) == [("IOC", 1), ("IOC", 2), ("IOC", 3), ("TOC", 1), ("TOC", 2), ("TOC", 3)]
    for task, modality in (("TOC", "text"), ("IOC", "image")):
        first = found[task, 1]
        assert first["modality"] == modality and first["chance"] == pytest.approx(1 / len(NAMES))
        assert first["test_accuracy"] >= 0.95 and first["n_test"] == 120, first
        assert first["n_correct"] == round(first["test_accuracy"] * first["n_test"])
        for slot in (2, 3):  # nothing planted: chance is 1/6, and slot 2 can never be slot 1's name
            assert found[task, slot]["test_accuracy"] < 0.35, found[task, slot]
    assert found["TOC", 3]["n_test"] == 60  # only the 3-object items have a third slot


def test_a_slot_without_test_items_is_skipped(caplog):
    data = planted(200)
    keep = np.array([not (item["n_objects"] == 3 and item["split"] == "test") for item in data.items])
    rows = slot_classification_rows(data.subset(keep), SETTINGS)
    assert sorted((r["task"], r["slot"]) for r in rows) == [("IOC", 1), ("IOC", 2), ("TOC", 1), ("TOC", 2)]
    assert "slot 3 skipped" in caplog.text


def test_table_and_figure(tmp_path):
    from PIL import Image

    from workflow_scripts.summary import FIGURES as FIGURE_SOURCES
    from workflow_scripts.summary.figures import draw
    from workflow_scripts.summary.tables import slot_classification_markdown, slot_classification_table

    rows = pd.DataFrame(slot_classification_rows(planted(400), SETTINGS)).assign(
        dataset="simco", model_id="syn", weights="random initialisation, torch seed 0", precision="fp32")
    table = slot_classification_table(rows)
    first = table[(table["task"] == "TOC") & (table["slot"] == 1)].iloc[0]
    assert first["test_accuracy_low95"] < first["test_accuracy"] <= first["test_accuracy_high95"]
    markdown = slot_classification_markdown(table)
    assert "| simco | syn | RANDOM weights" in markdown and ", n=" not in markdown  # counts in their own column
    inputs = FIGURE_SOURCES["slot_classification"][1]  # the figure rule's input names, as the rule passes them
    draw("slot_classification", {name: table for name in inputs}, tmp_path / "slots.png", tmp_path / "slots.pdf")
    with Image.open(tmp_path / "slots.png") as png:
        assert png.size[0] > 300
