"""Rule `compositional`: image-to-text accuracy on a compositional benchmark of (image, caption, one negative
caption) items, per subset: is the image more similar to its caption than to the negative?

- Protocol `authors`, as SugarCrepe's evaluation (main_eval.py) scores it: L2-normalised image and text
  embeddings, correct when the caption's cosine is strictly above the negative's (a tie counts as wrong).
- Protocol `clean`: the same cosine, a tie counts half.
Winoground-style items (two items sharing a `pair`: image k with caption k, the other caption its negative) are
scored by Winoground's three measures instead, as its authors define them (strictly greater, protocol
`authors` only): text (each image prefers its own caption), image (each caption prefers its own image) and
group (both), per example.
Rows per subset, per subset family (add, replace, swap: the items of its subsets pooled) and over all items
(micro-averaged: every item counts once), each with its item count; for CLIP and for CLIP with each published
LABCLIP map that fits the model (paper_a.published_maps, e.g. the authors' labclip_coco_neg_B32.pt), whose
text side is the map's.
"""
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import numpy as np

from workflow_scripts.analyses.similarity import preference, rowwise_cosine

TIES = {"authors": 0.0, "clean": 0.5}  # what a tie scores under each protocol


def family(subset: str) -> str:
    """A subset's family: the part of its name before the first '_' ('replace_att' -> 'replace')."""
    return subset.split("_")[0]


def groups_of(subsets, families: bool = True) -> list[tuple[str, np.ndarray]]:
    """(group, mask) for each subset, each family ('family: <f>', where `families`) and 'all'."""
    subsets = np.asarray(subsets)
    family_of = np.array([family(s) for s in subsets])
    return ([(s, subsets == s) for s in dict.fromkeys(subsets)]
            + ([(f"family: {f}", family_of == f) for f in dict.fromkeys(family_of)] if families else [])
            + [("all", np.ones(len(subsets), bool))])


def compositional_rows(subsets, image, caption, negative) -> list[dict]:
    """One row per (protocol, group): group a subset, 'family: <family>' or 'all'."""
    positive, against = rowwise_cosine(image, caption), rowwise_cosine(image, negative)
    rows = []
    for protocol, tie in TIES.items():
        correct = preference(positive, against, tie)
        for group, mask in groups_of(subsets):
            rows.append({"measure": "image-to-text", "protocol": protocol, "subset": group,
                         "accuracy": float(correct[mask].mean()), "n_items": int(mask.sum()),
                         "n_ties": int((positive[mask] == against[mask]).sum())})
    return rows


def winoground_scores(c0_i0, c1_i0, c0_i1, c1_i1) -> dict[str, np.ndarray]:
    """Per example, Winoground's text, image and group scores (1 or 0) from the four similarities
    c<caption>_i<image>."""
    text = (c0_i0 > c1_i0) & (c1_i1 > c0_i1)
    image = (c0_i0 > c0_i1) & (c1_i1 > c1_i0)
    return {"text": text.astype(float), "image": image.astype(float), "group": (text & image).astype(float)}


def winoground_rows(items: list[dict], image, caption, negative) -> list[dict]:
    """Rows of the Winoground measures over examples (pairs of items, in the order of their first item), per
    subset (the example's tag) and 'all'; ValueError naming the pair when it has not exactly two items."""
    members = {}
    for i, item in enumerate(items):
        members.setdefault(item["pair"], []).append(i)
    odd = next((pair for pair, rows in members.items() if len(rows) != 2), None)
    if odd is not None:
        raise ValueError(f"pair {odd!r} has {len(members[odd])} items; a Winoground example has two")
    first, second = (np.array(side) for side in zip(*members.values()))
    own, other = rowwise_cosine(image, caption), rowwise_cosine(image, negative)
    # first: image 0 with caption 0 (its negative caption 1); second: image 1 with caption 1 (negative caption 0)
    c0_i0, c1_i0, c1_i1, c0_i1 = own[first], other[first], own[second], other[second]
    scores = winoground_scores(c0_i0, c1_i0, c0_i1, c1_i1)
    ties = (c0_i0 == c1_i0) | (c1_i1 == c0_i1) | (c0_i0 == c0_i1) | (c1_i1 == c1_i0)
    rows = []
    for group, mask in groups_of([items[i]["subset"] or "all" for i in first], families=False):
        for measure, score in scores.items():
            rows.append({"measure": measure, "protocol": "authors", "subset": group,
                         "accuracy": float(score[mask].mean()), "n_items": int(mask.sum()),
                         "n_ties": int(ties[mask].sum())})
    return rows


def main(snakemake) -> None:
    import pyarrow as pa

    from workflow_scripts.analyses.embedded import embedded_for_rule
    from workflow_scripts.analyses.labclip import map_text, published_maps
    from workflow_scripts.common.logs import start_job
    from workflow_scripts.common.parquet import write_table

    logger = start_job(snakemake)
    data, provenance = embedded_for_rule(snakemake)
    subsets = [item.get("subset") or snakemake.wildcards.dataset for item in data.items]
    variants = [("CLIP", data.caption, data.negative)]
    for name, model in published_maps(snakemake.params.published_maps, data.caption.shape[1],
                                      snakemake.wildcards.model, logger):
        variants.append((f"published:{name}", map_text(model, data.caption), map_text(model, data.negative)))
    paired = all(item.get("pair") for item in data.items)
    rows = [{"variant": variant, **row} for variant, caption, negative in variants
            for row in (winoground_rows(data.items, data.image, caption, negative) if paired
                        else compositional_rows(subsets, data.image, caption, negative))]
    write_table(pa.Table.from_pylist(rows), snakemake.output.compositional, provenance)
    for row in rows:
        if row["subset"] == "all" and row["protocol"] == "authors":
            logger.info("%s, %s over %d: %.3f", row["variant"], row["measure"], row["n_items"], row["accuracy"])


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
