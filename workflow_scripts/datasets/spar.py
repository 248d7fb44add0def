"""Dataset kind `spar`: the workflow's own PUG:SPAR- and PUG:SPARE-style scenes, rendered with Cycles, for paper
A's textured settings where the Unreal Engine originals (kind `pug`) are not at hand.

Two objects of 12 categories (SIMCO's procedural shapes), each covered whole by one of 8 procedural textures
(shader set-ups in render/textures.py), in one of four worlds (each its own ground, sky, light and props).
- `style: spar`: the textures come in two pairs, blue/red and grass/stone, and the blue or grass object is always
  the one on the left of the image: PUG:SPAR's positional shortcut. It is named first, as PUG:SPAR's first
  character.
- `style: spare`: two different categories and two different textures of the 8, the objects named in a random
  order and placed independently of their textures: PUG:SPARE's de-correlated design.
Captions "{texture} {object} and {texture} {object}", the hard negative swaps the textures; splits are grouped
by the scene's textures and categories (a caption and its swap share a split), as for CLEVR.
The vocabulary declares the authors' Recall@K candidates of the style's PUG setting (Vocabulary.pair_labels).
"""
from dataclasses import replace

from workflow_scripts.common.camera import project
from workflow_scripts.datasets.clevr import split_group_key
from workflow_scripts.datasets.items import Vocabulary, rendered_items
from workflow_scripts.datasets.kind import DatasetKind, ItemContext, scene_counts, schema_block, shard_errors
from workflow_scripts.datasets.placement import (
    MAX_SCENE_TRIES,
    SIMCO_FOCAL_LENGTH_MM,
    SIMCO_GROUND_HALF_EXTENT,
    object_rows,
    place_objects,
    sample_camera,
)
from workflow_scripts.datasets.splits import dataset_rng, splits_per_count

CATEGORIES = ("cube", "sphere", "cylinder", "cone", "pyramid", "torus", "mug", "pot", "heart", "star", "moon",
              "diamond")
TEXTURES = ("blue", "red", "grass", "stone", "wood", "sand", "brick", "marble")
SPAR_PAIRS = (("blue", "red"), ("grass", "stone"))  # the first of a pair is always on the left
WORLDS = ("desert", "meadow", "night", "snow")
STYLES = ("spar", "spare")
MATERIAL = "textured"  # the renderer covers the object with its attribute's procedural texture
MIN_SEPARATION = 0.15  # of the image width between the two objects' centres, so that left and right are clear
VOCABULARY = Vocabulary(objects=CATEGORIES, attributes=TEXTURES, phrase="{attribute} {object}")
# Per style, with the authors' Recall@K candidates of its setting: PUG:SPAR's loader pairs every ordered pair of
# objects with each texture pair, PUG:SPARE's takes every ordered pair label (both word orders).
VOCABULARIES = {"spar": replace(VOCABULARY, pair_labels="attribute_pairs", attribute_pairs=SPAR_PAIRS),
                "spare": replace(VOCABULARY, pair_labels="ordered")}


def image_x(placed: dict, camera: dict, width: int, height: int) -> float:
    """Where the object's bounding sphere centre falls across the image, in pixels from the left."""
    return float(project(placed["centre"], **camera, width=width, height=height)[0, 0])


def sample_scene(rng, style: str, width: int, height: int) -> dict:
    """One scene: two different categories, both large, placed under a SIMCO-style camera at least
    MIN_SEPARATION of the width apart across the image; its world; the textures by `style`; objects in caption
    order."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
    for _ in range(MAX_SCENE_TRIES):
        categories = [str(c) for c in rng.choice(CATEGORIES, 2, replace=False)]
        camera = sample_camera(rng, SIMCO_FOCAL_LENGTH_MM)
        placed = place_objects(rng, categories, camera, width, height, sizes=["large", "large"], material=MATERIAL,
                               half_extent=SIMCO_GROUND_HALF_EXTENT)
        if placed is None:
            continue
        across = [image_x(p, camera, width, height) for p in placed]
        if abs(across[0] - across[1]) >= MIN_SEPARATION * width:
            break
    else:
        raise ValueError(f"could not place two objects apart in a {width}x{height} image after {MAX_SCENE_TRIES} "
                         "tries")
    if style == "spar":
        left = 0 if across[0] < across[1] else 1
        placed = [placed[left], placed[1 - left]]  # the left object first: it takes the pair's first texture
        textures = list(SPAR_PAIRS[int(rng.integers(len(SPAR_PAIRS)))])
    else:
        textures = [str(t) for t in rng.choice(TEXTURES, 2, replace=False)]
    pairs = list(zip(textures, [p["shape"] for p in placed]))
    swapped = list(zip(textures[::-1], [p["shape"] for p in placed]))
    return {
        "n_objects": 2,
        "objects": object_rows(placed, textures),
        "caption": VOCABULARY.caption([o for _, o in pairs], [t for t, _ in pairs]),
        "negative_captions": [VOCABULARY.caption([o for _, o in swapped], [t for t, _ in swapped])],
        "render_seed": int(rng.integers(0, 2**31 - 1)),
        "camera": camera,
        "world": str(rng.choice(WORLDS)),
        "group": split_group_key(pairs),
    }


def items(dataset: str, spec: dict, context: ItemContext):
    width, height = context.resolution
    rng = dataset_rng(context.seed, dataset)
    scenes = [sample_scene(rng, spec["style"], width, height) for _ in range(spec["scenes_per_count"])]
    splits = splits_per_count(rng, scenes, [2], spec["splits"])
    return rendered_items(dataset, scenes, splits, spec["shards"], width, height), VOCABULARIES[spec["style"]]


def check(dataset: str, spec: dict) -> list[str]:
    return shard_errors(dataset, {**spec, "objects_per_scene": [2]})


def planned_items(dataset: str, spec: dict) -> dict[int, int]:
    return scene_counts(dataset, {**spec, "objects_per_scene": [2]})


def setting(dataset: str, spec: dict) -> str:
    """The PUG setting whose design the style copies; the tables say the scenes are our renders, not the originals."""
    return f"PUG:{spec['style'].upper()}"


KIND = DatasetKind(name="spar", config=schema_block("spar"), items=items, rendered=True,
                   analyses=("probes", "labclip", "binding"), check=check, planned_items=planned_items,
                   setting=setting)
