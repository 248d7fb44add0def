"""Paper B's caption-order statistic (rules caption_objects and mention_order) on planted answers: objects found
in captions by the lexicon and by noun phrases, the largest named object's position against a random order, the
bootstrap over images, and COCO's instance annotations as ground truth, read from files in COCO's format."""
import json
import re

import numpy as np
import pytest
from PIL import Image

from workflow_scripts.analyses.caption_objects import caption_objects, placed_objects
from workflow_scripts.analyses.mention_order import (bootstrap_intervals, largest_position, mention_order_rows,
                                                     objects_per_caption_rows)
from workflow_scripts.analyses.object_lexicon import coco_category
from workflow_scripts.config import dataset_errors
from workflow_scripts.datasets import coco
from workflow_scripts.datasets.build import build_items
from workflow_scripts.datasets.kind import ItemContext
from workflow_scripts.datasets.registry import BUILTIN_KINDS


def names(objects):
    return [obj["name"] for obj in objects]


def test_the_lexicon_finds_coco_categories_in_mention_order():
    first = "A small cat sits next to a big dog on the sofa."
    found = caption_objects([first,
                             "Two hot dogs and a dog near a teddy bear",
                             "A woman in an orange shirt holding an orange",
                             "Free shipping on all orders",
                             "Bikes, a bike and BICYCLES"], "lexicon")
    assert names(found[0]) == ["cat", "dog", "couch"]
    assert names(found[1]) == ["hot dog", "dog", "teddy bear"]  # longest form first
    assert names(found[2]) == ["person", "orange"]  # the colour before 'shirt' is no noun
    assert found[3] == []
    assert names(found[4]) == ["bicycle"]  # one category, counted once at its first mention
    assert [o["start"] for o in found[0]] == [first.index(w) for w in ("cat", "dog", "sofa")] and found[1][0]["phrase"] == "hot dogs"


def test_noun_phrases_name_objects_by_their_head_noun():
    found = caption_objects(["A large brown dog sleeps on a red couch next to it.", "The best price for shoes"],
                            "noun_phrases")
    assert names(found[0]) == ["dog", "couch"]  # the pronoun is left out
    assert found[0][0]["phrase"] == "large brown dog"  # what a detector is asked to find
    assert names(found[1]) == ["price", "shoe"]


def test_listed_names_are_placed_where_the_caption_names_them():
    objects, unplaced = placed_objects("A cat beside a Dog and a catalogue", ["dog", "cat", "giraffe"])
    assert names(objects) == ["cat", "dog"] and unplaced == 1  # 'cat' not found inside 'catalogue'


def test_listed_names_map_to_coco_categories():
    assert [coco_category(n) for n in ["dogs", "red car", "sofa", "man", "price"]] == ["dog", "car", "couch",
                                                                                      "person", None]


@pytest.mark.parametrize("areas, expected", [([0.5, 0.1], (2, 1)), ([0.1, None, 0.5], (2, 2)),
                                             ([0.2, 0.1, 0.3], (3, 3)), ([0.3, None], None), ([0.3, 0.3], "tied")])
def test_largest_position(areas, expected):
    assert largest_position(areas) == expected


def planted(first: int, last: int, k: int = 2):
    """Items, their objects and detector areas: `first` captions whose largest object is named first, `last` whose
    largest is named last, each its own image."""
    areas = [[0.5] + [0.1] * (k - 1)] * first + [[0.1] * (k - 1) + [0.5]] * last
    items = [{"item_id": str(i), "image": f"{i}.jpg"} for i in range(len(areas))]
    objects = {"lexicon": [[{"name": f"o{j}"} for j in range(k)] for _ in areas]}
    detected = {"lexicon": [[{"box_area": a, "mask_area": None} for a in row] for row in areas]}
    return items, objects, detected


def test_the_statistic_finds_planted_positions_and_compares_them_with_a_random_order():
    items, objects, detected = planted(first=30, last=10, k=3)
    rows = mention_order_rows(items, objects, detected, {"detector (box)": "tiny"}, 5, 500, 0).set_index(
        ["n_objects", "position"])
    assert rows.loc[("3", "1"), "share"] == 0.75 and rows.loc[("3", "3"), "share"] == 0.25
    assert rows.loc[("3", "2"), "share"] == 0 and rows.loc[("3", "1"), "chance"] == pytest.approx(1 / 3)
    assert rows.loc[("all", "first"), "share"] == 0.75 and rows.loc[("all", "last"), "share"] == 0.25
    low, high = rows.loc[("3", "1"), ["share_low95", "share_high95"]]
    assert 0.55 < low < 0.75 < high < 0.9  # about +-0.13 for 40 captions
    assert (rows["n_captions"] == 40).all() and set(rows["areas"]) == {"detector (box)"}  # no mask measured


def test_captions_with_fewer_than_two_objects_with_areas_or_more_than_max_do_not_count():
    items, objects, detected = planted(first=4, last=0, k=2)
    detected["lexicon"][0][1] = None  # the detector missed one of the two objects
    rows = mention_order_rows(items, objects, detected, {"detector (box)": "tiny"}, 5, 200, 0)
    assert rows["n_captions"].max() == 3
    items, objects, detected = planted(first=4, last=0, k=3)
    assert mention_order_rows(items, objects, detected, {"detector (box)": "tiny"}, 2, 200, 0).empty


def test_the_bootstrap_resamples_images_not_captions():
    rng = np.random.default_rng(0)
    hits = np.repeat(rng.random(200) < 0.5, 5)[:, None].astype(float)  # 200 images, 5 identical captions each
    by_image = bootstrap_intervals(np.repeat(np.arange(200), 5), hits, np.ones_like(hits), 2000, 0)
    by_caption = bootstrap_intervals(np.arange(1000), hits, np.ones_like(hits), 2000, 0)
    width = lambda interval: interval[1][0] - interval[0][0]  # noqa: E731
    assert width(by_image) > 1.8 * width(by_caption)  # about sqrt(5) wider: 200 observations, not 1000
    assert width(by_image) == pytest.approx(2 * 1.96 * 0.5 / np.sqrt(200), rel=0.15)


def test_few_images_get_an_interval_as_wide_as_their_count():
    # 11 captions of one image, all with the largest object first: the bootstrap alone would say [1, 1]
    low, high = bootstrap_intervals(np.zeros(11), np.ones((11, 1)), np.ones((11, 1)), 200, 0)
    assert high[0] == 1.0 and low[0] == pytest.approx(0.207, abs=0.001)  # Wilson's for 1 of 1
    low, high = bootstrap_intervals(np.arange(11), np.ones((11, 1)), np.ones((11, 1)), 200, 0)
    assert low[0] == pytest.approx(0.741, abs=0.001)  # Wilson's for 11 of 11


def test_objects_per_caption_counts():
    objects = {"lexicon": [[], [{"name": "a"}], [{"name": "a"}, {"name": "b"}]] + [[{"name": str(i)} for i in range(7)]]}
    rows = objects_per_caption_rows(objects, 5).set_index("objects_named")["share"]
    assert list(rows) == [0.25, 0.25, 0.25, 0, 0, 0.25] and rows.index[-1] == "5+"


# COCO with instance annotations: planted areas. Image 1 (40x30): a dog of mask area 0.5 (box 0.3) and a cat of
# mask 0.1 (box 0.4, a stretched cat); image 2: a person 0.05, a bicycle 0.2, a car 0.3 and a crowd of people 0.9
# (iscrowd: left out).
TRAIN = {1: ["A dog and a cat on the grass.", "A cat sits near a big dog.", "A cat on a sofa."],
         2: ["A man rides a bicycle past a car.", "A car, a bike and a woman.", "A person."]}
VAL = {10: ["A bird."], 11: ["A cup."]}
INSTANCES = {1: [("dog", 0.5, 0.3, 0), ("cat", 0.1, 0.4, 0)],
             2: [("person", 0.05, 0.05, 0), ("bicycle", 0.2, 0.2, 0), ("car", 0.3, 0.3, 0), ("person", 0.9, 0.9, 1)]}
CATEGORIES = ["person", "bicycle", "car", "cat", "dog"]


def write_coco_with_instances(root):
    (root / "annotations").mkdir(parents=True)
    for split, captions in (("train", TRAIN), ("val", VAL)):
        images = [{"id": i, "file_name": f"COCO_{split}2014_{i:012d}.jpg", "width": 40, "height": 30}
                  for i in captions]
        (root / f"{split}2014").mkdir()
        for image in images:
            Image.new("RGB", (40, 30), (90, 120, 150)).save(root / f"{split}2014" / image["file_name"])
        annotations = [{"image_id": i, "id": 10 * i + k, "caption": c}
                       for i, cs in captions.items() for k, c in enumerate(cs)]
        (root / "annotations" / f"captions_{split}2014.json").write_text(
            json.dumps({"images": images, "annotations": annotations}))
        instances = [{"id": 100 * i + k, "image_id": i, "category_id": CATEGORIES.index(name) + 1,
                      "area": area * 1200, "bbox": [0, 0, 40, box * 30], "iscrowd": crowd}
                     for i in captions for k, (name, area, box, crowd) in enumerate(INSTANCES.get(i, []))]
        (root / "annotations" / f"instances_{split}2014.json").write_text(json.dumps(
            {"images": images, "annotations": instances,
             "categories": [{"id": k + 1, "name": n, "supercategory": ""} for k, n in enumerate(CATEGORIES)]}))
    return {"kind": "coco", "root": str(root), "test_images": 1, "val_images": 1, "analyses": ["mention_order"]}


def coco_items(spec):
    spec = dict(spec)
    assert dataset_errors({"datasets": {"coco": spec}}, BUILTIN_KINDS) == []
    return build_items("coco", spec, coco.KIND, ItemContext(0, (224, 224), coco.inputs("coco", spec)))[0].to_pylist()


def test_coco_instances_give_each_caption_its_image_s_annotated_objects(tmp_path):
    items = coco_items(write_coco_with_instances(tmp_path))
    first = next(i for i in items if i["image_group"] == "2")
    assert sorted(o["object"] for o in first["annotated_objects"]) == ["bicycle", "car", "person"]  # no crowd
    car = next(o for o in first["annotated_objects"] if o["object"] == "car")
    assert car["area"] == pytest.approx(0.3) and car["box_area"] == pytest.approx(0.3)
    assert all(i["annotated_objects"] == [] for i in items if i["image_group"] in ("10", "11"))


def test_coco_ground_truth_gives_the_planted_positions(tmp_path):
    items = coco_items(write_coco_with_instances(tmp_path))
    objects = {"lexicon": caption_objects([i["caption"] for i in items], "lexicon")}
    rows = mention_order_rows(items, objects, {}, {}, 5, 500, 0)
    mask = rows[rows["areas"] == "annotations (mask)"].set_index(["measure", "n_objects", "position"])["share"]
    position = "largest named object's position"
    # image 1: dog (largest) named first, then last; image 2: car named last of 3, then first of 3
    assert (mask[(position, "2", "1")], mask[(position, "2", "2")]) == (0.5, 0.5)
    assert (mask[(position, "3", "1")], mask[(position, "3", "2")], mask[(position, "3", "3")]) == (0.5, 0, 0.5)
    assert mask[(position, "all", "first")] == 0.5
    # the image's largest annotated object (dog; car, the crowd left out) is named by 4 of its 6 captions
    assert mask[("largest annotated object named", "all", "")] == pytest.approx(4 / 6)
    box = rows[rows["areas"] == "annotations (box)"].set_index(["n_objects", "position"])["share"]
    assert (box[("2", "1")], box[("2", "2")]) == (0.5, 0.5)  # the cat's box is the larger: positions swap
    chance = rows.set_index(["areas", "n_objects", "position"]).loc[("annotations (mask)", "all", "first"), "chance"]
    assert chance == pytest.approx((1 / 2 + 1 / 2 + 1 / 3 + 1 / 3) / 4)


def test_a_coco_dataset_for_mention_order_needs_its_instance_files(tmp_path):
    spec = write_coco_with_instances(tmp_path)
    (tmp_path / "annotations" / "instances_val2014.json").unlink()
    errors = dataset_errors({"datasets": {"coco": spec}}, BUILTIN_KINDS)
    assert errors == [f"datasets.coco.root: {tmp_path / 'annotations' / 'instances_val2014.json'} does not exist "
                      "(analysis mention_order reads COCO's instance annotations)"]
    (tmp_path / "annotations" / "instances_val2014.json").write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match="instances_val2014.json: expected COCO's instances format"):
        coco_items(spec)


def test_the_workflow_runs_the_statistic_from_coco_and_laion_files_to_the_tables(tmp_path):
    """Snakemake lists the objects of COCO's and LAION's captions by all three methods (the LLM a tiny random
    Llama), measures their areas in COCO's and img2dataset's images with a tiny random GroundingDINO and SAM
    loaded from their folders, and writes the statistic's tables and figure; COCO's ground-truth rows give the
    planted answers whatever the random detector finds, and LAION's metadata its text-only counts."""
    import pandas as pd
    from conftest import TINY, snakemake, write_config
    from test_laion import write_metadata, write_tar_layout
    from test_llm_objects import tiny_llm_folder
    from tiny_models import save_tiny_grounding_dino, save_tiny_sam

    words = ["dog", "cat", "car", "bicycle", "man", "woman", "person", "bike", "sofa", "grass", "big", "small"]
    detector = save_tiny_grounding_dino(tmp_path / "models" / "gd", words)
    segmenter = save_tiny_sam(tmp_path / "models" / "sam")
    llm = tiny_llm_folder(tmp_path / "models" / "llm")
    datasets = {"coco": write_coco_with_instances(tmp_path / "coco"),
                "laion_images": {"kind": "laion", "images": str(write_tar_layout(tmp_path / "dl")), "subset": 4},
                "laion_text": {"kind": "laion", "metadata": str(write_metadata(tmp_path / "meta"))}}
    settings = {"methods": ["lexicon", "noun_phrases", "llm"], "bootstrap": 200, "device": "cpu",
                "llm": {"model": llm, "batch_size": 4},
                "detector": {"model": str(detector), "resize": [120, 90], "box_threshold": 0.0,
                             "text_threshold": 0.0},
                "segmenter": str(segmenter)}
    config = write_config(tmp_path, {**TINY, "datasets": datasets,
                                     "paper_b": {**TINY["paper_b"], "mention_order": settings}})
    targets = ["results/paper_b/tables/mention_order.csv", "results/paper_b/tables/objects_per_caption.csv",
               "results/paper_b/figures/mention_order.png"]
    run = snakemake(*targets, "--cores", 2, "--directory", tmp_path, "--configfile", config)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "embed_images" not in run.stdout  # the statistic needs no CLIP
    table = pd.read_csv(tmp_path / targets[0], dtype={"n_objects": str, "position": str})
    truth = table[(table["dataset"] == "coco") & (table["method"] == "lexicon")
                  & (table["areas"] == "annotations (mask)")].set_index(["n_objects", "position"])
    assert (truth.loc[("2", "1"), "share"], truth.loc[("3", "3"), "share"]) == (0.5, 0.5)
    assert truth.loc[("2", "1"), "share_low95"] < 0.2 and truth.loc[("2", "1"), "share_high95"] > 0.8  # one image
    measured = set(zip(table["dataset"], table["areas"]))
    assert {("laion_images", "detector (box)"), ("laion_images", "segmenter (mask)"),
            ("coco", "detector (box)")} <= measured  # thresholds 0: every phrase gets a box
    assert not any(dataset == "laion_text" for dataset, _ in measured)  # text only
    assert table.loc[table["areas"] == "detector (box)", "area_model"].eq(str(detector)).all()
    authors = table[table["protocol"] == "authors"]
    assert set(authors["method"]) <= {"llm"} and set(authors["areas"]) <= {"detector (box)", "segmenter (mask)"}
    assert set(table.loc[table["method"] != "llm", "protocol"]) == {"workflow"}
    assert table["precision"].str.contains("detector fp32").all()  # areas measured in fp32
    assert table.loc[table["dataset"] == "coco", "precision"].eq("llm fp32, detector fp32").all()  # the tiny Llama
    counts = pd.read_csv(tmp_path / targets[1])
    text = counts[(counts["dataset"] == "laion_text") & (counts["method"] == "lexicon")].set_index("objects_named")
    assert text.loc["2", "share"] == pytest.approx(4 / 5)  # dog+cat twice, cat+sofa, car+bicycle; one names none
    assert {"lexicon", "noun_phrases", "llm"} == set(counts["method"])
    listed = pd.read_parquet(tmp_path / "results/coco/mention_order/objects_llm.parquet")
    assert len(listed) == 8 and listed["answer"].map(lambda a: isinstance(a, str)).all()  # the raw answers kept
    areas = pd.read_parquet(tmp_path / "results/laion_images/mention_order/areas_lexicon.parquet")
    assert len(areas) == 4 and all(a is None or 0 < a["box_area"] <= 1 for row in areas["areas"] for a in row)
    markdown = (tmp_path / "results/paper_b/tables/mention_order.md").read_text()
    assert "bootstrap interval over images" in markdown and "laion_images" in markdown
    # A changed LLM setting reruns the LLM's lists and what reads them, not the lexicon's or noun phrases' jobs.
    settings["llm"]["temperature"] = 0.7
    config = write_config(tmp_path, {**TINY, "datasets": datasets,
                                     "paper_b": {**TINY["paper_b"], "mention_order": settings}})
    plan = snakemake(*targets, "-n", "--cores", 1, "--directory", tmp_path, "--configfile", config)
    assert plan.returncode == 0, plan.stderr[-2000:]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", plan.stdout, re.MULTILINE))
    assert jobs.get("caption_objects_llm") == "3" and jobs.get("object_areas") == "2"  # llm's areas: coco, laion
    assert "caption_objects" not in jobs and jobs.get("mention_order") == "3"
