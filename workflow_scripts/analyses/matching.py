"""Rule `matching`: image-text matching under reordering and resizing (paper B): is an image more similar to its
caption than to a distractor naming one other object, when the large or a small object moves to the caption's
first or last slot? 'split-<how>' rows embed each object's name alone and aggregate (the mitigation). Beside this
workflow's conditions, the authors' two scenarios as their code builds them (protocol "authors"), per position of
the large object as the authors report them and pooled over positions (column large_position)."""
import sys
from collections.abc import Callable
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import numpy as np

from workflow_scripts.analyses.retrieval import aggregate_object_embeddings, large_position, move_object, replace_object
from workflow_scripts.analyses.similarity import image_to_text_preference, rowwise_cosine
from workflow_scripts.datasets.items import Vocabulary


def matching_variants(scene: dict, vocabulary: Vocabulary) -> list[tuple[str, tuple, tuple]]:
    """(condition, object order, distractor order) for one item (a scene): its own caption ("original"), the object at
    each position k moved to the first or last slot ("<size> to first|last"; moves that change nothing are
    left out), and, for a scene with one large object, its caption again as "large named <p>" (p: the large
    object's caption position), which compares scenes that differ in which object is large."""
    order = tuple(o["object"] for o in scene["objects"])
    distractor = tuple(distractor_objects(scene, vocabulary))
    variants = [("original", order, distractor)]
    for k, obj in enumerate(scene["objects"]):
        for to, unchanged in (("first", 0), ("last", len(order) - 1)):
            if k != unchanged:
                variants.append((f"{obj['size']} to {to}", move_object(order, k, to), move_object(distractor, k, to)))
    large = large_position(scene)
    if large >= 0:
        variants.append((f"large named {large + 1}", order, distractor))
    return variants


def distractor_objects(scene: dict, vocabulary: Vocabulary) -> list[str]:
    """The object names of an item's distractor caption (its caption with one object replaced), read with the
    vocabulary's caption grammar."""
    names = [name for _, name in vocabulary.parse(scene["negative_captions"][0])]
    if len(names) != scene["n_objects"]:
        raise ValueError(f"item {scene['item_id']}: distractor {scene['negative_captions'][0]!r} does not "
                         f"name {scene['n_objects']} objects")
    return names


def swap_objects(order: tuple, i: int, j: int) -> tuple:
    """`order` with the objects at positions i and j exchanged."""
    swapped = list(order)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    return tuple(swapped)


AUTHORS_SCENARIOS = ("authors 1: large first", "authors 2: large last")


def authors_scenarios(scene: dict, vocabulary: Vocabulary) -> list[tuple[str, tuple, tuple]]:
    """(scenario, caption order, distractor order) as the authors' code builds them, one distractor per object
    of the vocabulary absent from the scene; nothing for a scene without exactly one large object.
    Scenario 1: the caption with the large object swapped into the first slot; its distractor, that caption with
    its first (large) object replaced by the absent one. Scenario 2: the caption with the large object swapped
    into the last slot; its distractor, the large object swapped into the first slot and the last object replaced
    by the absent one."""
    large = large_position(scene)
    if large < 0:
        return []
    order = tuple(o["object"] for o in scene["objects"])
    first, last = swap_objects(order, large, 0), swap_objects(order, large, len(order) - 1)
    absent = [name for name in vocabulary.objects if name not in order]
    return [variant for name in absent for variant in (
        (AUTHORS_SCENARIOS[0], first, replace_object(first, 0, name)),
        (AUTHORS_SCENARIOS[1], last, replace_object(first, len(order) - 1, name)))]


MOVES = ("original", "large to first", "large to last", "small to first", "small to last")


def condition_rank(condition: str) -> tuple:
    """Table order of matching conditions: the moves in MOVES' order, "large named 1", "large named 2", ..., then
    the authors' scenarios."""
    if condition in MOVES:
        return 0, MOVES.index(condition)
    if condition in AUTHORS_SCENARIOS:
        return 2, AUTHORS_SCENARIOS.index(condition)
    return 1, int(condition.rsplit(" ", 1)[1])


def position_label(condition: str) -> str:
    """The large_position of a row of `condition` over all its scenes: p for "large named <p>" (scenes whose large
    object is the p-th of their object list), else "pooled" (every position)."""
    return condition.rsplit(" ", 1)[1] if condition.startswith("large named ") else "pooled"


def _grouped(protocol: str, method: str, correct: np.ndarray, counts: np.ndarray, conditions: np.ndarray,
             images: np.ndarray, positions: np.ndarray | None = None) -> list:
    """Accuracy rows per object count and condition of per-pair scores (`images`: each pair's image index), each
    over all its scenes (large_position: position_label) and, where `positions` gives each pair's large-object
    position (0-based), first one row per position ("1", "2", ...: the scenes whose large object stands there).
    n_scenes counts the distinct images behind a row."""
    rows = []
    for n in sorted(set(counts)):
        for condition in sorted(set(conditions[counts == n]), key=condition_rank):
            mask = (counts == n) & (conditions == condition)
            groups = [] if positions is None else [(str(p + 1), mask & (positions == p))
                                                   for p in sorted(set(positions[mask]))]
            for position, subset in groups + [(position_label(str(condition)), mask)]:
                rows.append({"protocol": protocol, "n_objects": int(n), "condition": str(condition),
                             "large_position": position, "method": method,
                             "accuracy": float(correct[subset].mean()), "n_pairs": int(subset.sum()),
                             "n_scenes": len(set(images[subset].tolist()))})
    return rows


def authors_matching_rows(scenes: list[dict], image_emb: np.ndarray, encode_text, vocabulary: Vocabulary) -> list:
    """The authors' image-text matching (authors_scenarios): whole captions, correct only when the caption is
    strictly more similar (cosine) to the image than the distractor, a tie counting as wrong. The authors report
    one accuracy per position of the large object (one folder of scenes each): rows per position, and a "pooled"
    row over all positions beside them."""
    variants = [(i, scene["n_objects"], *variant) for i, scene in enumerate(scenes)
                for variant in authors_scenarios(scene, vocabulary)]
    if not variants:
        return []
    index, counts, conditions, orders, distractors = zip(*variants)
    images = image_emb[np.array(index)]
    caption = encode_text([vocabulary.caption(o) for o in orders])
    distractor = encode_text([vocabulary.caption(d) for d in distractors])
    correct = (rowwise_cosine(images, caption) > rowwise_cosine(images, distractor)).astype(float)
    positions = np.array([large_position(scenes[i]) for i in index])
    return _grouped("authors", "caption", correct, np.array(counts), np.array(conditions), np.array(index), positions)


def matching_rows(scenes: list[dict], image_emb: np.ndarray, encode_text: Callable[[list[str]], np.ndarray],
                  vocabulary: Vocabulary, aggregations) -> list[dict]:
    """Image-text matching as this workflow builds it (protocol "workflow"), caption vs the item's distractor, ties
    counting half, per object count, condition (matching_variants) and method:
    'caption' embeds each (reordered) caption whole; 'split-<how>' embeds each object's name alone and
    aggregates (the mitigation, blind to order by construction). Captions follow the vocabulary's grammar.
    large_position: "pooled" (scenes of every layout), except p for the "large named <p>" rows."""
    variants = []
    for i, scene in enumerate(scenes):
        variants += [(i, scene["n_objects"], condition, order, distractor)
                     for condition, order, distractor in matching_variants(scene, vocabulary)]
    index, counts, conditions, orders, distractors = zip(*variants)
    index, counts, conditions = np.array(index), np.array(counts), np.array(conditions)
    methods = {"caption": (encode_text([vocabulary.caption(o) for o in orders]),
                           encode_text([vocabulary.caption(d) for d in distractors]))}
    names = sorted({name for order in orders + distractors for name in order})
    name_emb = dict(zip(names, encode_text(names)))
    for how in aggregations:
        methods[f"split-{how}"] = tuple(  # row by row: captions of several lengths
            np.concatenate([aggregate_object_embeddings(np.stack([[name_emb[n] for n in o]]), how) for o in side])
            for side in (orders, distractors))
    images = image_emb[index]
    rows = []
    for method, (caption_emb, distractor_emb) in methods.items():
        correct = image_to_text_preference(images, caption_emb, distractor_emb)
        rows += _grouped("workflow", method, correct, counts, conditions, index)
    return rows


def main(snakemake) -> None:
    import pyarrow as pa

    from workflow_scripts.analyses.embedded import load_images
    from workflow_scripts.common.logs import start_job
    from workflow_scripts.common.parquet import joint_precision, write_table
    from workflow_scripts.models.embed import configured_text_encoder

    logger = start_job(snakemake)
    encode_text, provenance = configured_text_encoder(snakemake)

    items, images, image_provenance, vocabulary = load_images(snakemake.input.item_table, snakemake.input.images)
    if image_provenance["weights"] != provenance["weights"]:
        raise ValueError(f"{snakemake.input.images} was embedded with {image_provenance['weights']}, not with this "
                         f"model's {provenance['weights']}; rerun its embedding")
    rows = (matching_rows(items, images, encode_text, vocabulary, snakemake.params.aggregations)
            + authors_matching_rows(items, images, encode_text, vocabulary))
    precision = joint_precision(image_provenance.get("precision", "unrecorded"), provenance["precision"])
    write_table(pa.Table.from_pylist(rows), snakemake.output.matching,
                {**provenance, "precision": precision, "dataset": snakemake.wildcards.dataset})
    logger.info("%d matching rows", len(rows))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
