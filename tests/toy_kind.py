"""A toy dataset kind that lives in tests/, not in the workflow: images and captions read from files on disk,
declared here and registered only by a config's `kind_modules`. The workflow learns of it from the config alone.

Its annotations file is JSON: {"objects": [...], "attributes": [...], "items": [{"image": path, "caption": ...,
"negative": ..., "split": ..., "objects": [[attribute, object], ...]}, ...]}, image paths relative to the file.
"""
import json
from pathlib import Path

from workflow_scripts.datasets.items import Vocabulary, item_table
from workflow_scripts.datasets.kind import DatasetKind, ItemContext

CONFIG = {
    "required": ["annotations"],
    "properties": {
        "annotations": {"type": "string", "minLength": 1, "description": "The annotations JSON file."},
        "splits": {"default": {"train": 0.7, "val": 0.15, "test": 0.15}},  # unused: the file says each split
    },
}


def items(dataset: str, spec: dict, context: ItemContext):
    path = Path(context.inputs["annotations"])
    annotations = json.loads(path.read_text())
    vocabulary = Vocabulary(objects=tuple(annotations["objects"]), attributes=tuple(annotations["attributes"]),
                            phrase="{attribute} {object}")
    rows = [{
        "item_id": f"{dataset}-{index:04d}", "dataset": dataset, "split": item["split"],
        "caption": item["caption"], "negative_captions": [item["negative"]],
        "image": str((path.parent / item["image"]).resolve()), "n_objects": len(item["objects"]),
        "objects": [{"object": name, "attribute": attribute} for attribute, name in item["objects"]],
    } for index, item in enumerate(annotations["items"])]
    return item_table(rows), vocabulary


def inputs(dataset: str, spec: dict) -> dict:
    return {"annotations": spec["annotations"]}


def check(dataset: str, spec: dict) -> list[str]:
    if not Path(spec["annotations"]).is_file():
        return [f"datasets.{dataset}.annotations: {spec['annotations']} does not exist"]
    return []


KIND = DatasetKind(name="toy_files", config=CONFIG, items=items, rendered=False,
                   analyses=("probes", "labclip", "binding"), inputs=inputs, check=check)
