"""Dataset kind `colorswap`: ColorSwap (Burapacheep et al., 2024) from its released files, as a user who
downloaded them has them: `<root>/test.json` (or train.json), a JSON list of examples with id, caption_1,
caption_2, image_1, image_2 (paths relative to the root, e.g. images/img_0_1.png, from images.zip extracted),
image_source and caption_source. The two captions of an example have the same words with the colour words bound
to other objects.

Each example becomes two test items sharing its `pair`, as Winoground's do: image k with caption k, the other
caption its negative; `subset` is the image source. Rule `compositional` scores the pairs by Winoground's text,
image and group scores, which is how ColorSwap's authors score the image-text matching models.
"""
from pathlib import Path

from workflow_scripts.datasets.items import Vocabulary, item_table
from workflow_scripts.datasets.kind import (DatasetKind, check_images_exist, missing_folder_reason, read_json_list,
                                            root_file_errors, schema_block)

FIELDS = ("id", "caption_1", "caption_2", "image_1", "image_2")
VOCABULARY = Vocabulary(objects=(), phrase=None)  # free-text captions


def examples_file(spec: dict) -> Path:
    return Path(spec["root"]).expanduser() / f"{spec['file']}.json"


def items(dataset: str, spec: dict, context):
    path = Path(context.inputs["examples"])
    root = path.parent.resolve()
    rows = [{"item_id": f"{dataset}-{example['id']}-{k}", "dataset": dataset, "split": "test",
             "pair": str(example["id"]), "subset": str(example.get("image_source") or dataset),
             "caption": example[f"caption_{k}"], "negative_captions": [example[f"caption_{3 - k}"]],
             "image": str(root / example[f"image_{k}"])}
            for example in read_json_list(path, FIELDS, "example") for k in (1, 2)]
    check_images_exist([row["image"] for row in rows], str(path), hint=f" (extract images.zip into {root})")
    return item_table(rows), VOCABULARY


def inputs(dataset: str, spec: dict) -> dict:
    return {"examples": str(examples_file(spec))}


def skip_reason(dataset: str, spec: dict) -> str | None:
    return missing_folder_reason(dataset, spec, f"ColorSwap's {spec['file']}.json and its extracted images/")


def check(dataset: str, spec: dict) -> list[str]:
    return root_file_errors(dataset, spec, examples_file(spec))


KIND = DatasetKind(name="colorswap", config=schema_block("colorswap"), items=items, rendered=False,
                   analyses=("compositional",), inputs=inputs, skip_reason=skip_reason, check=check,
                   scoring=lambda dataset, spec: "winoground")
