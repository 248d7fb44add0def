"""Dataset kind `winoground`: Winoground's released files, read as a user who downloaded them has them.

`<root>/examples.jsonl`, one JSON object per line with id, image_0, image_1, caption_0, caption_1 and the tags
(tag, secondary_tag, collapsed_tag, num_main_preds), and the images `<root>/images/<image_k>.png` (images.zip
extracted). Each example becomes two test items that share its `pair` (the example id): image k with caption k,
the other caption its negative; `subset` is the example's collapsed_tag (Object, Relation, Both). Rule
`compositional` scores the pairs by Winoground's text, image and group scores.
"""
import json
from pathlib import Path

from workflow_scripts.datasets.items import Vocabulary, item_table
from workflow_scripts.datasets.kind import (DatasetKind, check_images_exist, missing_folder_reason, read_text,
                                            root_file_errors, schema_block)

EXAMPLES = "examples.jsonl"
FIELDS = ("id", "image_0", "image_1", "caption_0", "caption_1")
VOCABULARY = Vocabulary(objects=(), phrase=None)  # free-text captions


def read_examples(path) -> list[dict]:
    """The examples of a Winoground examples.jsonl; ValueError naming the file, line and field when a line is
    not a JSON object with FIELDS."""
    examples = []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            example = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}, line {number}: not JSON ({error})") from error
        if not isinstance(example, dict):
            raise ValueError(f"{path}, line {number}: a {type(example).__name__}, not an object with "
                             f"{list(FIELDS)}")
        missing = [f for f in FIELDS if example.get(f) in (None, "")]
        if missing:
            raise ValueError(f"{path}, line {number}: no {missing[0]!r} (an example has {list(FIELDS)})")
        examples.append(example)
    if not examples:
        raise ValueError(f"{path}: no examples")
    return examples


def items(dataset: str, spec: dict, context):
    path = Path(context.inputs["examples"])
    images = path.parent.resolve() / "images"
    rows = [{"item_id": f"{dataset}-{example['id']}-{k}", "dataset": dataset, "split": "test",
             "pair": str(example["id"]), "subset": str(example.get("collapsed_tag") or dataset),
             "caption": example[f"caption_{k}"], "negative_captions": [example[f"caption_{1 - k}"]],
             "image": str(images / f"{example[f'image_{k}']}.png")}
            for example in read_examples(path) for k in (0, 1)]
    check_images_exist([row["image"] for row in rows], str(path), hint=f" (extract images.zip into {images})")
    return item_table(rows), VOCABULARY


def inputs(dataset: str, spec: dict) -> dict:
    return {"examples": str(Path(spec["root"]).expanduser() / EXAMPLES)}


def skip_reason(dataset: str, spec: dict) -> str | None:
    return missing_folder_reason(dataset, spec, f"Winoground's {EXAMPLES} and its extracted images/")


def check(dataset: str, spec: dict) -> list[str]:
    return root_file_errors(dataset, spec, Path(spec["root"]).expanduser() / EXAMPLES)


KIND = DatasetKind(name="winoground", config=schema_block("winoground"), items=items, rendered=False,
                   analyses=("compositional",), inputs=inputs, skip_reason=skip_reason, check=check)
