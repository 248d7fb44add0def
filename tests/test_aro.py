"""ARO (kind `aro`, scored by rule `compositional`): the loaders on files written in ARO's formats (Visual Genome
relation/attribution JSON lists with boxes, BLIP's Karpathy test annotations), malformed ones named; the perturbed
Order captions seeded and saved; ARO's scoring on item sets whose answers are computed by hand."""
import json

import numpy as np
import pytest
from PIL import Image

from workflow_scripts.analyses.compositional import SCORINGS, compositional_rows
from workflow_scripts.config import dataset_errors
from workflow_scripts.datasets import aro
from workflow_scripts.datasets.build import build_items
from workflow_scripts.datasets.kind import ItemContext
from workflow_scripts.datasets.perturbations import pre_caption
from workflow_scripts.datasets.registry import BUILTIN_KINDS

RELATIONS = [
    {"image_id": "2316848", "image_path": "2316848.jpg", "bbox_x": 5, "bbox_y": 4, "bbox_w": 20, "bbox_h": 10,
     "relation_name": "on", "true_caption": "the cup is on the table", "false_caption": "the table is on the cup"},
    {"image_id": "2316848", "image_path": "2316848.jpg", "bbox_x": 0, "bbox_y": 0, "bbox_w": 30, "bbox_h": 20,
     "relation_name": "next to", "true_caption": "the dog is next to the cat",
     "false_caption": "the cat is next to the dog"},
    {"image_id": "2404524", "image_path": "2404524.jpg", "bbox_x": 2, "bbox_y": 2, "bbox_w": 8, "bbox_h": 8,
     "relation_name": "holding", "true_caption": "the man is holding the bat",
     "false_caption": "the bat is holding the man"},
]
ATTRIBUTIONS = [
    {"image_id": "2404524", "image_path": "2404524.jpg", "bbox_x": 1, "bbox_y": 1, "bbox_w": 9, "bbox_h": 9,
     "attributes": ["white", "black"], "true_caption": "the white plate and the black table",
     "false_caption": "the black plate and the white table"},
]
KARPATHY_TEST = [
    {"image": "val2014/COCO_val2014_000000391895.jpg", "image_id": "coco_391895",
     "caption": ["A man with a red helmet on a small moped on a dirt road.", "Man riding a motor bike on a dirt road."]},
    {"image": "val2014/COCO_val2014_000000522418.jpg", "image_id": "coco_522418",
     "caption": ["A woman wearing a net on her head cutting a cake."]},
]


def write_images(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30), (40 * i, 90, 200)).save(folder / name, "JPEG")


def write_vg(folder, benchmark="vg_relation", entries=RELATIONS):
    write_images(folder / "images", sorted({e["image_path"] for e in entries}))
    (folder / aro.ANNOTATIONS[benchmark]).write_text(json.dumps(entries))
    return {"kind": "aro", "benchmark": benchmark, "root": str(folder)}


def write_order(folder, entries=KARPATHY_TEST, draws=2):
    write_images(folder, [e["image"] for e in entries])
    (folder / aro.ANNOTATIONS["coco_order"]).write_text(json.dumps(entries))
    return {"kind": "aro", "benchmark": "coco_order", "root": str(folder), "draws": draws}


def build(spec, seed=0):
    spec = dict(spec)
    assert dataset_errors({"datasets": {"aro": spec}}, BUILTIN_KINDS) == []  # fills the schema's defaults
    context = ItemContext(seed, (224, 224), aro.inputs("aro", spec))
    return build_items("aro", spec, aro.KIND, context)[0].to_pylist()


def test_vg_relation_items_carry_the_box_the_relation_and_both_captions(tmp_path):
    items = build(write_vg(tmp_path))
    assert [i["subset"] for i in items] == ["on", "next to", "holding"]
    assert items[0]["crop_box"] == [5.0, 4.0, 20.0, 10.0] and items[0]["image"] == str(tmp_path / "images/2316848.jpg")
    assert items[0]["caption"] == "the cup is on the table"
    assert items[0]["negative_captions"] == ["the table is on the cup"]
    assert {i["split"] for i in items} == {"test"}
    attribution = build(write_vg(tmp_path / "a", "vg_attribution", ATTRIBUTIONS))
    assert attribution[0]["subset"] == "white_black"
    assert aro.KIND.scoring("aro", {"benchmark": "vg_attribution"}) == "aro_attribution"


@pytest.mark.parametrize("change, message", [
    (lambda e: e.pop("bbox_w"), "entry 1 has no 'bbox_w'"),
    (lambda e: e.update(false_caption=""), "entry 1 has no 'false_caption'"),
    (lambda e: e.update(bbox_h=0), "entry 1 has an empty box"),
])
def test_a_malformed_vg_entry_is_named(tmp_path, change, message):
    entries = [dict(e) for e in RELATIONS]
    change(entries[1])
    with pytest.raises(ValueError, match=message) as raised:
        build(write_vg(tmp_path, entries=entries))
    assert "visual_genome_relation.json" in str(raised.value)


def test_missing_or_broken_vg_files_are_named(tmp_path):
    spec = write_vg(tmp_path)
    (tmp_path / "images/2404524.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="1 of the 3 images it lists are missing"):
        build(spec)
    (tmp_path / "visual_genome_relation.json").write_text("[{")
    with pytest.raises(ValueError, match="not JSON"):
        build(spec)
    (tmp_path / "visual_genome_relation.json").unlink()
    assert dataset_errors({"datasets": {"aro": dict(spec)}}, BUILTIN_KINDS) == [
        f"datasets.aro.root: {tmp_path / 'visual_genome_relation.json'} does not exist (benchmark vg_relation)"]
    assert "does not exist, so none of its targets" in aro.KIND.skip_reason(
        "aro", {**spec, "root": str(tmp_path / "absent")})


def test_order_items_are_cleaned_captions_with_four_seeded_perturbations_per_draw(tmp_path):
    spec = write_order(tmp_path)
    items = build(spec)
    assert len(items) == 2 * 3  # two draws of three captions
    assert [i["subset"] for i in items] == ["draw 0"] * 3 + ["draw 1"] * 3
    first = items[0]
    assert first["caption"] == pre_caption(KARPATHY_TEST[0]["caption"][0], 30)
    assert first["caption"] == "a man with a red helmet on a small moped on a dirt road"
    assert len(first["negative_captions"]) == 4
    for negative in first["negative_captions"]:  # every perturbation keeps the words (cleaned as the caption)
        assert sorted(negative.split()) == sorted(first["caption"].split())
    shuffled = first["negative_captions"][0].split()  # nouns and adjectives: the verbs and articles stay
    assert [shuffled[i] for i in (0, 2, 3, 6)] == ["a", "with", "a", "on"]
    assert items[3]["caption"] == first["caption"] and items[3]["negative_captions"] != first["negative_captions"]
    assert first["image_group"] == first["image"] == str(tmp_path / KARPATHY_TEST[0]["image"])
    assert build(spec) == items  # the same seed, the same perturbed captions
    assert [i["negative_captions"] for i in build(spec, seed=1)] != [i["negative_captions"] for i in items]


def test_order_entries_without_captions_are_named(tmp_path):
    entries = [dict(KARPATHY_TEST[0]), {"image": "val2014/x.jpg"}]
    with pytest.raises(ValueError, match="entry 1 has no 'caption'"):
        build(write_order(tmp_path, entries))


def vectors(*rows):
    return np.array(rows, float)


def test_vg_relation_macro_drops_symmetric_relations():
    """Five items: 'on' right once of two, 'next to' (symmetric) wrong twice, 'holding' right: ARO's
    macro-average is mean(0.5, 1.0) = 0.75 over two relations and three items; the micro-average 2/5."""
    image = vectors([1, 0], [1, 0], [1, 0], [1, 0], [1, 0])
    caption = vectors([1, 0], [0, 1], [0, 1], [0, 1], [1, 0])
    negative = vectors([0, 1], [1, 0], [1, 0], [1, 0], [0, 1])
    subsets = ["on", "on", "next to", "next to", "holding"]
    rows = {(r["protocol"], r["subset"]): r for r in compositional_rows(subsets, image, caption, negative,
                                                                       SCORINGS["aro_relation"])}
    macro = rows[("authors", "macro (ARO)")]
    assert (macro["accuracy"], macro["n_items"], macro["n_subsets"]) == (0.75, 3, 2)
    assert macro["accuracy_low95"] < 0.75 < macro["accuracy_high95"]
    assert rows[("authors", "all")]["accuracy"] == 0.4 and rows[("authors", "next to")]["accuracy"] == 0.0


def test_vg_attribution_macro_keeps_pairs_of_at_least_25_items():
    n = 25 + 3
    image = np.tile([1.0, 0.0], (n, 1))
    caption = np.tile([1.0, 0.0], (n, 1))
    caption[25:] = [0.0, 1.0]  # the three small-pair items are wrong
    negative = caption[:, ::-1].copy()
    subsets = ["white_black"] * 25 + ["big_small"] * 3
    rows = {(r["protocol"], r["subset"]): r for r in compositional_rows(subsets, image, caption, negative,
                                                                       SCORINGS["aro_attribution"])}
    assert (rows[("authors", "macro (ARO)")]["accuracy"], rows[("authors", "macro (ARO)")]["n_subsets"]) == (1.0, 1)
    assert rows[("authors", "all")]["accuracy"] == pytest.approx(25 / 28)


def test_order_ties_go_to_the_caption_as_aros_argmax_gives_them():
    """Item 0: the caption beats all four perturbations. Item 1: one perturbation equals the caption (a tie at
    the top). Item 2: two do. Item 3: a perturbation beats it. ARO's argmax over [caption, perturbations] counts
    the ties for the caption (3/4); the clean variant shares them (1 + 1/2 + 1/3 over 4); SugarCrepe's strict
    rule would count them wrong."""
    image = np.tile([1.0, 0.0], (4, 1))
    caption = np.tile([1.0, 1.0], (4, 1))
    low, same, high = [0.0, 1.0], [1.0, 1.0], [1.0, 0.0]
    negatives = np.array([[low, low, low, low], [same, low, low, low], [same, same, low, low],
                          [high, low, low, low]])
    subsets = ["draw 0", "draw 0", "draw 1", "draw 1"]
    rows = {(r["protocol"], r["subset"]): r for r in compositional_rows(subsets, image, caption, negatives,
                                                                       SCORINGS["aro_order"])}
    assert rows[("authors", "draw 0")]["accuracy"] == 1.0 and rows[("authors", "draw 1")]["accuracy"] == 0.5
    mean = rows[("authors", "mean over draws")]
    assert (mean["accuracy"], mean["n_items"], mean["n_ties"]) == (0.75, 2, 2)
    assert rows[("clean", "mean over draws")]["accuracy"] == pytest.approx(((1 + 0.5) / 2 + (1 / 3 + 0) / 2) / 2)
    strict = {(r["protocol"], r["subset"]): r for r in compositional_rows(subsets, image, caption, negatives)}
    assert strict[("authors", "all")]["accuracy"] == 0.25


def test_flickr30k_order_finds_images_at_the_root_or_in_flickr30k_images(tmp_path):
    """BLIP's flickr30k_test.json names images by file name or with their folder; both layouts are read."""
    entries = [{"image": "1000092795.jpg", "caption": ["Two young guys with shaggy hair look at their hands."]},
               {"image": "flickr30k-images/10002456.jpg", "caption": ["Several men in hard hats are operating a pulley."]}]
    write_images(tmp_path / "flickr30k-images", ["1000092795.jpg", "10002456.jpg"])
    (tmp_path / aro.ANNOTATIONS["flickr30k_order"]).write_text(json.dumps(entries))
    items = build({"kind": "aro", "benchmark": "flickr30k_order", "root": str(tmp_path), "draws": 1})
    assert [i["image"] for i in items] == [str(tmp_path / "flickr30k-images/1000092795.jpg"),
                                           str(tmp_path / "flickr30k-images/10002456.jpg")]
    assert aro.KIND.scoring("f", {"benchmark": "flickr30k_order"}) == "aro_order"
