"""Dataset kind `comco`: paper B's ComCO scenes, drawn as SIMCO's (simco.py) from the user's meshes of COCO
categories, one file per category in a folder, with single-object references.

The folder is read when the Snakefile is parsed (`mesh_files`); rule mesh_geometry imports and measures the
files with Blender (workflow_scripts/render/meshes.py) into results/<name>/meshes.json, which the item builder
reads for the categories and their geometry.
"""
import json
from pathlib import Path

from workflow_scripts.datasets import simco
from workflow_scripts.datasets.items import Vocabulary
from workflow_scripts.datasets.kind import DatasetKind, ItemContext, scene_counts, schema_block

MESH_SUFFIXES = (".glb", ".obj", ".blend")


def category_name(path: Path) -> str:
    """The category a mesh file stands for: its name without suffix, underscores read as spaces."""
    return path.stem.replace("_", " ")


def mesh_files(folder, categories=None) -> dict[str, Path]:
    """{category: mesh file} for `categories` (default: every mesh file in `folder`, sorted by name).

    Raises FileNotFoundError naming the file a listed category lacks, and ValueError for two files of one
    category. Files with other suffixes are ignored.
    """
    folder = Path(folder)
    found = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in MESH_SUFFIXES:
            name = category_name(path)
            if name in found:
                raise ValueError(f"{folder}: two mesh files for category {name!r}: {found[name].name} and {path.name}")
            found[name] = path
    if categories is None:
        return found
    missing = [c for c in categories if c not in found]
    if missing:
        expected = folder / (missing[0].replace(" ", "_") + ".glb")
        raise FileNotFoundError(
            f"no mesh file for categor{'y' if len(missing) == 1 else 'ies'} {', '.join(map(repr, missing))} in "
            f"{folder}: expected e.g. {expected} (or .obj / .blend)")
    return {c: found[c] for c in categories}


def read_mesh_geometry(path) -> tuple[list[str], dict, dict]:
    """(categories, {category: (footprint, reach, height)}, {category: file}) from mesh_geometry's JSON, in its
    order."""
    measured = json.loads(Path(path).read_text())
    geometry = {c: (m["footprint"], m["reach"], m["height"]) for c, m in measured.items()}
    return list(measured), geometry, {c: m["file"] for c, m in measured.items()}


def _with_meshes(table, files: dict):
    """The item table with the mesh file of each category in its metadata, where the renderer finds them."""
    metadata = dict(table.schema.metadata or {})
    metadata[MESHES_KEY] = json.dumps(files, sort_keys=True).encode()
    return table.replace_schema_metadata(metadata)


def items(dataset: str, spec: dict, context: ItemContext):
    categories, geometry, files = read_mesh_geometry(context.inputs["meshes"])
    width, height = context.resolution
    table = simco.generate_simco_scenes(dataset, spec, width, height, context.seed, categories, geometry)
    return _with_meshes(table, files), Vocabulary(objects=tuple(categories))


def references(dataset: str, spec: dict, context: ItemContext):
    categories, geometry, files = read_mesh_geometry(context.inputs["meshes"])
    table = simco.generate_simco_references(dataset, *context.resolution, context.seed, categories, geometry)
    return _with_meshes(table, files), Vocabulary(objects=tuple(categories))


def inputs(dataset: str, spec: dict) -> dict:
    return {"meshes": f"results/{dataset}/meshes.json"}


def skip_reason(dataset: str, spec: dict) -> str | None:
    folder = Path(spec["meshes"]).expanduser()
    if folder.is_dir():
        return None
    return (f"its mesh folder {folder} (datasets.{dataset}.meshes) does not exist, so none of its targets are "
            "requested. Put one .glb/.obj/.blend file per COCO category there.")


def source_files(dataset: str, spec: dict) -> dict[str, Path]:
    """The mesh file of each category; ValueError/OSError naming the key and the file when they do not suffice."""
    folder = Path(spec["meshes"]).expanduser()
    try:
        files = mesh_files(folder, spec.get("categories"))
    except (OSError, ValueError) as error:
        raise ValueError(f"datasets.{dataset}.meshes: {error}") from None
    needed = max(spec["objects_per_scene"]) + 1  # distinct objects and a distractor
    if len(files) < needed:
        raise ValueError(f"datasets.{dataset}.meshes: {folder} has {len(files)} categories ({', '.join(files)}); "
                         f"scenes of {needed - 1} objects and a distractor need {needed}")
    return files


MESHES_KEY = b"meshes"
KIND = DatasetKind(name="comco", config=schema_block("comco"), items=items, rendered=True,
                   analyses=("tor", "ior", "matching"), references=references, inputs=inputs,
                   source_files=source_files, skip_reason=skip_reason, check=simco.check,
                   planned_items=scene_counts)
