"""Seeded CLEVR-style scene specifications: objects, camera, captions, hard negatives and splits.

Two kinds of dataset share one table schema (SCENE_SCHEMA) and one placement code path:
- CLEVR-style (paper A, `generate_scenes`): CLEVR's three shapes, colour-shape captions, hard negatives.
- SIMCO (paper B, `generate_simco_scenes`, `generate_simco_references`): 2-5 distinct shapes of the 18
  SIMCO shapes, captions naming the shapes only, one distractor caption, and single-object references.

An object's "position" is a point the camera sees the object at: for CLEVR's shapes (also inside SIMCO
scenes, which build them with CLEVR's primitives) it is CLEVR's centre; for the other SIMCO shapes it is
the centre of the object's bounding box (at half its height), except where that point lies in a hole of
the shape (`SIMCO_ANCHORS`: torus, moon). `object_origin` gives back where the object stands.

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

# SIMCO shapes built by workflow_scripts/simco_shapes.py (all but CLEVR's three, which keep CLEVR's
# primitives), in units of the object's size (its "radius"; largest extent 2 * size), measured from the
# meshes (tests/test_simco_scenes.py re-measures them): (footprint, reach, height) where footprint is the
# largest horizontal distance of the mesh from its vertical axis through the bounding box centre, reach the
# largest distance from the bounding box centre, height the vertical extent. Both radii are rounded up and
# do not change with the rotation about that axis.
SIMCO_GEOMETRY = {
    "mug": (1.0000, 1.2761, 1.5854),
    "pentagon": (1.0219, 1.1536, 1.9021),
    "heart": (1.0199, 1.1566, 1.8076),
    "cone": (1.0001, 1.4143, 2.0000),
    "pyramid": (1.4143, 1.6008, 1.5000),
    "diamond": (1.0824, 1.1399, 1.5153),
    "moon": (0.8511, 1.1386, 2.0000),
    "cross": (0.6161, 1.0434, 2.0000),
    "snowflake": (0.9230, 1.0223, 2.0000),
    "leaf": (0.7638, 1.2123, 2.0000),
    "arrow": (1.0199, 1.0339, 1.0000),
    "star": (1.0219, 1.1536, 1.9021),
    "torus": (1.0001, 1.0001, 0.5600),
    "pot": (1.0001, 1.0220, 1.5048),
    "cap": (1.0001, 1.0516, 0.6588),
}
# Extruded outlines that stand upright facing -Y at rotation 0 (simco_shapes.py): turned towards the camera,
# give or take FACING_JITTER_DEG, so the camera sees the outline rather than its edge.
FLAT_SIMCO_SHAPES = ("pentagon", "heart", "moon", "cross", "snowflake", "leaf", "arrow", "star")
FACING_JITTER_DEG = 20.0
# Stored positions of the SIMCO shapes whose bounding box centre lies in a hole, in units of size in the
# object's frame at rotation 0 (origin: the bottom centre of its bounding box, -Y towards the camera once
# turned): the moon's lower horn where it crosses the vertical axis (the centre is in the crescent's cut-out),
# and the torus's tube on the side nearest the camera (the centre is in the hole; the torus is turned by
# exactly the facing angle, which changes nothing in its look, so that -Y is that side).
SIMCO_ANCHORS = {"moon": (0.0, 0.0, 0.235), "torus": (0.0, -0.72, 0.28)}
FACE_CAMERA_EXACTLY = ("torus",)  # every shape whose anchor is off its axis must be listed here
assert all(shape in FACE_CAMERA_EXACTLY for shape, (ax, ay, _) in SIMCO_ANCHORS.items() if (ax, ay) != (0, 0))
SIMCO_LAYOUTS = ("mixed", "one_large")
SIMCO_OBJECT_COUNTS = (2, 3, 4, 5)
SIMCO_MATERIAL = "rubber"
# SIMCO and ComCO scenes: CLEVR's camera zoomed in on a smaller floor, so that CLIP's 224 px input
# sees each object over more pixels than in CLEVR's wide view.
SIMCO_FOCAL_LENGTH_MM = 60.0
SIMCO_GROUND_HALF_EXTENT = 2.0

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


def bounding_radius(shape: str, radius: float, geometry=SIMCO_GEOMETRY) -> float:
    """Radius of a sphere around the object's centre (for SIMCO's own shapes and meshes: its bounding box
    centre) that contains it. `geometry`: (footprint, reach, height) per shape, in units of its size."""
    if shape in geometry:
        return geometry[shape][1] * radius
    return {"sphere": 1.0, "cube": np.sqrt(3 / 2), "cylinder": np.sqrt(2)}[shape] * radius


def centre_height(shape: str, radius: float, geometry=SIMCO_GEOMETRY) -> float:
    """Height of the centre of an object resting on the ground (cubes have half-side radius/sqrt 2;
    SIMCO's own shapes and meshes: half the height of their bounding box)."""
    if shape in geometry:
        return geometry[shape][2] / 2 * radius
    return radius / np.sqrt(2) if shape == "cube" else radius


def footprint_radius(shape: str, radius: float, geometry=SIMCO_GEOMETRY) -> float:
    """Radius of a vertical cylinder around the object's axis that contains it: CLEVR's shapes `radius`
    (a cube's corners reach it too), SIMCO's own shapes and meshes their measured footprint."""
    if shape in geometry:
        return geometry[shape][0] * radius
    return radius


def facing_angle(x: float, y: float, camera_location) -> float:
    """rotation_deg (about Z, in [0, 360)) that turns an object's -Y axis towards the camera in the ground plane."""
    dx, dy = camera_location[0] - x, camera_location[1] - y
    return float(np.degrees(np.arctan2(dx, -dy)) % 360.0)


def _rotated_anchor(shape: str, radius: float, rotation_deg: float) -> np.ndarray:
    ax, ay, az = SIMCO_ANCHORS[shape]
    a = np.radians(rotation_deg)
    return radius * np.array([ax * np.cos(a) - ay * np.sin(a), ax * np.sin(a) + ay * np.cos(a), az])


def object_anchor(shape: str, radius: float, x: float, y: float, rotation_deg: float,
                  geometry=SIMCO_GEOMETRY) -> np.ndarray:
    """The stored "position" of an object standing at (x, y): a point inside it, or (mug) inside the
    walls that surround it, that the camera sees on the object (see the module's docstring)."""
    if shape not in SIMCO_ANCHORS:
        return np.array([x, y, centre_height(shape, radius, geometry)])
    return np.array([x, y, 0.0]) + _rotated_anchor(shape, radius, rotation_deg)


def object_origin(obj: dict) -> tuple[float, float]:
    """Where an object row's shape stands: the (x, y) of its vertical axis (inverse of `object_anchor`)."""
    x, y, _ = obj["position"]
    if obj["shape"] not in SIMCO_ANCHORS:
        return x, y
    dx, dy, _ = _rotated_anchor(obj["shape"], obj["radius"], obj["rotation_deg"])
    return x - dx, y - dy


def object_rotation(rng, shape: str, x: float, y: float, camera: dict) -> float:
    """rotation_deg of an object at (x, y): flat SIMCO outlines face the camera within +-FACING_JITTER_DEG
    (one uniform draw), FACE_CAMERA_EXACTLY shapes face it exactly (no draw), others uniform in [0, 360)."""
    if shape in FLAT_SIMCO_SHAPES:
        jitter = float(rng.uniform(-FACING_JITTER_DEG, FACING_JITTER_DEG))
        return (facing_angle(x, y, camera["location"]) + jitter) % 360.0
    if shape in FACE_CAMERA_EXACTLY:
        return facing_angle(x, y, camera["location"])
    return float(rng.uniform(0, 360))


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


def camera_at(location, focal_length_mm: float = FOCAL_LENGTH_MM) -> dict:
    """The scene camera at `location`, aimed at the origin."""
    return {
        "location": [float(c) for c in location],
        "target": [0.0, 0.0, 0.0],
        "focal_length_mm": focal_length_mm,
        "sensor_width_mm": SENSOR_WIDTH_MM,
    }


def sample_camera(rng, focal_length_mm: float = FOCAL_LENGTH_MM) -> dict:
    """CLEVR's camera, its location jittered."""
    return camera_at(np.asarray(CAMERA_LOCATION) + rng.uniform(-CAMERA_JITTER, CAMERA_JITTER, 3), focal_length_mm)


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


def unobstructed(centre, reach, placed, camera, anchor=None) -> bool:
    """Whether the sight lines to this object's anchor (default: its centre) and to every placed object's
    anchor stay clear of the other objects' bounding spheres (around their centres)."""
    eye = camera["location"]
    anchor = centre if anchor is None else anchor
    for other in placed:
        if segment_point_distance(eye, anchor, other["centre"]) <= other["reach"]:
            return False
        if segment_point_distance(eye, other["anchor"], centre) <= reach:
            return False
    return True


def place_objects(rng, shapes, camera, width, height, sizes=None, material=None,
                  half_extent=GROUND_HALF_EXTENT, geometry=SIMCO_GEOMETRY) -> list[dict] | None:
    """Sizes, materials, positions and rotations for the shapes, or None if they do not fit.

    `sizes` (a size name per shape) and `material` fix what is otherwise drawn at random per object
    (CLEVR's way: size before the position, material then rotation after it). Objects keep their
    footprints MIN_GAP apart, their bounding spheres inside the frame, and their anchors (`object_anchor`)
    in sight, on the ground within [-half_extent, half_extent]^2. `geometry` as for `bounding_radius`.
    Each placed dict has "centre" (bounding sphere centre) and "anchor" (the stored position).
    """
    placed = []
    for index, shape in enumerate(shapes):
        size = str(rng.choice(list(SIZES))) if sizes is None else sizes[index]
        radius = SIZES[size]
        reach = bounding_radius(shape, radius, geometry)
        footprint = footprint_radius(shape, radius, geometry)
        for _ in range(MAX_PLACEMENT_TRIES):
            x, y = rng.uniform(-half_extent, half_extent, 2)
            centre = np.array([x, y, centre_height(shape, radius, geometry)])
            # Shapes with an off-axis anchor face the camera (FACE_CAMERA_EXACTLY); for the others it is the centre.
            anchor = object_anchor(shape, radius, x, y, facing_angle(x, y, camera["location"]), geometry)
            if all(
                np.hypot(x - o["centre"][0], y - o["centre"][1]) >= footprint + o["footprint"] + MIN_GAP
                for o in placed
            ) and in_frame(centre, reach, camera, width, height) and unobstructed(
                centre, reach, placed, camera, anchor
            ):
                break
        else:
            return None
        chosen_material = str(rng.choice(MATERIALS)) if material is None else material
        rotation_deg = object_rotation(rng, shape, x, y, camera)
        placed.append(
            {
                "shape": shape,
                "material": chosen_material,
                "size": size,
                "radius": radius,
                "centre": centre,
                "anchor": anchor,
                "reach": reach,
                "footprint": footprint,
                "rotation_deg": rotation_deg,
            }
        )
    return placed


def object_rows(placed: list[dict], colors: list[str]) -> list[dict]:
    """The table's object structs for placed objects and their colours."""
    return [
        {
            "shape": p["shape"],
            "color": color,
            "material": p["material"],
            "size": p["size"],
            "radius": p["radius"],
            "position": p["anchor"].tolist(),
            "rotation_deg": p["rotation_deg"],
        }
        for p, color in zip(placed, colors)
    ]


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
    return {
        "n_objects": n_objects,
        "objects": object_rows(placed, colors),
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


def splits_per_count(rng, scenes: list[dict], counts, fractions: dict[str, float]) -> list[str]:
    """Split name per scene; pops each scene's "group". Each object count is split on its own, like a
    dataset of its own."""
    groups = [s.pop("group") for s in scenes]
    splits = [""] * len(scenes)
    for n in counts:
        members = [i for i, s in enumerate(scenes) if s["n_objects"] == n]
        for i, split in zip(members, assign_splits(rng, [groups[i] for i in members], fractions)):
            splits[i] = split
    return splits


def scene_table(dataset: str, scenes: list[dict], splits: list[str], shards: int, width: int,
                height: int) -> pa.Table:
    """SCENE_SCHEMA rows for scenes in order: ids, contiguous shards, image paths."""
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


def generate_scenes(dataset: str, spec: dict, width: int, height: int, seed: int) -> pa.Table:
    """The scene table of one CLEVR-style dataset: `spec['scenes_per_count']` scenes for each object
    count in `spec['objects_per_scene']`, with splits (per object count) and render shards."""
    rng = dataset_rng(seed, dataset)
    scenes = [
        sample_scene(rng, n, spec["negatives_per_scene"], width, height)
        for n in spec["objects_per_scene"]
        for _ in range(spec["scenes_per_count"])
    ]
    splits = splits_per_count(rng, scenes, spec["objects_per_scene"], spec["splits"])
    return scene_table(dataset, scenes, splits, spec["shards"], width, height)


# ---------------------------------------------------------------- SIMCO (paper B)

def simco_caption(shapes) -> str:
    """Paper B's caption: the shape names in order joined with " and " (TOR's "short" template)."""
    return " and ".join(shapes)


def sample_simco_scene(rng, n_objects: int, large_position: int | None, width: int, height: int,
                       vocabulary=SIMCO_SHAPES, geometry=SIMCO_GEOMETRY) -> dict:
    """One SIMCO scene: n distinct shapes of `vocabulary` in caption order, distinct colours, rubber, one
    distractor caption, under the SIMCO camera (closer than CLEVR's: SIMCO_FOCAL_LENGTH_MM).

    `large_position` None: sizes drawn at random per object (CLEVR's way); otherwise the object at that
    position is large and the others small. Draws, per try: shapes, colours, camera, placement (per object:
    its size when random, positions, its rotation as `object_rotation` draws it); then the distractor's
    position and shape, and the render seed. `geometry` as for `bounding_radius` (ComCO's meshes).
    """
    if n_objects not in SIMCO_OBJECT_COUNTS:
        raise ValueError(
            f"SIMCO scenes take {SIMCO_OBJECT_COUNTS[0]}..{SIMCO_OBJECT_COUNTS[-1]} objects, got {n_objects}")
    if n_objects >= len(vocabulary):
        raise ValueError(f"{n_objects} distinct objects and a distractor need more than {len(vocabulary)} "
                         f"object kinds ({', '.join(vocabulary)})")
    sizes = None if large_position is None else [
        "large" if i == large_position else "small" for i in range(n_objects)]
    for _ in range(MAX_SCENE_TRIES):
        shapes = [str(s) for s in rng.choice(vocabulary, n_objects, replace=False)]
        colors = [str(c) for c in rng.choice(list(COLORS), n_objects, replace=False)]
        camera = sample_camera(rng, SIMCO_FOCAL_LENGTH_MM)
        placed = place_objects(rng, shapes, camera, width, height, sizes=sizes, material=SIMCO_MATERIAL,
                               half_extent=SIMCO_GROUND_HALF_EXTENT, geometry=geometry)
        if placed is not None:
            break
    else:
        raise ValueError(
            f"could not place {n_objects} SIMCO objects visibly in a {width}x{height} image "
            f"after {MAX_SCENE_TRIES} tries; lower objects_per_scene"
        )
    replaced = int(rng.integers(n_objects))
    absent = [s for s in vocabulary if s not in shapes]
    distractor = list(shapes)
    distractor[replaced] = str(rng.choice(absent))
    return {
        "n_objects": n_objects,
        "objects": object_rows(placed, colors),
        "caption": simco_caption(shapes),
        "negative_captions": [simco_caption(distractor)],
        "render_seed": int(rng.integers(0, 2**31 - 1)),
        "camera": camera,
        "group": tuple(sorted(shapes)),
    }


def generate_simco_scenes(dataset: str, spec: dict, width: int, height: int, seed: int,
                          vocabulary=SIMCO_SHAPES, geometry=SIMCO_GEOMETRY) -> pa.Table:
    """The scene table of one SIMCO dataset (paper B), in SCENE_SCHEMA; ComCO's when `vocabulary` and
    `geometry` describe its meshes (`mesh_geometry`).

    spec: objects_per_scene (counts in 2..5), scenes_per_count, shards, layout and optionally splits
    (default all "test"; grouped by the set of shapes, per object count, as CLEVR's).
    layout "mixed": every object's size drawn at random (large or small);
    layout "one_large": exactly one object large (SIZES["large"]), the others small, the large one's position
    in the object list (and caption) cycling 0, 1, ..., n-1, 0, ... over the scenes of each count.
    Objects: distinct shapes of `vocabulary`, distinct colours drawn from CLEVR's COLORS, rubber. Caption: the
    shape names in object order joined with " and "; negative_captions: one distractor in which one object,
    at a random position, is replaced by a random shape absent from the scene.
    """
    layout = spec["layout"]
    if layout not in SIMCO_LAYOUTS:
        raise ValueError(f"unknown SIMCO layout {layout!r}; expected one of {SIMCO_LAYOUTS}")
    rng = dataset_rng(seed, dataset)
    scenes = [
        sample_simco_scene(rng, n, j % n if layout == "one_large" else None, width, height, vocabulary, geometry)
        for n in spec["objects_per_scene"]
        for j in range(spec["scenes_per_count"])
    ]
    splits = splits_per_count(rng, scenes, spec["objects_per_scene"], spec.get("splits", {"test": 1.0}))
    return scene_table(dataset, scenes, splits, spec["shards"], width, height)


def generate_simco_references(dataset: str, width: int, height: int, seed: int, vocabulary=SIMCO_SHAPES,
                              geometry=SIMCO_GEOMETRY) -> pa.Table:
    """One single-object scene per shape of `vocabulary` (in its order), for IOR's reference embeddings.

    Each shape stands alone at the origin, large, rubber, turned by the facing angle (flat outlines face the
    camera exactly; the others show the side a flat outline would), seen by the SIMCO camera without jitter;
    its colour is drawn from CLEVR's COLORS. Caption: the shape's name; no negative captions; split "test";
    one shard.
    """
    rng = dataset_rng(seed, dataset)
    camera = camera_at(CAMERA_LOCATION, SIMCO_FOCAL_LENGTH_MM)
    radius = SIZES["large"]
    rotation = facing_angle(0.0, 0.0, camera["location"])
    scenes = []
    for shape in vocabulary:
        centre = np.array([0.0, 0.0, centre_height(shape, radius, geometry)])
        if not in_frame(centre, bounding_radius(shape, radius, geometry), camera, width, height):
            raise ValueError(f"a large {shape} at the origin does not fit a {width}x{height} image")
        placed = {"shape": shape, "material": SIMCO_MATERIAL, "size": "large", "radius": radius,
                  "anchor": object_anchor(shape, radius, 0.0, 0.0, rotation, geometry), "rotation_deg": rotation}
        scenes.append({
            "n_objects": 1,
            "objects": object_rows([placed], [str(rng.choice(list(COLORS)))]),
            "caption": simco_caption([shape]),
            "negative_captions": [],
            "render_seed": int(rng.integers(0, 2**31 - 1)),
            "camera": camera,
        })
    return scene_table(dataset, scenes, ["test"] * len(scenes), 1, width, height)


def read_mesh_geometry(path) -> tuple[list[str], dict]:
    """(categories, {category: (footprint, reach, height)}) from mesh_geometry's JSON, in its order."""
    import json

    measured = json.loads(Path(path).read_text())
    return list(measured), {c: (m["footprint"], m["reach"], m["height"]) for c, m in measured.items()}


def scenes_for(dataset: str, spec: dict, width: int, height: int, seed: int, mesh_geometry=None) -> pa.Table:
    """The scene table scene_specs writes for `spec` (a dataset's config entry, or the references entry the
    Snakefile makes: kind "references", of_kind); `mesh_geometry`: ComCO's measured meshes (JSON path)."""
    vocabulary, geometry = SIMCO_SHAPES, SIMCO_GEOMETRY
    if mesh_geometry is not None:
        vocabulary, geometry = read_mesh_geometry(mesh_geometry)
    if spec["kind"] == "clevr":
        return generate_scenes(dataset, spec, width, height, seed)
    if spec["kind"] == "references":
        return generate_simco_references(dataset, width, height, seed, vocabulary, geometry)
    return generate_simco_scenes(dataset, spec, width, height, seed, vocabulary, geometry)


def main(snakemake) -> None:
    from workflow_scripts.rule_logging import log_to
    from workflow_scripts.tables import write_table

    logger = log_to(snakemake.log[0])
    dataset = snakemake.wildcards.dataset
    spec = snakemake.params.spec
    width, height = snakemake.params.resolution
    meshes = snakemake.input.meshes[0] if snakemake.input.meshes else None
    table = scenes_for(dataset, spec, width, height, snakemake.params.seed, meshes)
    write_table(
        table,
        snakemake.output.scenes,
        {"dataset": dataset, "spec": spec, "resolution": [width, height], "seed": snakemake.params.seed},
    )
    logger.info("%s: %d scenes, splits %s", dataset, table.num_rows,
                dict(Counter(table.column("split").to_pylist())))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
