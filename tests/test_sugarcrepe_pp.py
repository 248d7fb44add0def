"""SugarCrepe++ (kind `sugarcrepe_pp`, scored by rule `compositional`): the loader on files written in its released
format (a JSON list per subset, COCO val2017 JPEGs), malformed ones named; its four measures on entries whose
similarities are set by hand."""
import json

import numpy as np
import pytest
from PIL import Image

from workflow_scripts.analyses.compositional import sugarcrepe_pp_rows
from workflow_scripts.datasets import sugarcrepe_pp
from workflow_scripts.datasets.build import build_items
from workflow_scripts.datasets.kind import ItemContext

ENTRIES = {
    "swap_att": [{"id": 0, "filename": "000000544519.jpg", "caption": "A green shirt and a blue toothbrush.",
                  "caption2": "A blue toothbrush beside a shirt that is green.",
                  "negative_caption": "A blue shirt and a green toothbrush."}],
    "replace_rel": [{"id": 3, "filename": "000000057597.jpg", "caption": "A dog lying on a bed.",
                     "caption2": "On a bed, a dog is lying.", "negative_caption": "A dog jumping off a bed."}],
}


def write_sugarcrepe_pp(folder, entries=ENTRIES):
    """SugarCrepe++'s data/<subset>.json files under folder/data and their COCO images under folder/val2017."""
    (folder / "data").mkdir(parents=True)
    (folder / "val2017").mkdir()
    for subset, rows in entries.items():
        (folder / "data" / f"{subset}.json").write_text(json.dumps(rows, indent=2))
        for i, row in enumerate(rows):
            Image.new("RGB", (40, 30), (30 * i, 90, 200)).save(folder / "val2017" / row["filename"], "JPEG")
    return {"kind": "sugarcrepe_pp", "root": str(folder / "data"), "images": str(folder / "val2017"),
            "subsets": list(entries)}


def build(spec):
    context = ItemContext(0, (224, 224), sugarcrepe_pp.inputs("scpp", spec))
    return build_items("scpp", {**spec, "analyses": []}, sugarcrepe_pp.KIND, context)[0].to_pylist()


def test_each_entry_is_two_items_sharing_image_negative_and_pair(tmp_path):
    items = build(write_sugarcrepe_pp(tmp_path))
    assert [(i["subset"], i["pair"]) for i in items] == [("swap_att", "swap_att-0")] * 2 + [("replace_rel", "replace_rel-0")] * 2
    first, second = items[:2]
    assert first["caption"] == ENTRIES["swap_att"][0]["caption"] and second["caption"] == ENTRIES["swap_att"][0]["caption2"]
    assert first["negative_captions"] == second["negative_captions"] == ["A blue shirt and a green toothbrush."]
    assert first["image"] == second["image"] == str(tmp_path / "val2017/000000544519.jpg")


@pytest.mark.parametrize("broken, message", [
    ([{"filename": "a.jpg", "caption": "x", "negative_caption": "y"}], "entry 0 has no 'caption2' text"),
    ("not json", "not JSON"),
    ([], "expected a non-empty JSON list"),
])
def test_malformed_files_are_named(tmp_path, broken, message):
    spec = write_sugarcrepe_pp(tmp_path)
    path = tmp_path / "data/swap_att.json"
    path.write_text(broken if isinstance(broken, str) else json.dumps(broken))
    with pytest.raises(ValueError, match=message) as raised:
        build(spec)
    assert str(path) in str(raised.value)


def test_missing_images_and_subset_files_are_named(tmp_path):
    spec = write_sugarcrepe_pp(tmp_path)
    (tmp_path / "val2017/000000057597.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="1 of the 2 images the subsets list are missing"):
        build(spec)
    (tmp_path / "data/replace_rel.json").unlink()
    assert sugarcrepe_pp.KIND.check("scpp", spec) == [
        f"datasets.scpp.root: {tmp_path / 'data/replace_rel.json'} does not exist (subset replace_rel)"]


def test_the_four_measures_on_hand_set_similarities():
    """Entry a: both captions beat the negative, and they are closer to each other than to it. Entry b: caption 2
    loses to the negative (image-to-text fails, caption 1 alone passes), and caption 1 is closer to the negative
    than to caption 2 (text-only fails)."""
    items = [{"pair": p, "subset": "swap_att"} for p in ("a", "a", "b", "b")]
    image = np.array([[1.0, 0, 0], [1.0, 0, 0], [1.0, 0, 0], [1.0, 0, 0]])
    caption = np.array([[1.0, 0.1, 0], [1.0, 0, 0.1], [1.0, 0.5, 0.0], [0.0, 0.0, 1.0]])
    negative = np.array([[0.0, 1.0, 0], [0.0, 1.0, 0], [1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    rows = {(r["measure"], r["subset"]): (r["accuracy"], r["n_items"]) for r in
            sugarcrepe_pp_rows(items, image, caption, negative)}
    assert rows[("image-to-text", "all")] == (0.5, 2)
    assert rows[("image-to-text, caption 1", "all")] == (1.0, 2)
    assert rows[("image-to-text, caption 2", "all")] == (0.5, 2)
    assert rows[("text-only", "all")] == (0.5, 2) and rows[("text-only", "swap_att")] == (0.5, 2)
