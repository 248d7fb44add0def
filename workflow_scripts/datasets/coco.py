"""Dataset kind `coco`: COCO 2014 captions, read as a user who downloaded COCO has them, with paper A's hard
negatives for LABCLIP and the 5k test split for Recall@K.

Files: `<root>/annotations/captions_train2014.json` and `captions_val2014.json` (COCO's format: "images" with id
and file_name, "annotations" with image_id and caption), images `<root>/train2014/`, `<root>/val2014/`; or, with
`karpathy` set, Karpathy's `dataset_coco.json` ("images" with filepath, filename, cocoid, split and sentences'
raw text), whose splits are used: train and restval -> train, val, test (the 5k test images).
Without `karpathy`: train is train2014; `test_images` and `val_images` images of val2014 are drawn with the seed
for test and val (not Karpathy's 5k: the tables say which).
One item per image and caption (the first `captions_per_image` of each image, in file order), sharing the image's
`image_group`: the caption cut to `max_words` words (40, as the authors cut them) and, as its one negative, the
same words with nouns and adjectives shuffled by ARO's text shuffler (perturbations.nouns_and_adjectives),
seeded by the config's seed and the item's place. Where the shuffle leaves every token in place (it drew the
identity, or swapped equal words, as ARO's shuffler does: 2,733 of the 24,000 captions of the real COCO val2014
subset in ../shared with seed 0), the negative is the caption
itself, written as the caption is: ARO's tokens joined by spaces would differ from it in spacing only
("couch." -> "couch ."), which hid that the negative is no negative (similarity.has_distinct_negative compares
the texts). The item keeps it, as the authors' protocol trains on it; the clean LABCLIP map drops such items.
With analysis `mention_order` listed, COCO's instance annotations (`<root>/annotations/instances_{train,val}2014.json`)
give every item its image's `annotated_objects`: each instance's category and its mask and box areas as fractions
of the image (crowd regions, iscrowd 1, are not one object and are left out): the ground truth of paper B's
caption-order statistic.
"""
from pathlib import Path

from workflow_scripts.datasets.items import Vocabulary, item_table
from workflow_scripts.datasets.kind import DatasetKind, check_images_exist, missing_folder_reason, read_json, schema_block
from workflow_scripts.datasets.perturbations import cut_words, iter_tags, nouns_and_adjectives, seeded
from workflow_scripts.datasets.splits import dataset_rng

CAPTIONS = {"train": "annotations/captions_train2014.json", "val": "annotations/captions_val2014.json"}
INSTANCES = {"instances_train": "annotations/instances_train2014.json",
             "instances_val": "annotations/instances_val2014.json"}
IMAGE_FOLDERS = {"train": "train2014", "val": "val2014"}
KARPATHY_SPLITS = {"train": "train", "restval": "train", "val": "val", "test": "test"}
VOCABULARY = Vocabulary(objects=(), phrase=None)  # free-text captions


def read_captions(path) -> dict[int, tuple[str, list[str]]]:
    """{image id: (file_name, captions in file order)} of a COCO captions file; ValueError naming the file and
    the entry when it is not COCO's format."""
    data = read_json(path, 'COCO\'s captions format {"images": [...], "annotations": [...]}')
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise ValueError(f"{path}: expected COCO's captions format, an object with 'images' and 'annotations' lists")
    images = {}
    for index, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image or not image.get("file_name"):
            raise ValueError(f"{path}: images[{index}] has no 'id' or 'file_name'")
        images[image["id"]] = (image["file_name"], [])
    for index, annotation in enumerate(data["annotations"]):
        if not isinstance(annotation, dict) or not isinstance(annotation.get("caption"), str):
            raise ValueError(f"{path}: annotations[{index}] has no 'caption' text")
        if annotation.get("image_id") not in images:
            raise ValueError(f"{path}: annotations[{index}] names image_id {annotation.get('image_id')!r}, "
                             "which 'images' does not list")
        images[annotation["image_id"]][1].append(annotation["caption"])
    return images


def read_karpathy(path) -> list[dict]:
    """[{cocoid, image (filepath/filename), split (train/val/test), captions}] of Karpathy's dataset_coco.json;
    ValueError naming the file and the entry when it is not that format."""
    data = read_json(path, 'Karpathy\'s dataset_coco.json {"images": [...]}')
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not data["images"]:
        raise ValueError(f"{path}: expected Karpathy's format, an object with a non-empty 'images' list")
    rows = []
    for index, image in enumerate(data["images"]):
        missing = [key for key in ("filepath", "filename", "cocoid", "split", "sentences") if key not in image] \
            if isinstance(image, dict) else ["filepath"]
        if missing:
            raise ValueError(f"{path}: images[{index}] has no {missing[0]!r}")
        if image["split"] not in KARPATHY_SPLITS:
            raise ValueError(f"{path}: images[{index}] has split {image['split']!r}, not one of {list(KARPATHY_SPLITS)}")
        rows.append({"cocoid": image["cocoid"], "image": f"{image['filepath']}/{image['filename']}",
                     "split": KARPATHY_SPLITS[image["split"]],
                     "captions": [sentence["raw"] for sentence in image["sentences"]]})
    return rows


def read_instances(path) -> dict[int, list[dict]]:
    """{image id: [{object, area, box_area}]} of a COCO instances file, areas as fractions of the image, crowd
    regions left out; ValueError naming the file and the entry when it is not COCO's instances format."""
    data = read_json(path, 'COCO\'s instances format {"images": [...], "annotations": [...], "categories": [...]}')
    if not isinstance(data, dict) or not all(isinstance(data.get(key), list)
                                             for key in ("images", "annotations", "categories")):
        raise ValueError(f"{path}: expected COCO's instances format, an object with 'images', 'annotations' and "
                         "'categories' lists")
    names = {}
    for index, category in enumerate(data["categories"]):
        if not isinstance(category, dict) or "id" not in category or not category.get("name"):
            raise ValueError(f"{path}: categories[{index}] has no 'id' or 'name'")
        names[category["id"]] = category["name"]
    sizes = {}
    for index, image in enumerate(data["images"]):
        if not isinstance(image, dict) or not all(image.get(key) for key in ("id", "width", "height")):
            raise ValueError(f"{path}: images[{index}] has no 'id', 'width' or 'height'")
        sizes[image["id"]] = image["width"] * image["height"]
    objects = {image_id: [] for image_id in sizes}
    for index, annotation in enumerate(data["annotations"]):
        fields = ("image_id", "category_id", "area", "bbox")
        if not isinstance(annotation, dict) or any(key not in annotation for key in fields):
            raise ValueError(f"{path}: annotations[{index}] lacks one of {list(fields)}")
        if annotation["image_id"] not in sizes or annotation["category_id"] not in names:
            raise ValueError(f"{path}: annotations[{index}] names image_id {annotation['image_id']!r} or category_id "
                             f"{annotation['category_id']!r}, which 'images' or 'categories' does not list")
        if annotation.get("iscrowd"):
            continue
        size = sizes[annotation["image_id"]]
        _, _, width, height = annotation["bbox"]
        objects[annotation["image_id"]].append({"object": names[annotation["category_id"]],
                                                "area": annotation["area"] / size, "box_area": width * height / size})
    return objects


def reads_instances(spec: dict) -> bool:
    """Whether an entry needs the instance annotations: when it runs the caption-order statistic."""
    return "mention_order" in KIND.analyses_of(spec)


def official_split_images(spec: dict, inputs: dict, seed: int, dataset: str) -> list[dict]:
    """The images of captions_train2014 (train) and, drawn with the seed from captions_val2014, the test and val
    images; the rest of val2014 is not used."""
    rows = [{"cocoid": cocoid, "image": f"{IMAGE_FOLDERS['train']}/{name}", "split": "train", "captions": captions}
            for cocoid, (name, captions) in sorted(read_captions(inputs["train"]).items())]
    val = sorted(read_captions(inputs["val"]).items())
    wanted = spec["test_images"] + spec["val_images"]
    if wanted > len(val):
        raise ValueError(f"datasets.{dataset}: test_images + val_images = {wanted}, but {inputs['val']} has "
                         f"{len(val)} images")
    order = dataset_rng(seed, dataset).permutation(len(val))[:wanted]
    for rank, index in enumerate(order):
        cocoid, (name, captions) = val[index]
        rows.append({"cocoid": cocoid, "image": f"{IMAGE_FOLDERS['val']}/{name}",
                     "split": "test" if rank < spec["test_images"] else "val", "captions": captions})
    return rows


def hard_negative(caption: str, tokens, rng) -> str:
    """ARO's shuffle of the caption's nouns and adjectives (`tokens`: its (text, tag) pairs); the caption itself
    where the shuffle leaves every token in place, so that a negative equal to its caption reads as equal."""
    negative = nouns_and_adjectives(tokens, rng)
    return caption if negative == " ".join(text for text, _ in tokens) else negative


def items(dataset: str, spec: dict, context):
    root = Path(spec["root"]).expanduser().resolve()
    images = (read_karpathy(context.inputs["karpathy"]) if spec.get("karpathy")
              else official_split_images(spec, context.inputs, context.seed, dataset))
    if spec["max_train_images"] is not None:
        images = ([row for row in images if row["split"] == "train"][:spec["max_train_images"]]
                  + [row for row in images if row["split"] != "train"])
    captions = [(image, k, cut_words(caption, spec["max_words"])) for image in images
                for k, caption in enumerate(image["captions"][:spec["captions_per_image"]])]
    tokens = iter_tags(caption for _, _, caption in captions)
    instances = {}
    for key in INSTANCES if reads_instances(spec) else ():
        instances.update(read_instances(context.inputs[key]))
    annotated = {"annotated_objects": lambda image: instances.get(image["cocoid"], [])} if instances else {}
    rows = [{"item_id": f"{dataset}-{image['cocoid']}-{k}", "dataset": dataset, "split": image["split"],
             "caption": caption, "image": str(root / image["image"]), "image_group": str(image["cocoid"]),
             "negative_captions": [hard_negative(caption, tokens_of, seeded(context.seed, image["cocoid"], k))],
             **{column: values(image) for column, values in annotated.items()}}
            for (image, k, caption), tokens_of in zip(captions, tokens)]
    check_images_exist(sorted({row["image"] for row in rows}), f"datasets.{dataset}.root ({root})",
                       "its captions name")
    return item_table(rows), VOCABULARY


def inputs(dataset: str, spec: dict) -> dict:
    root = Path(spec["root"]).expanduser()
    instances = {key: str(root / path) for key, path in INSTANCES.items()} if reads_instances(spec) else {}
    if spec.get("karpathy"):
        return {"karpathy": str(Path(spec["karpathy"]).expanduser()), **instances}
    return {**{split: str(root / path) for split, path in CAPTIONS.items()}, **instances}


def skip_reason(dataset: str, spec: dict) -> str | None:
    return missing_folder_reason(dataset, spec, "COCO 2014 (annotations/, train2014/, val2014/)")


def check(dataset: str, spec: dict) -> list[str]:
    if not Path(spec["root"]).expanduser().is_dir():
        return []  # skipped, and skip_reason says why
    return [f"datasets.{dataset}.{'karpathy' if key == 'karpathy' else 'root'}: {path} does not exist"
            + (" (analysis mention_order reads COCO's instance annotations)" if key in INSTANCES else "")
            for key, path in inputs(dataset, spec).items() if not Path(path).is_file()]


KIND = DatasetKind(name="coco", config=schema_block("coco"), items=items, rendered=False,
                   analyses=("labclip", "recall"), inputs=inputs, skip_reason=skip_reason, check=check)
