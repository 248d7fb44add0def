"""The item table: the one contract between datasets and analyses (`results/<dataset>/items.parquet`).

Every dataset kind writes it; every analysis reads it through `read_items` and nothing else of the kind.

- Core columns, in every item table (CORE_COLUMNS): item_id, dataset, split (train/val/test), caption,
  negative_captions (list, possibly empty) and image (a PNG path, relative to the dataset's results folder for
  rendered items or absolute for files on disk; null for text-only items).
- Optional typed columns (OPTIONAL_COLUMNS): a column that is present has exactly this type. `objects` lists
  the objects in caption order with their attribute, size and position; renders add their shard, render seed,
  camera and image size (RENDER_COLUMNS, required where the kind is rendered); `world` names the stage a
  render uses where a kind has several (render/textures.py); `subset` the benchmark subset an item belongs
  to (SugarCrepe's replace_att, ...); `pair` the example two items make together (Winoground's id: two images, each
  with its caption and the other's as negative); `crop_box` the box (x, y, width, height in pixels) the image is
  cropped to before it is embedded (ARO's Visual Genome items); `image_group` the image an item's caption
  describes where several items share it (COCO's five captions: Recall@K ranks images, not items);
  `annotated_objects` the objects annotated in the image, in no particular order, with their areas (COCO's
  instances, the ground truth of the caption-order statistics); `url` where an image was downloaded from (LAION).
- The vocabulary (VOCABULARY_KEY in the Parquet metadata): the object names, the attribute values and the
  caption grammar, so that analyses take label spaces and caption parsing from the data.
"""
import json
import re
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import pyarrow as pa

from workflow_scripts.common.parquet import read_schema, read_table, write_table

OBJECT_TYPE = pa.struct(
    [
        ("object", pa.string()),  # the object's name (a CLEVR or SIMCO shape, a COCO category, ...)
        ("attribute", pa.string()),  # the attribute bound to it (a colour, a texture, ...), null where none
        ("material", pa.string()),
        ("size", pa.string()),  # "large" / "small"
        ("radius", pa.float64()),
        # [x, y, z] in the scene where known (renders), null for objects read from annotations. A plain list, not
        # list<double, 3>: pyarrow 25 writes a null fixed-size list inside a struct but cannot read it back.
        ("position", pa.list_(pa.float64())),
        ("rotation_deg", pa.float64()),
    ]
)
CAMERA_TYPE = pa.struct(
    [
        ("location", pa.list_(pa.float64(), 3)),
        ("target", pa.list_(pa.float64(), 3)),
        ("focal_length_mm", pa.float64()),
        ("sensor_width_mm", pa.float64()),
    ]
)
ANNOTATED_OBJECT_TYPE = pa.struct(
    [
        ("object", pa.string()),  # the annotated category (COCO's)
        ("area", pa.float64()),  # the annotation's mask area, as a fraction of the image's area
        ("box_area", pa.float64()),  # its bounding box's area, as a fraction of the image's area
    ]
)
CORE_COLUMNS = {
    "item_id": pa.string(),
    "dataset": pa.string(),
    "split": pa.string(),
    "caption": pa.string(),
    "negative_captions": pa.list_(pa.string()),
    "image": pa.string(),
}
OPTIONAL_COLUMNS = {
    "n_objects": pa.int32(),
    "objects": pa.list_(OBJECT_TYPE),
    "shard": pa.int32(),
    "render_seed": pa.int64(),
    "camera": CAMERA_TYPE,
    "image_width": pa.int32(),
    "image_height": pa.int32(),
    "world": pa.string(),
    "subset": pa.string(),
    "pair": pa.string(),
    "crop_box": pa.list_(pa.float64()),
    "image_group": pa.string(),
    "annotated_objects": pa.list_(ANNOTATED_OBJECT_TYPE),
    "url": pa.string(),
}
RENDER_COLUMNS = ("n_objects", "objects", "shard", "render_seed", "camera", "image_width", "image_height")
SPLITS = ("train", "val", "test")
PAIR_LABELS = ("unordered", "ordered", "attribute_pairs")  # Vocabulary.pair_labels
VOCABULARY_KEY = b"vocabulary"


@dataclass(frozen=True)
class Vocabulary:
    """What a dataset's captions are made of: object names, attribute values, and the caption grammar (each
    object's `phrase`, joined in object order by `joiner`). `phrase` None: free text, not parseable. `sizes`, where
    given, is each object's size category in the world ("large", "small", or "" for neither), aligned with
    `objects` (TOR's size_order protocol). `pair_labels` names the authors' Recall@K candidates over two-object
    captions, their "pair labels" (PAIR_LABELS; analyses/binding.py builds them): "unordered", every two
    attribute-object pairs with different objects, one wording per set of pairs (their CLEVR code); "ordered", every
    ordered such pair with different attributes too, both word orders (their PUG:SPARE loader); "attribute_pairs",
    every ordered pair of different objects with each (first, second) of `attribute_pairs` (their PUG:SPAR loader)."""

    objects: tuple[str, ...]
    attributes: tuple[str, ...] = ()
    phrase: str | None = "{object}"
    joiner: str = " and "
    sizes: tuple[str, ...] = ()
    pair_labels: str = "unordered"
    attribute_pairs: tuple[tuple[str, str], ...] = ()

    def caption(self, objects, attributes=None) -> str:
        """The caption naming `objects` in order, each with its attribute where the phrase has one."""
        attributes = [None] * len(objects) if attributes is None else attributes
        return self.joiner.join(self.phrase.format(object=o, attribute=a) for o, a in zip(objects, attributes))

    def parse(self, caption: str) -> list[tuple[str | None, str]]:
        """(attribute, object) per phrase of a caption written by `caption`; ValueError naming the caption when it
        does not follow the grammar."""
        if self.phrase is None:
            raise ValueError(f"captions of this vocabulary are free text; cannot parse {caption!r}")
        pairs = []
        for text in caption.split(self.joiner):
            match = self._phrase_pattern.fullmatch(text)
            if match is None:
                raise ValueError(f"caption {caption!r}: {text!r} is not a phrase {self.phrase!r} of the vocabulary")
            found = match.groupdict()
            pairs.append((found.get("attribute"), found["object"]))
        return pairs

    @cached_property
    def _phrase_pattern(self) -> re.Pattern:
        """One object's phrase as a regular expression over the vocabulary's words (built once)."""
        pattern = re.escape(self.phrase).replace(r"\{object\}", "(?P<object>" + _alternatives(self.objects) + ")")
        return re.compile(pattern.replace(r"\{attribute\}", "(?P<attribute>" + _alternatives(self.attributes) + ")"))

    def binding(self, caption: str) -> tuple:
        """Order-free identity of a caption's attribute-object pairs: equal for captions that bind alike."""
        return binding_key(self.parse(caption))

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, text: bytes) -> "Vocabulary":
        fields = json.loads(text)
        return cls(tuple(fields["objects"]), tuple(fields["attributes"]), fields["phrase"], fields["joiner"],
                   tuple(fields.get("sizes", ())), fields.get("pair_labels", "unordered"),
                   tuple(tuple(pair) for pair in fields.get("attribute_pairs", ())))


def binding_key(pairs) -> tuple:
    """Order-free identity of a set of (attribute, object) pairs."""
    return tuple(sorted(pairs))


def _alternatives(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) or "(?!)"


def shard_dir(shard: int) -> str:
    """A render shard's folder inside the dataset's results folder."""
    return f"images/shard-{shard:03d}"


def shard_manifest(shard: int) -> str:
    """The manifest the render job writes beside its shard's folder, last: the rules that read the images take it
    as input, so a folder without one (made by hand, or left by a job killed before the end) is rendered again."""
    return f"{shard_dir(shard)}.manifest.json"


def image_path(shard: int, item_id: str) -> str:
    return f"{shard_dir(shard)}/{item_id}.png"


def item_schema(columns) -> pa.Schema:
    """The schema of an item table with the core columns and the optional `columns` named."""
    unknown = sorted(set(columns) - set(OPTIONAL_COLUMNS))
    if unknown:
        raise ValueError(f"unknown item columns {unknown}; optional columns are {sorted(OPTIONAL_COLUMNS)}")
    return pa.schema([*CORE_COLUMNS.items(), *((c, OPTIONAL_COLUMNS[c]) for c in OPTIONAL_COLUMNS if c in columns)])


def item_table(rows: list[dict]) -> pa.Table:
    """Rows (dicts with every core column and any optional ones, all rows alike) as a typed item table."""
    columns = set(rows[0]) - set(CORE_COLUMNS) if rows else set()
    return pa.Table.from_pylist(rows, schema=item_schema(columns))


def rendered_items(dataset: str, scenes: list[dict], splits: list[str], shards: int, width: int,
                   height: int) -> pa.Table:
    """The item table of rendered scenes in order: ids, contiguous shards, image paths. Each scene dict holds
    n_objects, objects, caption, negative_captions, render_seed and camera."""
    rows = []
    for index, (scene, split) in enumerate(zip(scenes, splits)):
        item_id = f"{dataset}-{index:06d}"
        shard = index * shards // len(scenes)
        rows.append({"item_id": item_id, "dataset": dataset, **scene, "split": split, "shard": shard,
                     "image_width": width, "image_height": height, "image": image_path(shard, item_id)})
    return item_table(rows)


def write_items(table: pa.Table, vocabulary: Vocabulary, path, provenance: dict) -> None:
    metadata = dict(table.schema.metadata or {})
    metadata[VOCABULARY_KEY] = vocabulary.to_json()
    write_table(table.replace_schema_metadata(metadata), path, provenance)


def check_items(table: pa.Table, source, rendered: bool = False) -> None:
    """ValueError naming `source` when the table breaks the contract: a core column missing, a column of the
    wrong type, a split outside train/val/test, a repeated item id, or (rendered) a render column missing."""
    types = dict(zip(table.schema.names, table.schema.types))
    required = list(CORE_COLUMNS) + (list(RENDER_COLUMNS) if rendered else [])
    missing = [c for c in required if c not in types]
    if missing:
        raise ValueError(f"{source}: item table lacks column(s) {missing}")
    for name, expected in {**CORE_COLUMNS, **OPTIONAL_COLUMNS}.items():
        if name in types and types[name] != expected:
            raise ValueError(f"{source}: column {name!r} is {types[name]}, the item contract says {expected}")
    bad = sorted(set(table.column("split").to_pylist()) - set(SPLITS))
    if bad:
        raise ValueError(f"{source}: splits {bad} are not among {SPLITS}")
    ids = table.column("item_id").to_pylist()
    if len(set(ids)) != len(ids):
        raise ValueError(f"{source}: item ids repeat")


def read_vocabulary(path) -> Vocabulary:
    metadata = read_schema(path, "an item table").metadata or {}
    if VOCABULARY_KEY not in metadata:
        raise ValueError(f"{path}: no {VOCABULARY_KEY.decode()!r} in the Parquet metadata: not an item table")
    return Vocabulary.from_json(metadata[VOCABULARY_KEY])


def read_items(path) -> tuple[list[dict], Vocabulary]:
    """(rows of the item table, its vocabulary); ValueError naming the file when it is not an item table."""
    table = read_table(path, what="an item table")
    check_items(table, path)
    return table.to_pylist(), read_vocabulary(path)


def image_file(items_path, image: str) -> Path:
    """Where an item's image lies: relative paths are inside the dataset's results folder."""
    return Path(items_path).parent / image
