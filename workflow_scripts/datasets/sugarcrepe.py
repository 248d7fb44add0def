"""Dataset kind `sugarcrepe`: SugarCrepe's released files, read as a user who downloaded them has them.

`<root>/<subset>.json` per subset (add_att, add_obj, replace_att, replace_obj, replace_rel, swap_att, swap_obj),
each a JSON object {id: {"filename", "caption", "negative_caption"}}; the images are COCO val2017's,
`<images>/<filename>`. Each entry is one test item: its image, its caption and the one negative caption, and its
subset (column `subset`). The captions are free text (no vocabulary to parse), so only the analyses that compare
an image with its caption and its negative run on it (`compositional`).
"""
from pathlib import Path

from workflow_scripts.datasets.items import Vocabulary, item_table
from workflow_scripts.datasets.kind import (DatasetKind, check_images_exist, missing_folder_reason, read_json,
                                           schema_block)

SUBSETS = ("add_att", "add_obj", "replace_att", "replace_obj", "replace_rel", "swap_att", "swap_obj")
FIELDS = ("filename", "caption", "negative_caption")
VOCABULARY = Vocabulary(objects=(), phrase=None)  # free-text captions


def subset_file(spec: dict, subset: str) -> Path:
    return Path(spec["root"]).expanduser() / f"{subset}.json"


def read_subset(path) -> list[tuple[str, dict]]:
    """(id, entry) of one SugarCrepe subset file, in file order; ValueError naming the file and the entry or
    field when it is not SugarCrepe's format."""
    entries = read_json(path, 'a SugarCrepe subset file, a JSON object {id: {"filename", "caption", '
                              '"negative_caption"}}')
    if not isinstance(entries, dict) or not entries:
        raise ValueError(f"{path}: expected a non-empty JSON object {{id: entry}}, found {type(entries).__name__}"
                         + (" (empty)" if not entries else ""))
    for key, entry in entries.items():
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: entry {key!r} is a {type(entry).__name__}, not an object with {list(FIELDS)}")
        for field in FIELDS:
            if not isinstance(entry.get(field), str) or not entry[field].strip():
                raise ValueError(f"{path}: entry {key!r} has no {field!r} text (it has {sorted(entry)})")
    return list(entries.items())


def items(dataset: str, spec: dict, context):
    images = Path(spec["images"]).expanduser().resolve()
    rows = [{"item_id": f"{subset}-{key}", "dataset": dataset, "split": "test", "subset": subset,
             "caption": entry["caption"].strip(), "negative_captions": [entry["negative_caption"].strip()],
             "image": str(images / entry["filename"])}
            for subset in spec["subsets"] for key, entry in read_subset(context.inputs[subset])]
    check_images_exist([row["image"] for row in rows], f"datasets.{dataset}.images", "the subsets list",
                       " (SugarCrepe's images are COCO val2017's)")
    return item_table(rows), VOCABULARY


def inputs(dataset: str, spec: dict) -> dict:
    return {subset: str(subset_file(spec, subset)) for subset in spec["subsets"]}


def skip_reason(dataset: str, spec: dict) -> str | None:
    return missing_folder_reason(dataset, spec, "SugarCrepe's subset files "
                                                f"({', '.join(s + '.json' for s in spec['subsets'])})")


def check(dataset: str, spec: dict) -> list[str]:
    """Each subset file present, and the images folder, before any job (the entries are read by the items rule)."""
    if not Path(spec["root"]).expanduser().is_dir():
        return []  # skipped, and skip_reason says why
    errors = [f"datasets.{dataset}.root: {subset_file(spec, s)} does not exist (subset {s})"
              for s in spec["subsets"] if not subset_file(spec, s).is_file()]
    if not Path(spec["images"]).expanduser().is_dir():
        errors.append(f"datasets.{dataset}.images: {spec['images']} is not a folder (COCO val2017's images)")
    return errors


KIND = DatasetKind(name="sugarcrepe", config=schema_block("sugarcrepe"), items=items, rendered=False,
                   analyses=("compositional",), inputs=inputs, skip_reason=skip_reason, check=check)
