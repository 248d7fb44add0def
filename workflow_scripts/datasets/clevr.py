"""Dataset kind `clevr`: seeded CLEVR-style scenes for paper A, with colour-shape captions and hard negatives.

Vocabulary as CLEVR's: three shapes, eight colours (CLEVR's RGB values), rubber and metal, large and small.
Captions "{color} {shape} and {color} {shape} ..."; each hard negative re-binds the colours so that no object
keeps its own; splits are grouped by the multisets of colours and shapes, per object count.

Two samplers (`sampling`): "authors", the authors' generator: shape and colour drawn per object with
replacement, and a two-object scene with a repeated shape redrawn (as their alignment code rejects it), so about
one two-object scene in eight has two equal colours, and its negative (the swap) equals its caption; scenes of
three or more objects are redrawn until a hard negative exists (the authors' multi-object scenes have none).
"distinct": shapes and colours distinct where the vocabularies allow, so every scene has a true hard negative.
"""
from collections import Counter

from workflow_scripts.datasets.items import Vocabulary, binding_key, rendered_items
from workflow_scripts.datasets.kind import DatasetKind, ItemContext, scene_counts, schema_block, shard_errors
from workflow_scripts.datasets.placement import (
    CLEVR_PRIMITIVES,
    FOCAL_LENGTH_MM,
    MAX_SCENE_TRIES,
    object_rows,
    place_objects,
    sample_camera,
)
from workflow_scripts.datasets.splits import dataset_rng, splits_per_count

SHAPES = CLEVR_PRIMITIVES
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
# pair_labels: the authors' Recall@K candidates, every two colour-shape pairs with two shapes, one wording each
VOCABULARY = Vocabulary(objects=SHAPES, attributes=tuple(COLORS), phrase="{attribute} {object}",
                        pair_labels="unordered")


def caption(pairs) -> str:
    """'{color} {shape} and {color} {shape} ...' for (color, shape) pairs, in order."""
    colors, shapes = zip(*pairs)
    return VOCABULARY.caption(shapes, colors)


def split_group_key(pairs) -> tuple:
    """Colours and shapes as multisets: equal for a caption and every re-binding of its colours."""
    return tuple(sorted(c for c, _ in pairs)), tuple(sorted(s for _, s in pairs))


SAMPLINGS = ("authors", "distinct")


def sample_attributes(rng, n: int, sampling: str = "distinct") -> tuple[list[str], list[str]]:
    """Shapes and colours of n objects. "authors": drawn with replacement, a repeated shape redrawn in
    two-object scenes. "distinct": distinct where the vocabularies allow, and never so repetitive that no
    hard negative exists (no colour on more than half the objects, not all shapes equal)."""
    if sampling == "authors":
        while True:
            shapes = [str(s) for s in rng.choice(SHAPES, n)]
            colors = [str(c) for c in rng.choice(list(COLORS), n)]
            if n > 2 or len(set(shapes)) == 2:
                return shapes, colors
    if sampling != "distinct":
        raise ValueError(f"unknown sampling {sampling!r}; expected one of {SAMPLINGS}")
    while True:
        shapes = [str(s) for s in rng.choice(SHAPES, n, replace=n > len(SHAPES))]
        colors = [str(c) for c in rng.choice(list(COLORS), n, replace=n > len(COLORS))]
        if max(Counter(colors).values()) <= n // 2 and len(set(shapes)) > 1:
            return shapes, colors


def hard_negatives(rng, shapes, colors, count: int) -> list[list[tuple[str, str]]]:
    """`count` distinct re-bindings of the colours to the shapes in which no object keeps its colour
    and the set of pairs differs from the original. For two objects this is the swap
    (a1, o1, a2, o2) -> (a2, o1, a1, o2), which for two equal colours is the original itself (the authors'
    data has such scenes: it is returned, and binding analyses must leave such scenes out).
    Raises ValueError when fewer exist than asked for."""
    n = len(shapes)
    if n == 2:
        if colors[0] == colors[1]:
            return [list(zip(colors, shapes))]
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


def sample_scene(rng, n_objects: int, negatives_per_scene: int, width: int, height: int,
                 sampling: str = "distinct", focal_length_mm: float = FOCAL_LENGTH_MM) -> dict:
    """One scene: objects in caption order, camera, caption, hard negatives and render seed."""
    for _ in range(MAX_SCENE_TRIES):
        shapes, colors = sample_attributes(rng, n_objects, sampling)
        try:
            negatives = hard_negatives(rng, shapes, colors, negatives_per_scene)
        except ValueError:
            if sampling == "distinct":
                raise
            continue  # the authors' sampler drew a multi-object scene without a hard negative
        camera = sample_camera(rng, focal_length_mm)
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
        "negative_captions": [caption(n) for n in negatives],
        "render_seed": int(rng.integers(0, 2**31 - 1)),
        "camera": camera,
        "group": split_group_key(pairs),
    }


def generate_scenes(dataset: str, spec: dict, width: int, height: int, seed: int):
    """The item table of one CLEVR-style dataset: `spec['scenes_per_count']` scenes for each object
    count in `spec['objects_per_scene']`, with splits (per object count) and render shards."""
    rng = dataset_rng(seed, dataset)
    scenes = [
        sample_scene(rng, n, spec["negatives_per_scene"], width, height, spec["sampling"],
                     spec.get("focal_length_mm", FOCAL_LENGTH_MM))
        for n in spec["objects_per_scene"]
        for _ in range(spec["scenes_per_count"])
    ]
    splits = splits_per_count(rng, scenes, spec["objects_per_scene"], spec["splits"])
    return rendered_items(dataset, scenes, splits, spec["shards"], width, height)


def items(dataset: str, spec: dict, context: ItemContext):
    return generate_scenes(dataset, spec, *context.resolution, context.seed), VOCABULARY


def check(dataset: str, spec: dict) -> list[str]:
    errors = shard_errors(dataset, spec)
    if 2 in spec["objects_per_scene"] and spec["negatives_per_scene"] > 1:
        errors.append(f"datasets.{dataset}.negatives_per_scene: a two-object caption has one hard negative, "
                      f"got {spec['negatives_per_scene']}")
    return errors


KIND = DatasetKind(name="clevr", config=schema_block("clevr"), items=items, rendered=True,
                   analyses=("probes", "labclip", "binding"), check=check,
                   planned_items=scene_counts, setting=lambda dataset, spec: "CLEVR")
