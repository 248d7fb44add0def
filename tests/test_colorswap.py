"""ColorSwap (kind `colorswap`, scored by Winoground's measures in rule `compositional`): the loader on files
written in its released format (data/test.json, images/ PNGs), malformed ones named."""
import json

import pytest
from PIL import Image

from workflow_scripts.datasets import colorswap
from workflow_scripts.datasets.build import build_items
from workflow_scripts.datasets.kind import ItemContext

EXAMPLES = [
    {"id": 0, "caption_1": "someone holding a yellow umbrella wearing a white dress",
     "caption_2": "someone holding a white umbrella wearing a yellow dress",
     "image_1": "images/img_0_1.png", "image_2": "images/img_0_2.png", "image_source": "midjourney",
     "caption_source": "human"},
    {"id": 1, "caption_1": "a red car next to a blue house", "caption_2": "a blue car next to a red house",
     "image_1": "images/img_1_1.png", "image_2": "images/img_1_2.png", "image_source": "dalle3",
     "caption_source": "human"},
]


def write_colorswap(folder, examples=EXAMPLES):
    (folder / "images").mkdir(parents=True)
    (folder / "test.json").write_text(json.dumps(examples, indent=2))
    for i, example in enumerate(examples):
        for k in (1, 2):
            Image.new("RGB", (32, 32), (60 * i, 40 * k, 120)).save(folder / example[f"image_{k}"])
    return {"kind": "colorswap", "root": str(folder)}


def build(spec):
    spec = {"file": "test", **spec}
    context = ItemContext(0, (224, 224), colorswap.inputs("cs", spec))
    return build_items("cs", {**spec, "analyses": []}, colorswap.KIND, context)[0].to_pylist()


def test_each_example_is_two_items_each_with_the_other_caption_as_negative(tmp_path):
    items = build(write_colorswap(tmp_path))
    assert [(i["pair"], i["subset"]) for i in items] == [("0", "midjourney")] * 2 + [("1", "dalle3")] * 2
    assert items[0]["caption"] == EXAMPLES[0]["caption_1"] and items[0]["negative_captions"] == [EXAMPLES[0]["caption_2"]]
    assert items[1]["caption"] == EXAMPLES[0]["caption_2"] and items[1]["image"] == str(tmp_path / "images/img_0_2.png")
    assert colorswap.KIND.scoring("cs", {}) == "winoground"


def test_malformed_or_missing_files_are_named(tmp_path):
    spec = write_colorswap(tmp_path)
    (tmp_path / "images/img_1_2.png").unlink()
    with pytest.raises(FileNotFoundError, match="1 of the 4 images it lists are missing"):
        build(spec)
    broken = [dict(EXAMPLES[0]), {k: v for k, v in EXAMPLES[1].items() if k != "caption_2"}]
    (tmp_path / "test.json").write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="test.json: example 1 has no 'caption_2'"):
        build(spec)
    (tmp_path / "test.json").unlink()
    assert colorswap.KIND.check("cs", {**spec, "file": "test"}) == [f"datasets.cs.root: {tmp_path / 'test.json'} does not exist"]
    assert "does not exist, so none of its targets" in colorswap.KIND.skip_reason("cs", {"root": "absent", "file": "test"})
