"""Dataset kind `sugarcrepe_pp`: SugarCrepe++ (Dumpala et al., 2024) from its released files, as a user who
downloaded them has them: `<root>/<subset>.json` per subset (replace_att, replace_obj, replace_rel, swap_att,
swap_obj), each a JSON list of entries with filename, caption, caption2 (a second positive with other words) and
negative_caption; the images are COCO val2017's, `<images>/<filename>`.

Each entry becomes two test items sharing its `pair` and its image: one with `caption`, one with `caption2`, both
with the negative. Rule `compositional` scores them as SugarCrepe++'s evaluation does (analyses/compositional.py,
sugarcrepe_pp_rows): image-to-text (both positives more similar to the image than the negative), each positive
alone against the negative, and text-only (the positives more similar to each other than either to the negative).
"""
from pathlib import Path

from workflow_scripts.datasets.items import Vocabulary, item_table
from workflow_scripts.datasets.kind import DatasetKind, check_images_exist, missing_folder_reason, read_json, schema_block
from workflow_scripts.datasets.sugarcrepe import check, inputs  # the same layout: <root>/<subset>.json, <images>/

SUBSETS = ("replace_att", "replace_obj", "replace_rel", "swap_att", "swap_obj")
FIELDS = ("filename", "caption", "caption2", "negative_caption")
VOCABULARY = Vocabulary(objects=(), phrase=None)  # free-text captions


def read_subset(path) -> list[dict]:
    """The entries of one SugarCrepe++ subset file; ValueError naming the file, the entry and the field when it
    is not SugarCrepe++'s format."""
    entries = read_json(path, f"a SugarCrepe++ subset file, a JSON list of entries with {list(FIELDS)}")
    if isinstance(entries, dict):  # keyed by id, as SugarCrepe's own files are
        entries = list(entries.values())
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected a non-empty JSON list of entries with {list(FIELDS)}")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: entry {index} is a {type(entry).__name__}, not an object with {list(FIELDS)}")
        for field in FIELDS:
            if not isinstance(entry.get(field), str) or not entry[field].strip():
                raise ValueError(f"{path}: entry {index} has no {field!r} text (it has {sorted(entry)})")
    return entries


def items(dataset: str, spec: dict, context):
    images = Path(spec["images"]).expanduser().resolve()
    rows = [{"item_id": f"{dataset}-{subset}-{index}-{k}", "dataset": dataset, "split": "test", "subset": subset,
             "pair": f"{subset}-{index}", "caption": entry[field].strip(),
             "negative_captions": [entry["negative_caption"].strip()], "image": str(images / entry["filename"])}
            for subset in spec["subsets"] for index, entry in enumerate(read_subset(context.inputs[subset]))
            for k, field in ((1, "caption"), (2, "caption2"))]
    check_images_exist(sorted({row["image"] for row in rows}), f"datasets.{dataset}.images", "the subsets list",
                       " (SugarCrepe++'s images are COCO val2017's)")
    return item_table(rows), VOCABULARY


def skip_reason(dataset: str, spec: dict) -> str | None:
    return missing_folder_reason(dataset, spec, "SugarCrepe++'s subset files "
                                                f"({', '.join(s + '.json' for s in spec['subsets'])})")


KIND = DatasetKind(name="sugarcrepe_pp", config=schema_block("sugarcrepe_pp"), items=items, rendered=False,
                   analyses=("compositional",), inputs=inputs, skip_reason=skip_reason, check=check)
