"""ComCO's object meshes: one user-supplied file per COCO category in a folder. Pure Python, read when the
Snakefile is parsed; workflow_scripts/meshes.py imports and measures the files with Blender."""
from pathlib import Path

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
