"""Rule `matching`: image-text matching under reordering and resizing (paper B): is an image more similar to its
caption than to a distractor naming one other object, when the large or a small object moves to the caption's
first or last slot? 'split-<how>' rows embed each object's name alone and aggregate (the mitigation)."""
import sys
from collections.abc import Callable
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import numpy as np

from workflow_scripts.analyses.retrieval import aggregate_object_embeddings, large_position, move_object
from workflow_scripts.analyses.similarity import image_to_text_preference
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


MOVES = ("original", "large to first", "large to last", "small to first", "small to last")


def condition_rank(condition: str) -> tuple:
    """Table order of matching conditions: the moves in MOVES' order, then "large named 1", "large named 2", ..."""
    return (MOVES.index(condition), 0) if condition in MOVES else (len(MOVES), int(condition.rsplit(" ", 1)[1]))


def matching_rows(scenes: list[dict], image_emb: np.ndarray, encode_text: Callable[[list[str]], np.ndarray],
                  vocabulary: Vocabulary, aggregations) -> list[dict]:
    """Image-text matching, caption vs distractor, per object count, condition (matching_variants) and method:
    'caption' embeds each (reordered) caption whole; 'split-<how>' embeds each object's name alone and
    aggregates (the mitigation, blind to order by construction). Captions follow the vocabulary's grammar."""
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
        for n in sorted(set(counts)):
            for condition in sorted(set(conditions[counts == n]), key=condition_rank):
                mask = (counts == n) & (conditions == condition)
                rows.append({"n_objects": int(n), "condition": str(condition), "method": method,
                             "accuracy": float(correct[mask].mean()), "n_pairs": int(mask.sum())})
    return rows


def main(snakemake) -> None:
    import pyarrow as pa

    from workflow_scripts.analyses.embedded import load_images
    from workflow_scripts.common.logs import log_to
    from workflow_scripts.common.parquet import write_table
    from workflow_scripts.models.embed import configured_text_encoder

    logger = log_to(snakemake.log[0])
    encode_text, provenance = configured_text_encoder(snakemake)

    items, images, weights, vocabulary = load_images(snakemake.input.item_table, snakemake.input.images)
    if weights != provenance["weights"]:
        raise ValueError(f"{snakemake.input.images} was embedded with {weights}, not with this model's "
                         f"{provenance['weights']}; rerun its embedding")
    rows = matching_rows(items, images, encode_text, vocabulary, snakemake.params.aggregations)
    write_table(pa.Table.from_pylist(rows), snakemake.output.matching,
                {**provenance, "dataset": snakemake.wildcards.dataset})
    logger.info("%d matching rows", len(rows))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
