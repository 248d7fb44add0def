"""Rule `caption_tor`: text-based object retrieval on real captions (paper B ran TOR on COCO's). For each caption
naming 2..5 COCO categories (rule caption_objects, the `lexicon` method: each category at its first mention), which
category's bare-name text embedding is nearest to the caption's (cosine), and at which slot the caption names it.

Two readings of the captions:
- "as written" (the authors'): real captions tend to name their main, often largest, object first, so a first-slot
  share above 1/n mixes the encoder's order bias with the captions' own order of salience;
- "rotated" (the clean variant): each caption in all n rotations of its object phrases through their slots (the
  caption itself among them: "a dog chases a cat" and "a cat chases a dog"), so that every object stands at every
  slot once: an encoder without an order bias gives 1/n per slot. A rotated phrase keeps the words the caption
  used ("dogs" stays plural), which can break the grammar a little.
Candidates: "own objects", the caption's own categories (the slot shares sum to 1, like IOR's); "all names", every
COCO category (a nearest category the caption does not name counts for no slot; top-n correct when the n nearest
are exactly its categories).
"""
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import numpy as np

from workflow_scripts.analyses.retrieval import MAX_OBJECTS
from workflow_scripts.analyses.similarity import normalise
from workflow_scripts.analyses.tor import shares_by_slot, tor_metrics

READINGS = ("as written", "rotated")


def rotated_caption(caption: str, objects: list[dict], shift: int) -> tuple[str, list[str]]:
    """The caption with the phrase at slot k replaced by the phrase at slot (k + shift) mod n, and the categories
    in their new slot order. `objects`: {name, phrase, start} sorted by start, as rule caption_objects writes them."""
    n = len(objects)
    moved = [objects[(k + shift) % n] for k in range(n)]
    text, end = [], 0
    for slot, obj in zip(objects, moved):
        text += [caption[end:slot["start"]], obj["phrase"]]
        end = slot["start"] + len(slot["phrase"])
    return "".join(text) + caption[end:], [obj["name"] for obj in moved]


def caption_sets(items: list[dict], objects: list[list[dict]], reading: str, limit: int | None,
                 seed: int) -> list[tuple[str, list[str]]]:
    """(caption text, its categories in slot order) for every caption naming 2..MAX_OBJECTS categories (at most
    `limit` of them, a seeded sample), read as written or in every rotation."""
    kept = [i for i, found in enumerate(objects) if 2 <= len(found) <= MAX_OBJECTS]
    if limit is not None and len(kept) > limit:
        kept = sorted(np.random.default_rng(seed).choice(kept, limit, replace=False).tolist())
    if reading == "as written":
        return [(items[i]["caption"], [obj["name"] for obj in objects[i]]) for i in kept]
    if reading != "rotated":
        raise ValueError(f"unknown reading {reading!r}; expected one of {READINGS}")
    return [rotated_caption(items[i]["caption"], objects[i], shift) for i in kept for shift in range(len(objects[i]))]


def own_object_slots(caption_emb: np.ndarray, name_emb: np.ndarray, tuples: np.ndarray) -> np.ndarray:
    """The slot of each caption's nearest own category (cosine)."""
    similarity = np.einsum("cd,ckd->ck", normalise(caption_emb), normalise(name_emb)[tuples])
    return similarity.argmax(axis=1)


def caption_tor_rows(encode_text, names: list[str], items: list[dict], objects: list[list[dict]],
                     limit: int | None, seed: int) -> list[dict]:
    """One row per reading, candidate set and object count: the captions' count, the share whose nearest category
    stands at each slot, and (all names) the top-n accuracy and the share whose nearest category is not named."""
    name_emb = encode_text(list(names))
    index = {name: j for j, name in enumerate(names)}
    rows = []
    for reading in READINGS:
        sets = caption_sets(items, objects, reading, limit, seed)
        for n in sorted({len(categories) for _, categories in sets}):
            texts = [text for text, categories in sets if len(categories) == n]
            tuples = np.array([[index[c] for c in categories] for _, categories in sets if len(categories) == n])
            caption_emb = encode_text(texts)
            base = {"reading": reading, "n_objects": n, "n_captions": len(texts), "n_names": len(names)}
            own = own_object_slots(caption_emb, name_emb, tuples)
            rows.append({**base, "candidates": "own objects", "top_n_accuracy": np.nan, "not_mentioned_share": 0.0,
                         **shares_by_slot(own, n, "first_retrieved_share"), "chance": 1 / n})
            every = tor_metrics(caption_emb, name_emb, tuples, "clean")
            rows.append({**base, "candidates": "all names", "top_n_accuracy": float(every["top_n_correct"].mean()),
                         "not_mentioned_share": float((every["first_slot"] == -1).mean()),
                         **shares_by_slot(every["first_slot"], n, "first_retrieved_share"), "chance": 1 / n})
    return rows


def main(snakemake) -> None:
    import pyarrow as pa

    from workflow_scripts.analyses.object_lexicon import SYNONYMS
    from workflow_scripts.common.logs import start_job
    from workflow_scripts.common.parquet import read_table, write_table
    from workflow_scripts.datasets.items import read_items
    from workflow_scripts.models.embed import configured_text_encoder

    logger = start_job(snakemake)
    encode_text, provenance = configured_text_encoder(snakemake)
    items, _ = read_items(snakemake.input.item_table)
    found = read_table(snakemake.input.objects, ["item_id", "objects"], what="caption objects").to_pylist()
    by_item = {row["item_id"]: row["objects"] for row in found}
    missing = [item["item_id"] for item in items if item["item_id"] not in by_item]
    if missing:
        raise ValueError(f"{snakemake.input.objects}: no objects for {len(missing)} items of "
                         f"{snakemake.input.item_table}, e.g. {missing[0]}; delete it so that caption_objects reruns")
    settings = snakemake.params.caption_tor
    rows = caption_tor_rows(encode_text, list(SYNONYMS), items, [by_item[item["item_id"]] for item in items],
                            settings["max_captions"], snakemake.params.seed)
    write_table(pa.Table.from_pylist(rows), snakemake.output.tor,
                {**provenance, "dataset": snakemake.wildcards.dataset, "objects": "lexicon", "caption_tor": settings})
    logger.info("%d caption TOR rows", len(rows))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
