"""Dataset kind `simco`: paper B's scenes of 2..5 distinct SIMCO shapes (18 simple shapes, built procedurally
by workflow_scripts/render/shapes.py), captions naming the shapes only, one distractor caption, and one
single-object reference render per shape ("<name>-references", for IOR).

The ComCO kind (comco.py) draws its scenes with the same functions, from its measured meshes.
"""
import numpy as np

from workflow_scripts.datasets.clevr import COLORS
from workflow_scripts.datasets.items import Vocabulary, rendered_items
from workflow_scripts.datasets.kind import DatasetKind, ItemContext, scene_counts, schema_block, shard_errors
from workflow_scripts.datasets.placement import (
    CAMERA_LOCATION,
    MAX_SCENE_TRIES,
    SIMCO_FOCAL_LENGTH_MM,
    SIMCO_GEOMETRY,
    SIMCO_GROUND_HALF_EXTENT,
    SIZES,
    bounding_radius,
    camera_at,
    centre_height,
    facing_angle,
    in_frame,
    object_anchor,
    object_rows,
    place_objects,
    sample_camera,
)
from workflow_scripts.datasets.splits import dataset_rng, splits_per_count

# Paper B's SIMCO vocabulary: 18 simple shapes.
SHAPES = ("cube", "sphere", "cylinder", "mug", "pentagon", "heart", "cone", "pyramid", "diamond",
          "moon", "cross", "snowflake", "leaf", "arrow", "star", "torus", "pot", "cap")
VOCABULARY = Vocabulary(objects=SHAPES)  # captions: the names joined with " and "
LAYOUTS = ("mixed", "one_large")
OBJECT_COUNTS = (2, 3, 4, 5)
MATERIAL = "rubber"


def sample_simco_scene(rng, n_objects: int, large_position: int | None, width: int, height: int,
                       vocabulary=SHAPES, geometry=SIMCO_GEOMETRY) -> dict:
    """One SIMCO scene: n distinct shapes of `vocabulary` in caption order, distinct colours, rubber, one
    distractor caption, under the SIMCO camera (closer than CLEVR's: SIMCO_FOCAL_LENGTH_MM).

    `large_position` None: sizes drawn at random per object (CLEVR's way); otherwise the object at that
    position is large and the others small. Draws, per try: shapes, colours, camera, placement (per object:
    its size when random, positions, its rotation as `object_rotation` draws it); then the distractor's
    position and shape, and the render seed. `geometry` as for `bounding_radius` (ComCO's meshes).
    """
    if n_objects not in OBJECT_COUNTS:
        raise ValueError(
            f"SIMCO scenes take {OBJECT_COUNTS[0]}..{OBJECT_COUNTS[-1]} objects, got {n_objects}")
    if n_objects >= len(vocabulary):
        raise ValueError(f"{n_objects} distinct objects and a distractor need more than {len(vocabulary)} "
                         f"object kinds ({', '.join(vocabulary)})")
    sizes = None if large_position is None else [
        "large" if i == large_position else "small" for i in range(n_objects)]
    for _ in range(MAX_SCENE_TRIES):
        shapes = [str(s) for s in rng.choice(vocabulary, n_objects, replace=False)]
        colors = [str(c) for c in rng.choice(list(COLORS), n_objects, replace=False)]
        camera = sample_camera(rng, SIMCO_FOCAL_LENGTH_MM)
        placed = place_objects(rng, shapes, camera, width, height, sizes=sizes, material=MATERIAL,
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
        "caption": VOCABULARY.caption(shapes),
        "negative_captions": [VOCABULARY.caption(distractor)],
        "render_seed": int(rng.integers(0, 2**31 - 1)),
        "camera": camera,
        "group": tuple(sorted(shapes)),
    }


def generate_simco_scenes(dataset: str, spec: dict, width: int, height: int, seed: int,
                          vocabulary=SHAPES, geometry=SIMCO_GEOMETRY):
    """The item table of one SIMCO dataset (paper B); ComCO's when `vocabulary` and
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
    if layout not in LAYOUTS:
        raise ValueError(f"unknown SIMCO layout {layout!r}; expected one of {LAYOUTS}")
    rng = dataset_rng(seed, dataset)
    scenes = [
        sample_simco_scene(rng, n, j % n if layout == "one_large" else None, width, height, vocabulary, geometry)
        for n in spec["objects_per_scene"]
        for j in range(spec["scenes_per_count"])
    ]
    splits = splits_per_count(rng, scenes, spec["objects_per_scene"], spec["splits"])
    return rendered_items(dataset, scenes, splits, spec["shards"], width, height)


def generate_simco_references(dataset: str, width: int, height: int, seed: int, vocabulary=SHAPES,
                              geometry=SIMCO_GEOMETRY):
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
        placed = {"shape": shape, "material": MATERIAL, "size": "large", "radius": radius,
                  "anchor": object_anchor(shape, radius, 0.0, 0.0, rotation, geometry), "rotation_deg": rotation}
        scenes.append({
            "n_objects": 1,
            "objects": object_rows([placed], [str(rng.choice(list(COLORS)))]),
            "caption": VOCABULARY.caption([shape]),
            "negative_captions": [],
            "render_seed": int(rng.integers(0, 2**31 - 1)),
            "camera": camera,
        })
    return rendered_items(dataset, scenes, ["test"] * len(scenes), 1, width, height)


def items(dataset: str, spec: dict, context: ItemContext):
    return generate_simco_scenes(dataset, spec, *context.resolution, context.seed), VOCABULARY


def references(dataset: str, spec: dict, context: ItemContext):
    return generate_simco_references(dataset, *context.resolution, context.seed), VOCABULARY


def check(dataset: str, spec: dict) -> list[str]:
    return shard_errors(dataset, spec)


KIND = DatasetKind(name="simco", config=schema_block("simco"), items=items, rendered=True,
                   analyses=("tor", "ior", "matching"), references=references, check=check,
                   planned_items=scene_counts)
