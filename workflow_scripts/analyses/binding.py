"""Rule `binding`: cross-modal binding diagnostics of CLIP and of each LABCLIP map (ours and published ones) on
the test split: does similarity prefer the right binding of attributes to objects?

Every variant gets one row per protocol (similarity.py defines the binding rules):

- `authors`: the authors' binding rule for the dataset's kind (CLEVR: L2-normalised image . raw text, ties correct,
  scenes whose negative binds as the caption left out; other kinds: cosine, ties wrong, nothing left out); Recall@k
  with the same similarity and ties; the probe-weight cosine of the configured probe solver's weights (for SGD the
  last epoch's, whose image and text probes share their seeded initialisation), as the authors' style of it.
- `clean`: cosine, ties half, items without a distinct negative left out; Recall@k by cosine, ties broken at
  random; the probe-weight cosine of the unique probe target (probes.fit_unique_probe), with its bootstrap spread.

A LABCLIP map's text is L2-normalised, so for it the two similarities coincide and the protocols differ only in
ties and exclusions (and in the probe-weight cosine). LABCLIP maps come in two epoch selections (`last_epoch`, the
authors', and `best_val`), each a variant row of its own with the epoch it kept.
"""
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import numpy as np
import pyarrow as pa

from workflow_scripts.analyses.embedded import Embedded
from workflow_scripts.analyses.probes import (
    PRIMARY_SELECTION,
    UNIQUE_L2,
    UNIQUE_TOLERANCE,
    probe_settings,
    probe_weight_cosine,
    run_probes,
    training_probe_sets,
    unique_probe_weights,
)
from workflow_scripts.analyses.similarity import (
    CLEAN,
    PROTOCOLS,
    BindingRule,
    binding_accuracy,
    binding_rule,
    has_distinct_negative,
    modality_gap,
    preference,
    recall_at_k,
    rowwise_cosine,
)
from workflow_scripts.datasets.items import Vocabulary

RECALL_KS = (1, 5, 10)


@dataclass(frozen=True)
class Variant:
    """A text side to test: CLIP's own text embeddings, or a LABCLIP map of them (with its epoch selection)."""

    name: str  # "CLIP", "LABCLIP-HNB", "published:<name>"
    map_text: Callable = lambda text: text
    selection: str = "none"  # "last_epoch" or "best_val" for our maps; "released" for published ones
    epoch: int | None = None


def twin_pairs(items: list[dict], vocabulary: Vocabulary) -> list[tuple[int, int]]:
    """(i, j) where item j's caption binds exactly as item i's first negative caption (the vocabulary's
    grammar says which attribute goes with which object), for every item i whose negative binds differently
    from its caption (an item without a distinct negative would be paired with scenes showing its own caption)."""
    items_of = {}
    for j, item in enumerate(items):
        items_of.setdefault(vocabulary.binding(item["caption"]), []).append(j)
    distinct = has_distinct_negative(items, vocabulary)
    return [(i, j) for i, item in enumerate(items) if distinct[i]
            for j in items_of.get(vocabulary.binding(item["negative_captions"][0]), [])]


def text_to_image_accuracy(image, caption, pairs, rule: BindingRule = CLEAN) -> float:
    """Share of (i, j) twin pairs where caption i is more similar to image i than to image j, whose scene
    is its attribute-swapped version, by `rule`'s similarity and ties (default: cosine, ties half; for a fixed
    caption the two similarities rank images alike). NaN when no pair exists."""
    if not pairs:
        return float("nan")
    i, j = np.array(pairs).T
    return float(preference(rule.score(image[i], caption[i]), rule.score(image[j], caption[i]), rule.tie).mean())


def caption_candidates(items: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(rows, correct): `rows` the first item of each distinct caption text among `items` (the candidates of
    Recall@k: the split's captions, each text once; hard negatives are candidates only where they are some item's
    caption), `correct[i]` the candidate index of item i's caption."""
    index, rows = {}, []
    for i, item in enumerate(items):
        if item["caption"] not in index:
            index[item["caption"]] = len(rows)
            rows.append(i)
    return np.array(rows, dtype=int), np.array([index[item["caption"]] for item in items], dtype=int)


def probe_cosines(data: Embedded, variants: list[Variant], probes_cfg: dict, probe_weights: dict,
                  cosine_cfg: dict, seed: int) -> dict:
    """Per variant name and selection: {"authors": the configured solver's probe-weight cosine, "clean": (the unique
    target's cosine on the whole training set, [its cosine on each bootstrap resample])}. CLIP's image and text
    probes of the authors' style are those in `probe_weights` (the probe rule's); a map's text probes are trained
    here with the same solver and seed."""
    l2, resamples = cosine_cfg["l2"], cosine_cfg["resamples"]
    tolerance = cosine_cfg.get("tolerance", UNIQUE_TOLERANCE)
    sets = training_probe_sets(data)
    image = unique_probe_weights(data.image, sets, l2, resamples, seed, tolerance)
    found = {}
    for variant in variants:
        mapped = data.with_text(variant.map_text(data.caption), variant.map_text(data.negative))
        if variant.name == "CLIP":
            text_weights = probe_weights["text"]
        else:
            _, text_weights = run_probes(mapped, "text", probes_cfg["solver"], seed, **probe_settings(probes_cfg))
        text = unique_probe_weights(mapped.caption, sets, l2, resamples, seed, tolerance)
        found[variant.name, variant.selection] = {
            "authors": probe_weight_cosine(probe_weights["image"], text_weights),
            "clean": (probe_weight_cosine(image[0], text[0]),
                      [probe_weight_cosine(a, b) for a, b in zip(image[1:], text[1:])]),
        }
    return found


def binding_rows(data: Embedded, variants: list[Variant], probes_cfg: dict, probe_weights: dict, seed: int,
                 kind: str = "clevr", cosine_cfg: dict | None = None):
    """Test-split binding diagnostics: one row per variant and protocol (columns in the module docstring's terms;
    every share with its count), and the per-item cosine between each test caption and its hard negative.
    `kind` is the dataset's kind, which chooses the authors' binding rule."""
    cosine_cfg = cosine_cfg or {"l2": UNIQUE_L2, "resamples": 0}
    is_test = data.split == "test"
    test = data.subset(is_test)
    distinct = has_distinct_negative(test.items, data.vocabulary)
    pairs = twin_pairs(test.items, data.vocabulary)
    candidates, correct = caption_candidates(test.items)
    probe_cosine = probe_cosines(data, variants, probes_cfg, probe_weights, cosine_cfg, seed)
    rows, cosines = [], []
    for variant in variants:
        caption, negative = variant.map_text(test.caption), variant.map_text(test.negative)
        pair_cosine = rowwise_cosine(caption, negative)
        for protocol in PROTOCOLS:
            rule = binding_rule(protocol, kind)
            accuracy, n_scored = binding_accuracy(rule, test.image, caption, negative, distinct)
            scored = rule.scored(distinct)
            recall = recall_at_k(test.image, caption[candidates], correct, RECALL_KS, rule.similarity, rule.tie)
            cosine = probe_cosine[variant.name, variant.selection]
            boot = cosine["clean"][1] if protocol == "clean" else []
            rows.append({
                "dataset_kind": kind, "protocol": protocol, "variant": variant.name,
                "selection": variant.selection, "epoch": variant.epoch,
                "similarity": rule.similarity, "ties": rule.ties,
                "n_test": len(test.items), "n_same_binding": int((~distinct).sum()), "n_scored": n_scored,
                "image_to_text_accuracy": accuracy,
                "n_twin_pairs": len(pairs),
                "text_to_image_accuracy": text_to_image_accuracy(test.image, caption, pairs, rule),
                "n_recall_images": len(test.items), "n_recall_captions": len(candidates),
                **{f"recall_at_{k}": recall[k] for k in RECALL_KS},
                "modality_gap": modality_gap(test.image, caption),
                "caption_negative_cosine": float(pair_cosine[scored].mean()) if scored.any() else float("nan"),
                "probe_weight_cosine": cosine["authors"] if protocol == "authors" else cosine["clean"][0],
                "probe_weight_target": (f"{probes_cfg['solver']} {PRIMARY_SELECTION[probes_cfg['solver']]}"
                                        if protocol == "authors" else f"unique l2 {cosine_cfg['l2']:g}"),
                "probe_weight_cosine_boot_mean": float(np.mean(boot)) if boot else float("nan"),
                "probe_weight_cosine_boot_sd": float(np.std(boot, ddof=1)) if len(boot) > 1 else float("nan"),
                "n_bootstrap": len(boot),
            })
        cosines += [{"variant": variant.name, "selection": variant.selection, "item_id": s["item_id"],
                     "distinct_negative": bool(d), "cosine": float(c)}
                    for s, d, c in zip(test.items, distinct, pair_cosine)]
    return pa.Table.from_pylist(rows), pa.Table.from_pylist(cosines)


def main(snakemake) -> None:
    from workflow_scripts.analyses.embedded import embedded_for_rule
    from workflow_scripts.analyses.labclip import map_text, text_maps
    from workflow_scripts.analyses.probes import load_probe_weights
    from workflow_scripts.common.logs import start_job
    from workflow_scripts.common.parquet import write_table

    logger = start_job(snakemake)
    data, provenance = embedded_for_rule(snakemake)
    maps = text_maps({path: "" for path in snakemake.input.labclip}, snakemake.params.published_maps,
                     data.caption.shape[1], snakemake.wildcards.model, logger)
    variants = [Variant("CLIP")] + [Variant(name, lambda text, model=model: map_text(model, text), selection, epoch)
                                    for name, selection, epoch, model in maps]
    rows, cosines = binding_rows(data, variants, snakemake.params.probes,
                                 load_probe_weights(snakemake.input.probe_weights), snakemake.params.seed,
                                 snakemake.params.kind, snakemake.params.probe_cosine)
    rows = rows.add_column(1, "paper_setting", pa.array([snakemake.params.paper_setting] * rows.num_rows, pa.string()))
    write_table(rows, snakemake.output.binding, provenance)
    write_table(cosines, snakemake.output.cosines, provenance)
    for row in rows.to_pylist():
        logger.info("%s", row)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
