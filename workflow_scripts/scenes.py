"""Seeded CLEVR-style scene specifications: objects, camera, captions, hard negatives and splits.

Pure Python: the renderer reads the table this module writes and adds nothing random of its own
beyond what each scene's render seed determines.
"""

import sys
import zlib
from collections import Counter
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

import numpy as np
import pyarrow as pa

from workflow_scripts.camera import project, segment_point_distance
from workflow_scripts.paths import image_path

SHAPES = ("cube", "sphere", "cylinder")
# Paper B's SIMCO vocabulary: 18 simple shapes (built in workflow_scripts/simco_shapes.py).
SIMCO_SHAPES = ("cube", "sphere", "cylinder", "mug", "pentagon", "heart", "cone", "pyramid", "diamond",
                "moon", "cross", "snowflake", "leaf", "arrow", "star", "torus", "pot", "cap")
# CLEVR's colours, sRGB 0-255.
COLORS = {
    "gray": (87, 87, 87),
    "red": (173, 35, 35),
    "blue": (42, 75, 215),
    "green": (29, 105, 20),
    "brown": (129, 74, 25),
    "purple": (129, 38, 192),
    "cyan": (41, 208, 208),
    "yellow": (255, 238, 51),
}
MATERIALS = ("rubber", "metal")
SIZES = {"large": 0.7, "small": 0.35}  # CLEVR's object radius in Blender units

# Camera in the spirit of CLEVR's base scene, jittered per scene.
CAMERA_LOCATION = (7.36, -6.93, 4.96)
CAMERA_JITTER = 0.5
FOCAL_LENGTH_MM = 35.0
SENSOR_WIDTH_MM = 36.0
GROUND_HALF_EXTENT = 3.0  # objects are placed in [-3, 3]^2
MIN_GAP = 0.25  # free space between the footprints of two objects
FRAME_MARGIN = 0.02  # fraction of the image kept free at its border
MAX_PLACEMENT_TRIES = 200
MAX_SCENE_TRIES = 100

SCENE_SCHEMA = pa.schema(
    [
        ("scene_id", pa.string()),
        ("dataset", pa.string()),
        ("n_objects", pa.int32()),
        (
            "objects",
            pa.list_(
                pa.struct(
                    [
                        ("shape", pa.string()),
                        ("color", pa.string()),
                        ("material", pa.string()),
                        ("size", pa.string()),
                        ("radius", pa.float64()),
                        ("position", pa.list_(pa.float64(), 3)),
                        ("rotation_deg", pa.float64()),
                    ]
                )
            ),
        ),
        ("caption", pa.string()),
        ("negative_captions", pa.list_(pa.string())),
        ("split", pa.string()),
        ("shard", pa.int32()),
        ("render_seed", pa.int64()),
        (
            "camera",
            pa.struct(
                [
                    ("location", pa.list_(pa.float64(), 3)),
                    ("target", pa.list_(pa.float64(), 3)),
                    ("focal_length_mm", pa.float64()),
                    ("sensor_width_mm", pa.float64()),
                ]
            ),
        ),
        ("image_width", pa.int32()),
        ("image_height", pa.int32()),
        ("image", pa.string()),
    ]
)


def dataset_rng(seed: int, dataset: str) -> np.random.Generator:
    """A generator that depends only on the global seed and the dataset's name."""
    return np.random.default_rng([seed, zlib.crc32(dataset.encode())])


def caption(pairs) -> str:
    """'{color} {shape} and {color} {shape} ...' for (color, shape) pairs, in order."""
    return " and ".join(f"{color} {shape}" for color, shape in pairs)


def parse_caption(text: str) -> list[tuple[str, str]]:
    """The (color, shape) pairs of a caption written by `caption`."""
    return [tuple(phrase.split(" ")) for phrase in text.split(" and ")]


def binding_key(pairs) -> tuple:
    """Order-free identity of a set of attribute-object pairs."""
    return tuple(sorted(pairs))


def split_group_key(pairs) -> tuple:
    """Colours and shapes as multisets: equal for a caption and every re-binding of its colours."""
    return tuple(sorted(c for c, _ in pairs)), tuple(sorted(s for _, s in pairs))


def bounding_radius(shape: str, radius: float) -> float:
    """Radius of a sphere around the object's centre that contains it."""
    return {"sphere": 1.0, "cube": np.sqrt(3 / 2), "cylinder": np.sqrt(2)}[shape] * radius


def centre_height(shape: str, radius: float) -> float:
    """Height of the centre of an object resting on the ground (cubes have half-side radius/sqrt 2)."""
    return radius / np.sqrt(2) if shape == "cube" else radius


def sample_attributes(rng, n: int) -> tuple[list[str], list[str]]:
    """Shapes and colours of n objects: distinct where the vocabularies allow, and never so repetitive
    that no hard negative exists (no colour on more than half the objects, not all shapes equal)."""
    while True:
        shapes = [str(s) for s in rng.choice(SHAPES, n, replace=n > len(SHAPES))]
        colors = [str(c) for c in rng.choice(list(COLORS), n, replace=n > len(COLORS))]
        if max(Counter(colors).values()) <= n // 2 and len(set(shapes)) > 1:
            return shapes, colors


def hard_negatives(rng, shapes, colors, count: int) -> list[list[tuple[str, str]]]:
    """`count` distinct re-bindings of the colours to the shapes in which no object keeps its colour
    and the set of pairs differs from the original. For two objects this is the swap
    (a1, o1, a2, o2) -> (a2, o1, a1, o2). Raises ValueError when fewer exist than asked for."""
    n = len(shapes)
    if n == 2:
        candidates = [[1, 0]]
    else:
        candidates = (rng.permutation(n) for _ in range(2000))
    original = binding_key(zip(colors, shapes))
    found, seen = [], set()
    for order in candidates:
        moved = [colors[i] for i in order]
        pairs = list(zip(moved, shapes))
        key = binding_key(pairs)
        if any(a == b for a, b in zip(moved, colors)) or key == original or key in seen:
            continue
        seen.add(key)
        found.append(pairs)
        if len(found) == count:
            return found
    raise ValueError(
        f"found only {len(found)} hard negative(s) for {caption(zip(colors, shapes))!r}, "
        f"but negatives_per_scene asks for {count}"
    )


def sample_camera(rng) -> dict:
    location = np.asarray(CAMERA_LOCATION) + rng.uniform(-CAMERA_JITTER, CAMERA_JITTER, 3)
    return {
        "location": location.tolist(),
        "target": [0.0, 0.0, 0.0],
        "focal_length_mm": FOCAL_LENGTH_MM,
        "sensor_width_mm": SENSOR_WIDTH_MM,
    }


def in_frame(centre, reach, camera, width, height) -> bool:
    """Whether a sphere of radius `reach` around `centre` projects inside the image margins."""
    u, v, depth = project(centre, **camera, width=width, height=height)[0]
    if depth <= reach:
        return False
    reach_px = camera["focal_length_mm"] / camera["sensor_width_mm"] * max(width, height) * reach / depth
    margin = FRAME_MARGIN * max(width, height)
    return (
        margin + reach_px <= u <= width - margin - reach_px
        and margin + reach_px <= v <= height - margin - reach_px
    )


def unobstructed(centre, reach, placed, camera) -> bool:
    """Whether the sight lines to this object's centre and to every placed object's centre stay
    clear of the other objects' bounding spheres."""
    eye = camera["location"]
    for other in placed:
        if segment_point_distance(eye, centre, other["centre"]) <= other["reach"]:
            return False
        if segment_point_distance(eye, other["centre"], centre) <= reach:
            return False
    return True


def place_objects(rng, shapes, camera, width, height) -> list[dict] | None:
    """Sizes, materials, positions and rotations for the shapes, or None if they do not fit."""
    placed = []
    for shape in shapes:
        size = str(rng.choice(list(SIZES)))
        radius = SIZES[size]
        reach = bounding_radius(shape, radius)
        for _ in range(MAX_PLACEMENT_TRIES):
            x, y = rng.uniform(-GROUND_HALF_EXTENT, GROUND_HALF_EXTENT, 2)
            centre = np.array([x, y, centre_height(shape, radius)])
            if all(
                np.hypot(x - o["centre"][0], y - o["centre"][1]) >= radius + o["radius"] + MIN_GAP
                for o in placed
            ) and in_frame(centre, reach, camera, width, height) and unobstructed(
                centre, reach, placed, camera
            ):
                break
        else:
            return None
        placed.append(
            {
                "shape": shape,
                "material": str(rng.choice(MATERIALS)),
                "size": size,
                "radius": radius,
                "centre": centre,
                "reach": reach,
                "rotation_deg": float(rng.uniform(0, 360)),
            }
        )
    return placed


def sample_scene(rng, n_objects: int, negatives_per_scene: int, width: int, height: int) -> dict:
    """One scene: objects in caption order, camera, caption, hard negatives and render seed."""
    for _ in range(MAX_SCENE_TRIES):
        shapes, colors = sample_attributes(rng, n_objects)
        camera = sample_camera(rng)
        placed = place_objects(rng, shapes, camera, width, height)
        if placed is not None:
            break
    else:
        raise ValueError(
            f"could not place {n_objects} objects visibly in a {width}x{height} image "
            f"after {MAX_SCENE_TRIES} tries; lower objects_per_scene"
        )
    pairs = list(zip(colors, shapes))
    objects = [
        {
            "shape": p["shape"],
            "color": color,
            "material": p["material"],
            "size": p["size"],
            "radius": p["radius"],
            "position": p["centre"].tolist(),
            "rotation_deg": p["rotation_deg"],
        }
        for p, color in zip(placed, colors)
    ]
    return {
        "n_objects": n_objects,
        "objects": objects,
        "caption": caption(pairs),
        "negative_captions": [caption(n) for n in hard_negatives(rng, shapes, colors, negatives_per_scene)],
        "render_seed": int(rng.integers(0, 2**31 - 1)),
        "camera": camera,
        "group": split_group_key(pairs),
    }


def assign_splits(rng, groups: list, fractions: dict[str, float]) -> list[str]:
    """Split name per item such that items of one group share a split and the splits' sizes follow
    `fractions` as closely as whole groups allow (each group goes to the split furthest below target)."""
    sizes = Counter(groups)
    order = sorted(sizes)
    rng.shuffle(order)
    total = len(groups)
    filled = dict.fromkeys(fractions, 0)
    split_of = {}
    for group in order:
        name = max(fractions, key=lambda s: fractions[s] * total - filled[s])
        split_of[group] = name
        filled[name] += sizes[group]
    return [split_of[g] for g in groups]


def generate_scenes(dataset: str, spec: dict, width: int, height: int, seed: int) -> pa.Table:
    """The scene table of one CLEVR-style dataset: `spec['scenes_per_count']` scenes for each object
    count in `spec['objects_per_scene']`, with splits (per object count) and render shards."""
    rng = dataset_rng(seed, dataset)
    scenes = [
        sample_scene(rng, n, spec["negatives_per_scene"], width, height)
        for n in spec["objects_per_scene"]
        for _ in range(spec["scenes_per_count"])
    ]
    groups = [s.pop("group") for s in scenes]
    splits = [""] * len(scenes)
    for n in spec["objects_per_scene"]:  # each object count is split on its own, like a dataset of its own
        members = [i for i, s in enumerate(scenes) if s["n_objects"] == n]
        for i, split in zip(members, assign_splits(rng, [groups[i] for i in members], spec["splits"])):
            splits[i] = split
    shards = spec["shards"]
    rows = []
    for index, (scene, split) in enumerate(zip(scenes, splits)):
        scene_id = f"{dataset}-{index:06d}"
        shard = index * shards // len(scenes)
        rows.append(
            {
                "scene_id": scene_id,
                "dataset": dataset,
                **scene,
                "split": split,
                "shard": shard,
                "image_width": width,
                "image_height": height,
                "image": image_path(shard, scene_id),
            }
        )
    return pa.Table.from_pylist(rows, schema=SCENE_SCHEMA)


def main(snakemake) -> None:
    from workflow_scripts.rule_logging import log_to
    from workflow_scripts.tables import write_table

    logger = log_to(snakemake.log[0])
    dataset = snakemake.wildcards.dataset
    spec = snakemake.params.spec
    width, height = snakemake.params.resolution
    table = generate_scenes(dataset, spec, width, height, snakemake.params.seed)
    write_table(
        table,
        snakemake.output.scenes,
        {"dataset": dataset, "spec": spec, "resolution": [width, height], "seed": snakemake.params.seed},
    )
    logger.info("%s: %d scenes, splits %s", dataset, table.num_rows,
                dict(Counter(table.column("split").to_pylist())))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
