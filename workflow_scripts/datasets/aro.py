"""Dataset kind `aro`: ARO's four benchmarks (Yuksekgonul et al., "When and why vision-language models behave like
bags-of-words"), read from the files its loaders read (vision-language-models-are-bows, dataset_zoo).

- vg_relation, vg_attribution: `<root>/visual_genome_<relation|attribution>.json`, a JSON list of entries with
  image_path, bbox_x, bbox_y, bbox_w, bbox_h, true_caption, false_caption and relation_name (VG-Relation) or
  attributes (VG-Attribution, two); images `<root>/images/<image_path>`. One test item per entry: the image cropped
  to the box (as ARO crops it), its true caption and the false one; `subset` is the relation, or the attribute
  pair "<a1>_<a2>" as ARO groups them.
- coco_order, flickr30k_order: BLIP's Karpathy test annotations (`coco_karpathy_test.json`, `flickr30k_test.json`),
  a JSON list of {"image", "caption": [...]}. One test item per caption and draw: the caption as ARO cleans it
  (perturbations.pre_caption, `max_words`) and its four perturbations (perturbations.ORDER_PERTURBATIONS, each
  cleaned after perturbing, in ARO's order); `subset` is "draw <d>". The perturbed captions are drawn from the
  config's seed, the draw and the caption's place, and are saved in the item table: a rerun scores the same ones.
Rule `compositional` scores them as ARO does (analyses/compositional.py, SCORINGS).
"""
from pathlib import Path

from workflow_scripts.datasets.items import Vocabulary, item_table
from workflow_scripts.datasets.kind import (DatasetKind, check_images_exist, missing_folder_reason, read_json_list,
                                            root_file_errors, schema_block)
from workflow_scripts.datasets.perturbations import ORDER_PERTURBATIONS, PERTURBATIONS, pre_caption, seeded, tag

ANNOTATIONS = {"vg_relation": "visual_genome_relation.json", "vg_attribution": "visual_genome_attribution.json",
               "coco_order": "coco_karpathy_test.json", "flickr30k_order": "flickr30k_test.json"}
BOX = ("bbox_x", "bbox_y", "bbox_w", "bbox_h")
VG_FIELDS = {"vg_relation": ("image_path", *BOX, "true_caption", "false_caption", "relation_name"),
             "vg_attribution": ("image_path", *BOX, "true_caption", "false_caption", "attributes")}
SCORING = {"vg_relation": "aro_relation", "vg_attribution": "aro_attribution",
           "coco_order": "aro_order", "flickr30k_order": "aro_order"}
VOCABULARY = Vocabulary(objects=(), phrase=None)  # free-text captions


def annotation_file(spec: dict) -> Path:
    return Path(spec["root"]).expanduser() / ANNOTATIONS[spec["benchmark"]]


def vg_items(dataset: str, spec: dict, path: Path) -> list[dict]:
    benchmark = spec["benchmark"]
    entries = read_json_list(path, VG_FIELDS[benchmark])
    images = path.parent.resolve() / "images"
    rows = []
    for index, entry in enumerate(entries):
        box = [float(entry[field]) for field in BOX]
        if box[2] <= 0 or box[3] <= 0:
            raise ValueError(f"{path}: entry {index} has an empty box (bbox_w {box[2]}, bbox_h {box[3]})")
        if benchmark == "vg_relation":
            subset = str(entry["relation_name"])
        else:
            attributes = entry["attributes"]
            if not isinstance(attributes, list) or len(attributes) != 2:
                raise ValueError(f"{path}: entry {index} has attributes {attributes!r}, not a list of two")
            subset = f"{attributes[0]}_{attributes[1]}"
        rows.append({"item_id": f"{dataset}-{index}", "dataset": dataset, "split": "test", "subset": subset,
                     "caption": entry["true_caption"], "negative_captions": [entry["false_caption"]],
                     "image": str(images / entry["image_path"]), "crop_box": box})
    check_images_exist([row["image"] for row in rows], str(path), hint=f" (extract vgr_vga_images.zip into {images})")
    return rows


def order_image(root: Path, image: str) -> Path:
    """An Order entry's image: <root>/<image>, or for Flickr30k <root>/flickr30k-images/<image>."""
    path = root / image
    fallback = root / "flickr30k-images" / image
    return fallback if not path.is_file() and fallback.is_file() else path


def order_items(dataset: str, spec: dict, path: Path, seed: int) -> list[dict]:
    entries = read_json_list(path, ("image", "caption"))
    if spec["max_images"]:
        entries = entries[:spec["max_images"]]
    root = path.parent.resolve()
    captions = []
    for index, entry in enumerate(entries):
        if not isinstance(entry["caption"], list) or not all(isinstance(c, str) and c.strip() for c in entry["caption"]):
            raise ValueError(f"{path}: entry {index}: 'caption' is not a list of captions")
        captions += [(index, k, caption) for k, caption in enumerate(entry["caption"])]
    tokens = tag([caption for _, _, caption in captions])
    words = spec["max_words"]
    rows = []
    for draw in range(spec["draws"]):
        for (index, k, caption), tokens_of in zip(captions, tokens):
            negatives = [pre_caption(PERTURBATIONS[name](tokens_of, seeded(seed, draw, index, k, p)), words)
                         for p, name in enumerate(ORDER_PERTURBATIONS)]
            image = order_image(root, entries[index]["image"])
            rows.append({"item_id": f"{dataset}-{draw}-{index}-{k}", "dataset": dataset, "split": "test",
                         "subset": f"draw {draw}", "caption": pre_caption(caption, words),
                         "negative_captions": negatives, "image": str(image), "image_group": str(image)})
    check_images_exist(sorted({row["image"] for row in rows}), str(path), "its entries name")
    return rows


def items(dataset: str, spec: dict, context):
    path = Path(context.inputs["annotations"])
    if spec["benchmark"].startswith("vg_"):
        rows = vg_items(dataset, spec, path)
    else:
        rows = order_items(dataset, spec, path, context.seed)
    return item_table(rows), VOCABULARY


def inputs(dataset: str, spec: dict) -> dict:
    return {"annotations": str(annotation_file(spec))}


def skip_reason(dataset: str, spec: dict) -> str | None:
    return missing_folder_reason(dataset, spec, f"ARO's {ANNOTATIONS[spec['benchmark']]} and its images")


def check(dataset: str, spec: dict) -> list[str]:
    return root_file_errors(dataset, spec, annotation_file(spec), f" (benchmark {spec['benchmark']})")


KIND = DatasetKind(name="aro", config=schema_block("aro"), items=items, rendered=False,
                   analyses=("compositional",), inputs=inputs, skip_reason=skip_reason, check=check,
                   scoring=lambda dataset, spec: SCORING[spec["benchmark"]])
