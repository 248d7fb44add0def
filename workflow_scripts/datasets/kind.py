"""What a dataset kind declares (DatasetKind), and what its item builder is given (ItemContext)."""
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "datasets"


def schema_block(name: str) -> Path:
    """A built-in kind's config schema block, schemas/datasets/<name>.schema.yaml (read by the config check)."""
    return SCHEMAS / f"{name}.schema.yaml"


@dataclass(frozen=True)
class ItemContext:
    """What an item builder may use besides the dataset's config entry: the global seed, the render resolution
    (rendered kinds) and the files the kind's `inputs` named, by the same keys."""

    seed: int
    resolution: tuple[int, int]
    inputs: dict[str, str] = field(default_factory=dict)
    folder: str = ""  # the dataset's results folder, where a kind may write images it extracts (relative paths)


@dataclass(frozen=True)
class DatasetKind:
    """A kind of dataset, declared by one module under workflow_scripts/datasets/ (or any module named in the
    config's `kind_modules`) as its `KIND`.

    config: JSON schema of a dataset entry of this kind, as a dict or a YAML file: `required` and `properties`
        (with defaults), merged with the keys every dataset has (schemas/datasets/common.schema.yaml; a kind
        may give those a default).
    items: (dataset name, config entry, ItemContext) -> (item table, Vocabulary).
    rendered: whether the items are scenes that render_shard draws (their table has the render columns).
    has_images: whether items have images (False: text only, e.g. a list of names; no image embeddings), or
        (dataset name, entry) -> whether this entry's items have (laion: only when img2dataset's images are given).
    analyses: the analyses that run on it unless the entry lists its own.
    references: like `items`, for the single-object references "<name>-references" of the dataset (None: none).
    inputs: (dataset name, entry) -> {key: path}: files the item builder reads (tracked by Snakemake).
    source_files: (dataset name, entry) -> {name: path}: user files to measure before items exist (meshes).
    skip_reason: (dataset name, entry) -> why the dataset cannot run here (its targets are skipped), or None.
    check: (dataset name, entry) -> list of errors the schema cannot express.
    planned_items: (dataset name, entry) -> {object count: items} the entry asks for, known from the config
        (generated scenes: `scene_counts`); lets the config check see that each split gets enough items for
        each analysis before any job. None: known only once the items are read (the items rule checks).
    setting: (dataset name, entry) -> the setting of paper A whose reference numbers the dataset's results stand
        beside ("CLEVR", "PUG:SPAR", "PUG:SPARE"; summary/reference.py), or None (no paper A reference).
    scoring: (dataset name, entry) -> how rule `compositional` scores it, as the benchmark's authors do
        (analyses/compositional.py's SCORINGS: "aro_relation", "aro_order", ...); None: the kind's name.
    """

    name: str
    config: dict | Path
    items: Callable
    rendered: bool
    analyses: tuple[str, ...]
    has_images: bool | Callable = True
    references: Callable | None = None
    inputs: Callable | None = None
    source_files: Callable | None = None
    skip_reason: Callable | None = None
    check: Callable | None = None
    planned_items: Callable | None = None
    setting: Callable | None = None
    scoring: Callable | None = None

    def images_of(self, dataset: str, spec: dict) -> bool:
        """Whether a dataset entry of this kind has images (has_images, for this entry)."""
        return self.has_images(dataset, spec) if callable(self.has_images) else self.has_images

    def analyses_of(self, spec: dict) -> tuple[str, ...]:
        """The analyses a dataset entry of this kind runs: its own list, or the kind's."""
        return tuple(spec.get("analyses", self.analyses))


def missing_folder_reason(dataset: str, spec: dict, what: str) -> str | None:
    """A `skip_reason` for kinds read from a user's download at `root`: why the dataset is skipped when that
    folder does not exist (`what`: what to put there), None when it does."""
    root = Path(spec["root"]).expanduser()
    if root.is_dir():
        return None
    return (f"its folder {root} (datasets.{dataset}.root) does not exist, so none of its targets are requested. "
            f"Put {what} there.")


def root_file_errors(dataset: str, spec: dict, path, note: str = "") -> list[str]:
    """A `check` for kinds read from a user's download at `root`: the file `path` they need is missing although
    the folder exists (a missing folder skips the dataset, and skip_reason says why)."""
    if Path(spec["root"]).expanduser().is_dir() and not Path(path).is_file():
        return [f"datasets.{dataset}.root: {path} does not exist{note}"]
    return []


def decode_text(data: bytes, where) -> str:
    """`data` as UTF-8 text; ValueError naming `where` (a file, or a member of an archive) and the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{where}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}); "
                         "save it as UTF-8") from None


def read_text(path) -> str:
    """The UTF-8 text of the file `path`; ValueError naming it and the first byte that is not UTF-8."""
    return decode_text(Path(path).read_bytes(), path)


def read_json(path, expected: str):
    """The JSON value in `path`; ValueError naming the file and what was `expected` when it is not UTF-8 JSON."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON ({error}); expected {expected}") from error


def read_json_list(path, fields, noun: str = "entry") -> list[dict]:
    """The objects of the non-empty JSON list in `path`, each with every one of `fields` (not null, "" or []);
    ValueError naming the file, the object (`noun` and its index) and the first missing field otherwise."""
    shape = f"a non-empty JSON list of {noun} objects with {list(fields)}"
    entries = read_json(path, shape)
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected {shape}")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: {noun} {index} is a {type(entry).__name__}, not an object with {list(fields)}")
        missing = [field for field in fields if entry.get(field) in (None, "", [])]
        if missing:
            raise ValueError(f"{path}: {noun} {index} has no {missing[0]!r} (each {noun} has {list(fields)})")
    return entries


def check_images_exist(images, source: str, what: str = "it lists", hint: str = "") -> None:
    """FileNotFoundError naming `source`, how many of `images` (paths) are missing and the first of them, for
    kinds whose images come from a user's download."""
    images = [Path(image) for image in images]
    missing = [image for image in images if not image.is_file()]
    if missing:
        raise FileNotFoundError(f"{source}: {len(missing)} of the {len(images)} images {what} are missing, e.g. "
                                f"{missing[0]}{hint}")


def shard_errors(dataset: str, spec: dict) -> list[str]:
    """A generated dataset of `objects_per_scene` x `scenes_per_count` scenes cannot have more shards than scenes."""
    total = len(spec["objects_per_scene"]) * spec["scenes_per_count"]
    if spec["shards"] > total:
        return [f"datasets.{dataset}.shards: {spec['shards']} shards for {total} scenes; use at most {total}"]
    return []


def scene_counts(dataset: str, spec: dict) -> dict[int, int]:
    """The scenes a generated dataset draws per object count: `scenes_per_count` of each of `objects_per_scene`."""
    return {n: spec["scenes_per_count"] for n in spec["objects_per_scene"]}
