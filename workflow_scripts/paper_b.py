"""Paper B's analyses for one model: text-based object retrieval (TOR) over object names, with short and
long caption templates (rule paper_b_tor); image-based object retrieval (IOR) and image-text matching under
reordering and resizing on one SIMCO/ComCO dataset (rule paper_b_images); each with the per-object
mitigation where it applies."""
import sys
from collections.abc import Callable
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

import numpy as np

from workflow_scripts.binding import image_to_text_preference
from workflow_scripts.retrieval import (
    MAX_OBJECTS,
    aggregate_object_embeddings,
    ior_metrics,
    move_object,
    render_caption,
    tor_captions,
    tor_metrics,
)


def tor_rows(encode_text: Callable[[list[str]], np.ndarray], tor_cfg: dict, seed: int) -> list[dict]:
    """One row per (template, object count, method): 'caption' embeds the whole caption; 'split-<how>'
    embeds each object's phrase alone and aggregates them (the mitigation)."""
    objects = list(tor_cfg["objects"])
    object_emb = encode_text(objects)
    rows = []
    for template in tor_cfg["templates"]:
        per_object = dict(zip(objects, encode_text([render_caption([o], template) for o in objects])))
        for n in tor_cfg["objects_per_caption"]:
            captions = tor_captions(objects, n, template, limit=tor_cfg["captions_per_count"], seed=seed)
            tuples = np.array([t for _, t in captions])
            methods = {"caption": encode_text([text for text, _ in captions])}
            stacked = np.stack([[per_object[objects[i]] for i in t] for t in tuples])
            for how in tor_cfg["aggregations"]:
                methods[f"split-{how}"] = aggregate_object_embeddings(stacked, how)
            for method, caption_emb in methods.items():
                metrics = tor_metrics(caption_emb, object_emb, tuples)
                shares = list(metrics["first_retrieved_share"]) + [np.nan] * (MAX_OBJECTS - n)
                rows.append({
                    "template": template, "n_objects": n, "method": method, "n_captions": len(captions),
                    "top_n_accuracy": metrics["top_n_accuracy"],
                    "not_mentioned_share": metrics["not_mentioned_share"],
                    **{f"first_retrieved_share_{p + 1}": float(s) for p, s in enumerate(shares)},
                })
    return rows


def _padded(values, prefix: str) -> dict:
    """{prefix_1: v1, ...} padded with NaN up to MAX_OBJECTS columns, so rows of every count share columns."""
    values = list(values) + [np.nan] * (MAX_OBJECTS - len(values))
    return {f"{prefix}_{p + 1}": float(v) for p, v in enumerate(values)}


def large_position(scene: dict) -> int:
    """Position in the object list of the scene's only large object, or -1 when not exactly one is large."""
    large = [i for i, o in enumerate(scene["objects"]) if o["size"] == "large"]
    return large[0] if len(large) == 1 else -1


def ior_rows(scenes: list[dict], image_emb: np.ndarray, reference_names: list[str],
             reference_emb: np.ndarray) -> list[dict]:
    """Image-based object retrieval per object count: one row over all images ("all") and one per caption
    position of the large object (the object order controlled), each with the share of images whose nearest
    single-object reference is the large object, each small object, and the object at each position."""
    index = {name: i for i, name in enumerate(reference_names)}
    missing = sorted({o["shape"] for s in scenes for o in s["objects"]} - set(index))
    if missing:
        raise ValueError(f"no reference image for objects {missing}")
    rows = []
    for n in sorted({s["n_objects"] for s in scenes}):
        members = [i for i, s in enumerate(scenes) if s["n_objects"] == n]
        objects = np.array([[index[o["shape"]] for o in scenes[i]["objects"]] for i in members])
        large = np.array([large_position(scenes[i]) for i in members])
        groups = [("all", np.ones(len(members), bool))] + [
            (str(p + 1), large == p) for p in range(n) if (large == p).any()]
        for group, mask in groups:
            metrics = ior_metrics(image_emb[members][mask], reference_emb, objects[mask], large[mask])
            rows.append({
                "n_objects": n, "large_position": group, "n_images": int(mask.sum()),
                "top_n_accuracy": metrics["top_n_accuracy"],
                "large_first_share": metrics["large_first_share"],
                **_padded(metrics["small_first_share"], "small_first_share"),
                **_padded(metrics["first_retrieved_share_by_position"], "first_retrieved_share"),
            })
    return rows


def matching_variants(scene: dict) -> list[tuple[str, tuple, tuple]]:
    """(condition, object order, distractor order) for one scene: its own caption ("original"), the object at
    each position k moved to the first or last slot ("<size> to first|last"; moves that change nothing are
    left out), and, for a scene with one large object, its caption again as "large named <p>" (p: the large
    object's caption position), which compares scenes that differ in which object is large."""
    order = tuple(o["shape"] for o in scene["objects"])
    distractor = tuple(distractor_objects(scene))
    variants = [("original", order, distractor)]
    for k, obj in enumerate(scene["objects"]):
        for to, unchanged in (("first", 0), ("last", len(order) - 1)):
            if k != unchanged:
                variants.append((f"{obj['size']} to {to}", move_object(order, k, to), move_object(distractor, k, to)))
    large = large_position(scene)
    if large >= 0:
        variants.append((f"large named {large + 1}", order, distractor))
    return variants


def distractor_objects(scene: dict) -> list[str]:
    """The object names of a scene's distractor caption: its caption with one object replaced."""
    names = scene["negative_captions"][0].split(" and ")
    if len(names) != scene["n_objects"]:
        raise ValueError(f"scene {scene['scene_id']}: distractor {scene['negative_captions'][0]!r} does not "
                         f"name {scene['n_objects']} objects")
    return names


MOVES = ("original", "large to first", "large to last", "small to first", "small to last")


def condition_rank(condition: str) -> tuple:
    """Table order of matching conditions: the moves in MOVES' order, then "large named 1", "large named 2", ..."""
    return (MOVES.index(condition), 0) if condition in MOVES else (len(MOVES), int(condition.rsplit(" ", 1)[1]))


def matching_rows(scenes: list[dict], image_emb: np.ndarray, encode_text: Callable[[list[str]], np.ndarray],
                  aggregations) -> list[dict]:
    """Image-text matching, caption vs distractor, per object count, condition (matching_variants) and method:
    'caption' embeds each (reordered) caption whole; 'split-<how>' embeds each object's name alone and
    aggregates (the mitigation, blind to order by construction)."""
    variants = []
    for i, scene in enumerate(scenes):
        variants += [(i, scene["n_objects"], condition, order, distractor)
                     for condition, order, distractor in matching_variants(scene)]
    index, counts, conditions, orders, distractors = zip(*variants)
    index, counts, conditions = np.array(index), np.array(counts), np.array(conditions)
    methods = {"caption": (encode_text([render_caption(o) for o in orders]),
                           encode_text([render_caption(d) for d in distractors]))}
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

    from workflow_scripts.embed import embed_texts, load_configured_model
    from workflow_scripts.rule_logging import log_to
    from workflow_scripts.tables import write_table

    logger = log_to(snakemake.log[0])
    settings = snakemake.params.embedding
    model, _, tokenizer, provenance, device = load_configured_model(snakemake)

    def encode_text(texts):
        return embed_texts(model, tokenizer, texts, device, settings["batch_size"], settings["precision"])

    if snakemake.rule == "paper_b_tor":
        rows = tor_rows(encode_text, snakemake.params.tor, snakemake.params.seed)
        write_table(pa.Table.from_pylist(rows), snakemake.output.tor, {**provenance, "tor": snakemake.params.tor})
        logger.info("%d TOR rows", len(rows))
        return

    from workflow_scripts.embedded import load_images

    scenes, images, weights = load_images(snakemake.input.scenes, snakemake.input.images)
    references, reference_images, reference_weights = load_images(snakemake.input.reference_scenes,
                                                                  snakemake.input.reference_images)
    for path, used in ((snakemake.input.images, weights), (snakemake.input.reference_images, reference_weights)):
        if used != provenance["weights"]:
            raise ValueError(f"{path} was embedded with {used}, not with this model's {provenance['weights']}; "
                             "rerun its embedding")
    provenance = {**provenance, "dataset": snakemake.wildcards.dataset}
    ior = ior_rows(scenes, images, [s["caption"] for s in references], reference_images)
    write_table(pa.Table.from_pylist(ior), snakemake.output.ior, provenance)
    matching = matching_rows(scenes, images, encode_text, snakemake.params.aggregations)
    write_table(pa.Table.from_pylist(matching), snakemake.output.matching, provenance)
    logger.info("%d IOR rows, %d matching rows", len(ior), len(matching))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
