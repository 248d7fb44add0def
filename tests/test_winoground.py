"""Winoground (kind `winoground`, scored by rule `compositional`): the loader on files written in its released
format (examples.jsonl, images/<name>.png), malformed ones named; the three scores on a hand-computed 2x2
example; the pairing of items into examples; a workflow run from the files to the table."""
import json

import numpy as np
import pytest
from PIL import Image

from workflow_scripts.analyses.compositional import winoground_rows, winoground_scores
from workflow_scripts.datasets import winoground
from workflow_scripts.datasets.build import build_items
from workflow_scripts.datasets.kind import ItemContext

EXAMPLES = [
    {"id": 0, "image_0": "ex_0_img_0", "image_1": "ex_0_img_1", "caption_0": "an old person kisses a young person",
     "caption_1": "a young person kisses an old person", "tag": "Noun", "secondary_tag": "",
     "num_main_preds": 1, "collapsed_tag": "Object"},
    {"id": 1, "image_0": "ex_1_img_0", "image_1": "ex_1_img_1", "caption_0": "the dog is on the bed",
     "caption_1": "the bed is on the dog", "tag": "Noun", "secondary_tag": "", "num_main_preds": 1,
     "collapsed_tag": "Relation"},
]


def write_winoground(folder, examples=EXAMPLES):
    (folder / "images").mkdir(parents=True)
    (folder / "examples.jsonl").write_text("".join(json.dumps(e) + "\n" for e in examples))
    for i, example in enumerate(examples):
        for k in (0, 1):
            Image.new("RGB", (32, 24), (40 * i, 90 * k, 120)).save(folder / "images" / f"{example[f'image_{k}']}.png")
    return {"kind": "winoground", "root": str(folder)}


def build(spec):
    context = ItemContext(0, (224, 224), winoground.inputs("wino", spec))
    table, _ = build_items("wino", {**spec, "analyses": []}, winoground.KIND, context)
    return table.to_pylist()


def test_each_example_becomes_two_items_sharing_its_pair(tmp_path):
    items = build(write_winoground(tmp_path))
    assert [i["item_id"] for i in items] == ["wino-0-0", "wino-0-1", "wino-1-0", "wino-1-1"]
    second = items[1]
    assert (second["pair"], second["subset"], second["caption"], second["negative_captions"]) == (
        "0", "Object", "a young person kisses an old person", ["an old person kisses a young person"])
    assert second["image"] == str((tmp_path / "images" / "ex_0_img_1.png").resolve())


@pytest.mark.parametrize("lines, words", [
    ("{not json\n", "line 1: not JSON"),
    ('[1, 2]\n', "line 1: a list, not an object"),
    (json.dumps({k: v for k, v in EXAMPLES[0].items() if k != "caption_1"}) + "\n", "line 1: no 'caption_1'"),
    ("\n", "no examples"),
])
def test_a_malformed_examples_file_is_named_with_its_line(tmp_path, lines, words):
    spec = write_winoground(tmp_path)
    (tmp_path / "examples.jsonl").write_text(lines)
    with pytest.raises(ValueError, match="examples.jsonl.*" + words):
        build(spec)


def test_missing_files_are_named(tmp_path):
    spec = write_winoground(tmp_path)
    (tmp_path / "images" / "ex_1_img_0.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of the 4 images .* missing, e\.g\. .*ex_1_img_0\.png"):
        build(spec)
    (tmp_path / "examples.jsonl").unlink()
    assert winoground.KIND.check("wino", spec) == [f"datasets.wino.root: {tmp_path / 'examples.jsonl'} does not exist"]
    assert "does not exist, so none of its targets" in winoground.KIND.skip_reason("wino", {"root": "absent"})


def test_the_three_scores_of_hand_computed_examples():
    """Similarities c<caption>_i<image> of three examples: (a) both captions and both images match: text, image
    and group 1; (b) image 0 prefers caption 1: text 0, image 1, group 0; (c) caption 0 prefers image 1: text 1,
    image 0, group 0."""
    c0_i0, c1_i0, c0_i1, c1_i1 = (np.array(v) for v in zip((0.9, 0.5, 0.3, 0.8), (0.6, 0.7, 0.2, 0.9),
                                                             (0.5, 0.4, 0.55, 0.6)))
    scores = winoground_scores(c0_i0, c1_i0, c0_i1, c1_i1)
    assert scores["text"].tolist() == [1, 0, 1]
    assert scores["image"].tolist() == [1, 1, 0]
    assert scores["group"].tolist() == [1, 0, 0]


def test_items_in_any_order_are_paired_into_their_examples():
    """Random images and captions of 6 examples, their 12 items shuffled: the rows equal the scores of the 2x2
    similarity matrices computed directly."""
    rng = np.random.default_rng(0)
    images, captions = rng.normal(size=(6, 2, 8)), rng.normal(size=(6, 2, 8))
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
    items, image, caption, negative = [], [], [], []
    for e, k in rng.permutation([(e, k) for e in range(6) for k in (0, 1)]):
        items.append({"pair": str(e), "subset": "Object" if e < 4 else "Both"})
        image.append(images[e, k]), caption.append(captions[e, k]), negative.append(captions[e, 1 - k])
    rows = winoground_rows(items, np.array(image), np.array(caption), np.array(negative))
    direct = winoground_scores(*(np.array([cos(captions[e, c], images[e, i]) for e in range(6)])
                                 for c, i in ((0, 0), (1, 0), (0, 1), (1, 1))))
    got = {(r["measure"], r["subset"]): (r["accuracy"], r["n_items"]) for r in rows}
    for measure, score in direct.items():
        assert got[(measure, "all")] == (pytest.approx(score.mean()), 6)
        assert got[(measure, "Object")] == (pytest.approx(score[:4].mean()), 4)
    assert 0 < direct["text"].mean() < 1  # the random draw exercises both outcomes
    with pytest.raises(ValueError, match="pair '0' has 1 items"):
        winoground_rows(items[:1], np.array(image[:1]), np.array(caption[:1]), np.array(negative[:1]))
