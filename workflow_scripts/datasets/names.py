"""Dataset kind `names`: a list of object names and nothing else, for the text-only analyses (paper B's TOR).

`names: coco` is the 90 COCO category names of the authors' ComCO TOR, in their order; `names: simco` SIMCO's 18
shapes in theirs; or `objects:` lists names of your own. The item table holds one text item per name (no images);
its vocabulary's object list, in that order, is what TOR combines (the authors' protocol keeps this order).
"""
from workflow_scripts.datasets import simco
from workflow_scripts.datasets.items import Vocabulary, item_table
from workflow_scripts.datasets.kind import DatasetKind, ItemContext, schema_block

COCO_TOR_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "street sign", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep",
    "cow", "dining table", "cell phone", "elephant", "bear", "zebra", "giraffe", "hat", "backpack", "umbrella",
    "shoe", "eye glasses", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "kite", "baseball bat",
    "baseball glove", "tennis racket", "wine glass", "hot dog", "potted plant", "teddy bear", "hair drier",
    "hair brush", "skateboard", "surfboard", "bottle", "plate", "cup", "fork", "knife", "spoon", "bowl", "banana",
    "apple", "sandwich", "orange", "broccoli", "carrot", "pizza", "donut", "cake", "chair", "couch", "bed",
    "mirror", "window", "desk", "toilet", "door", "tv", "laptop", "mouse", "remote", "keyboard", "microwave",
    "oven", "toaster", "sink", "refrigerator", "blender", "book", "clock", "vase", "scissors", "toothbrush",
)
NAME_LISTS = {"coco": COCO_TOR_NAMES, "simco": simco.SHAPES}
# Our size categories of COCO names for TOR's size_order protocol (not the authors'): "large", objects at least as
# big as a person (vehicles, large animals, large furniture); "small", objects held in one hand. Names of neither,
# or that vary too much (clock, kite, tv, ...), are left out of size_order captions.
COCO_LARGE = ("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "horse", "cow",
              "elephant", "bear", "zebra", "giraffe", "bench", "dining table", "couch", "bed", "desk", "door",
              "refrigerator")
COCO_SMALL = ("cell phone", "tie", "eye glasses", "frisbee", "baseball glove", "wine glass", "hot dog", "hair drier",
              "hair brush", "bottle", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
              "broccoli", "carrot", "donut", "mouse", "remote", "book", "scissors", "toothbrush")
SIZE_LISTS = {"coco": {**dict.fromkeys(COCO_LARGE, "large"), **dict.fromkeys(COCO_SMALL, "small")}}


def listed_names(spec: dict) -> tuple[str, ...]:
    return tuple(spec["objects"]) if "objects" in spec else NAME_LISTS[spec["names"]]


def listed_sizes(spec: dict) -> dict[str, str]:
    """Each name's size category: the entry's own `sizes`, or the built-in list's (none for simco)."""
    return spec.get("sizes", SIZE_LISTS.get(spec.get("names"), {}))


def items(dataset: str, spec: dict, context: ItemContext):
    names, sizes = listed_names(spec), listed_sizes(spec)
    rows = [{"item_id": f"{dataset}-{i:04d}", "dataset": dataset, "split": "test", "caption": name,
             "negative_captions": [], "image": None} for i, name in enumerate(names)]
    vocabulary = Vocabulary(objects=names, sizes=tuple(sizes.get(name, "") for name in names) if sizes else ())
    return item_table(rows), vocabulary


def check(dataset: str, spec: dict) -> list[str]:
    errors = []
    if "objects" in spec and "names" in spec:
        errors.append(f"datasets.{dataset}: give either names or objects, not both")
    elif "objects" not in spec and "names" not in spec:
        errors.append(f"datasets.{dataset}: give names ({' or '.join(NAME_LISTS)}) or an objects list")
    elif "objects" in spec and len(set(spec["objects"])) != len(spec["objects"]):
        errors.append(f"datasets.{dataset}.objects: names repeat")
    else:
        unknown = sorted(set(spec.get("sizes", {})) - set(listed_names(spec)))
        if unknown:
            errors.append(f"datasets.{dataset}.sizes: {unknown} are not among the dataset's names")
    return errors


KIND = DatasetKind(name="names", config=schema_block("names"), items=items, rendered=False, has_images=False,
                   analyses=("tor",), check=check)
