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


def listed_names(spec: dict) -> tuple[str, ...]:
    return tuple(spec["objects"]) if "objects" in spec else NAME_LISTS[spec["names"]]


def items(dataset: str, spec: dict, context: ItemContext):
    names = listed_names(spec)
    rows = [{"item_id": f"{dataset}-{i:04d}", "dataset": dataset, "split": "test", "caption": name,
             "negative_captions": [], "image": None} for i, name in enumerate(names)]
    return item_table(rows), Vocabulary(objects=names)


def check(dataset: str, spec: dict) -> list[str]:
    errors = []
    if "objects" in spec and "names" in spec:
        errors.append(f"datasets.{dataset}: give either names or objects, not both")
    elif "objects" not in spec and "names" not in spec:
        errors.append(f"datasets.{dataset}: give names ({' or '.join(NAME_LISTS)}) or an objects list")
    elif "objects" in spec and len(set(spec["objects"])) != len(spec["objects"]):
        errors.append(f"datasets.{dataset}.objects: names repeat")
    return errors


KIND = DatasetKind(name="names", config=schema_block("names"), items=items, rendered=False, has_images=False,
                   analyses=("tor",), check=check)
