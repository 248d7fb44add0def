"""Rule `compositional`: image-to-text accuracy on a compositional benchmark of (image, caption, one negative
caption) items, per subset: is the image more similar to its caption than to the negative?

- Protocol `authors`, as SugarCrepe's evaluation (main_eval.py) scores it: L2-normalised image and text
  embeddings, correct when the caption's cosine is strictly above the negative's (a tie counts as wrong).
- Protocol `clean`: the same cosine, a tie counts half.
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


def compositional_rows(subsets, image, caption, negative) -> list[dict]:
    """One row per (protocol, group): group a subset, 'family: <family>' or 'all'."""
    subsets = np.asarray(subsets)
    positive, against = rowwise_cosine(image, caption), rowwise_cosine(image, negative)
    families = np.array([family(s) for s in subsets])
    groups = ([(s, subsets == s) for s in dict.fromkeys(subsets)]
              + [(f"family: {f}", families == f) for f in dict.fromkeys(families)]
              + [("all", np.ones(len(subsets), bool))])
    rows = []
    for protocol, tie in TIES.items():
        correct = preference(positive, against, tie)
        for group, mask in groups:
            rows.append({"protocol": protocol, "subset": group, "accuracy": float(correct[mask].mean()),
                         "n_items": int(mask.sum()), "n_ties": int((positive[mask] == against[mask]).sum())})
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
    rows = [{"variant": variant, **row} for variant, caption, negative in variants
            for row in compositional_rows(subsets, data.image, caption, negative)]
    write_table(pa.Table.from_pylist(rows), snakemake.output.compositional, provenance)
    for variant, _, _ in variants:
        logger.info("%s on %d items: authors' accuracy %.3f over all", variant, len(data.items), next(
            r["accuracy"] for r in rows if (r["variant"], r["protocol"], r["subset"]) == (variant, "authors", "all")))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
