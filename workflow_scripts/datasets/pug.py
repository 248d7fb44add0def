"""Dataset kind `pug`: the real PUG:SPAR and PUG:SPARE files (paper A's two Unreal Engine settings), read as a
user who downloaded them has them, into the item table.

- `variant: spar`: `<root>/labels.csv` (columns filename, world_name, character_name, character2_name,
  character_texture, character2_texture, character1_pos, character2_pos), each image at `<root>/<filename>`.
- `variant: spare`: `<root>/PUG_SPARE.csv` (the same columns and character_pos), each image at
  `<root>/<world_name>/<filename>` (worlds Desert, Island, MountainRange, Spaceship).

Paper A's filter, as its authors apply it: two animals, both named (not `blank`) and different, both with a
texture other than `Default`; for SPARE also two different textures. Each kept row is one item: caption
"{texture} {animal} and {texture} {animal}" (first animal first, words lower-cased as CLEVR's captions are),
hard negative the same caption with the textures swapped, and its pair label (texture 1, animal 1, texture 2,
animal 2): 1,984 labels in the full SPAR data (Blue or Grass on the first animal), 7,392 in SPARE. Splits are
grouped by the textures and animals of a scene, so that a caption, its swap and its renders in every world share
a split.

The authors train text probes on one world's rows ("desert"). Our text probes take each caption once (its first
item), and a caption's text embedding does not depend on the world, so the probes see the same captions as
theirs wherever every caption occurs in that world.
"""
import csv
from collections import Counter
from pathlib import Path

from workflow_scripts.datasets.clevr import split_group_key
from workflow_scripts.datasets.items import Vocabulary, item_table
from workflow_scripts.datasets.kind import (
    DatasetKind,
    ItemContext,
    check_images_exist,
    missing_folder_reason,
    schema_block,
)
from workflow_scripts.datasets.splits import assign_splits, dataset_rng

LABEL_FILES = {"spar": "labels.csv", "spare": "PUG_SPARE.csv"}
COLUMNS = ("filename", "world_name", "character_name", "character2_name", "character_texture", "character2_texture")
BLANK, DEFAULT_TEXTURE = "blank", "Default"
PHRASE = "{attribute} {object}"
# The authors' Recall@K candidates (Vocabulary.pair_labels) per variant: their SPAR loader pairs every ordered pair
# of animals with (Blue, Red) and (Grass, Stone), the first texture on the first animal; their SPARE loader takes
# every ordered pair label with two animals and two textures (both word orders).
SPAR_TEXTURE_PAIRS = (("Blue", "Red"), ("Grass", "Stone"))
PAIR_LABELS = {"spar": "attribute_pairs", "spare": "ordered"}


def labels_file(spec: dict) -> Path:
    return Path(spec["root"]).expanduser() / LABEL_FILES[spec["variant"]]


def image_of(root: Path, variant: str, row: dict) -> Path:
    return root / row["filename"] if variant == "spar" else root / row["world_name"] / row["filename"]


def read_labels(path) -> list[dict]:
    """The rows of a PUG labels file; ValueError naming the file and the column (or line and column) when a
    column the loader reads is missing or a row leaves one empty."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: no column(s) {missing}; a PUG labels file has {list(COLUMNS)} "
                             f"(its columns are {reader.fieldnames})")
        rows = []
        for row in reader:
            empty = [c for c in COLUMNS if not (row[c] or "").strip()]
            if empty:
                raise ValueError(f"{path}, line {reader.line_num}: column {empty[0]!r} is empty")
            rows.append({c: row[c].strip() for c in COLUMNS})
    return rows


def kept_by_authors(row: dict, variant: str) -> bool:
    """Paper A's filter: two different named animals with non-Default textures (SPARE: different textures too)."""
    animals = row["character_name"], row["character2_name"]
    textures = row["character_texture"], row["character2_texture"]
    return (BLANK not in animals and animals[0] != animals[1] and DEFAULT_TEXTURE not in textures
            and (variant == "spar" or textures[0] != textures[1]))


def word(name: str) -> str:
    """A PUG name as a caption word: lower case, underscores as spaces."""
    return name.replace("_", " ").lower()


def pair_label(row: dict) -> tuple[str, str, str, str]:
    """(texture 1, animal 1, texture 2, animal 2) of a kept row, as caption words."""
    return (word(row["character_texture"]), word(row["character_name"]),
            word(row["character2_texture"]), word(row["character2_name"]))


def pair_labels(rows: list[dict], variant: str) -> Counter:
    """How many kept rows carry each pair label."""
    return Counter(pair_label(row) for row in rows if kept_by_authors(row, variant))


def items(dataset: str, spec: dict, context: ItemContext):
    variant, path = spec["variant"], Path(context.inputs["labels"])
    root = path.parent.resolve()
    kept = [row for row in read_labels(path) if kept_by_authors(row, variant)]
    if not kept:
        raise ValueError(f"{path}: no row has two different named animals with non-Default textures"
                         + ("" if variant == "spar" else " that differ"))
    check_images_exist([image_of(root, variant, row) for row in kept], str(path), "it lists for paper A's pairs")
    vocabulary = Vocabulary(objects=tuple(sorted({w for row in kept for w in pair_label(row)[1::2]})),
                            attributes=tuple(sorted({w for row in kept for w in pair_label(row)[0::2]})),
                            phrase=PHRASE, pair_labels=PAIR_LABELS[variant],
                            attribute_pairs=tuple((word(a), word(b)) for a, b in SPAR_TEXTURE_PAIRS)
                            if variant == "spar" else ())
    scenes = []
    for row in kept:
        t1, a1, t2, a2 = pair_label(row)
        scenes.append({
            "n_objects": 2,
            "objects": [{"object": a1, "attribute": t1}, {"object": a2, "attribute": t2}],
            "caption": vocabulary.caption([a1, a2], [t1, t2]),
            "negative_captions": [vocabulary.caption([a1, a2], [t2, t1])],
            "image": str(image_of(root, variant, row)),
        })
    groups = [split_group_key([(t1, a1), (t2, a2)]) for t1, a1, t2, a2 in map(pair_label, kept)]
    splits = assign_splits(dataset_rng(context.seed, dataset), groups, spec["splits"])
    rows = [{"item_id": f"{dataset}-{i:06d}", "dataset": dataset, "split": split, **scene}
            for i, (scene, split) in enumerate(zip(scenes, splits))]
    return item_table(rows), vocabulary


def inputs(dataset: str, spec: dict) -> dict:
    return {"labels": str(labels_file(spec))}


def skip_reason(dataset: str, spec: dict) -> str | None:
    return missing_folder_reason(dataset, spec, f"the PUG:{spec['variant'].upper()} download "
                                                f"({LABEL_FILES[spec['variant']]} and its images)")


def check(dataset: str, spec: dict) -> list[str]:
    """The labels file's presence and header, read before any job (the rows are read by the items rule)."""
    path = labels_file(spec)
    if not Path(spec["root"]).expanduser().is_dir():
        return []  # skipped, and skip_reason says why
    if not path.is_file():
        return [f"datasets.{dataset}.root: {path} does not exist; a PUG:{spec['variant'].upper()} folder holds "
                f"{LABEL_FILES[spec['variant']]}"]
    with open(path, newline="") as handle:
        header = next(csv.reader(handle), [])
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        return [f"datasets.{dataset}.root: {path} has no column(s) {missing} (its columns are {header})"]
    return []


def setting(dataset: str, spec: dict) -> str:
    return f"PUG:{spec['variant'].upper()}"


KIND = DatasetKind(name="pug", config=schema_block("pug"), items=items, rendered=False,
                   analyses=("probes", "labclip", "binding"), inputs=inputs, skip_reason=skip_reason, check=check,
                   setting=setting)
