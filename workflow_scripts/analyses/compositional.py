"""Rule `compositional`: image-to-text accuracy on a compositional benchmark of (image, caption, k negative
captions) items, per subset: is the image more similar (cosine of L2-normalised embeddings) to its caption than
to every negative?

Each benchmark is scored as its authors' evaluation code scores it (protocol `authors`), beside a clean variant
in which a tie is shared (protocol `clean`: a caption tied with j negatives at the top scores 1/(j+1)):
- SugarCrepe (main_eval.py): correct when the caption's cosine is strictly above the negative's (a tie is wrong);
  rows per subset, per family (add, replace, swap) and over all items (micro-averaged, as SugarCrepe reports).
- ARO VG-Relation and VG-Attribution (options [false, true], correct when argmax is the true caption: numpy's
  argmax gives a tie to the false one, so a tie is wrong); ARO reports the macro-average over relations without
  the symmetric ones (its post-processing, ARO_SYMMETRIC_RELATIONS) or over attribute pairs of at least 25
  items: row 'macro (ARO)', beside the micro-average 'all'.
- ARO COCO-Order and Flickr-Order (options [caption, 4 perturbations], correct when argmax is the caption: a tie
  goes to the caption, so a tie is correct); each draw of perturbations is a subset ('draw <d>') and ARO's
  maintainers' advice is followed: the row 'mean over draws' (n_items: the items of one draw).
Winoground-style items (two items sharing a `pair`: image k with caption k, the other caption its negative) are
scored by Winoground's three measures instead (strictly greater, protocol `authors` only): text (each image prefers
its own caption), image (each caption prefers its own image) and group (both), per example. SugarCrepe++'s entries
(two items sharing a `pair`, the image and the negative: caption 1, then caption 2) by its measures, as its
evaluation scripts count them (strictly greater, protocol `authors` only): image-to-text (both captions more
similar to the image than the negative), each caption alone, and text-only (the captions more similar to each
other than either is to the negative).
For CLIP, for CLIP with the LABCLIP maps trained here on the datasets of paper_a.labclip_transfer (e.g. COCO:
'LABCLIP-HNB (coco)', last epoch and best validation epoch) and with each published LABCLIP map that fits the model
(paper_a.published_maps, e.g. the authors' labclip_coco_neg_B32.pt), whose text side is the map's.
"""
import sys
from dataclasses import dataclass
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import numpy as np

from workflow_scripts.analyses.similarity import normalise, rowwise_cosine
from workflow_scripts.common.intervals import Z95

# The relations ARO's post-processing drops from VG-Relation's macro-average (its README, ARO issue 37): swapping
# their subject and object need not make the caption false.
ARO_SYMMETRIC_RELATIONS = frozenset([
    "adjusting", "attached to", "between", "bigger than", "biting", "boarding", "brushing", "chewing", "cleaning",
    "climbing", "close to", "coming from", "coming out of", "contain", "crossing", "dragging", "draped over",
    "drinking", "drinking from", "driving", "driving down", "driving on", "eating from", "eating in", "enclosing",
    "exiting", "facing", "filled with", "floating in", "floating on", "flying", "flying above", "flying in",
    "flying over", "flying through", "full of", "going down", "going into", "going through", "grazing in",
    "growing in", "growing on", "guiding", "hanging from", "hanging in", "hanging off", "hanging over",
    "higher than", "holding onto", "hugging", "in between", "jumping off", "jumping on", "jumping over", "kept in",
    "larger than", "leading", "leaning over", "leaving", "licking", "longer than", "looking in", "looking into",
    "looking out", "looking over", "looking through", "lying next to", "lying on top of", "making", "mixed with",
    "mounted on", "moving", "on the back of", "on the edge of", "on the front of", "on the other side of",
    "opening", "painted on", "parked at", "parked beside", "parked by", "parked in", "parked in front of",
    "parked near", "parked next to", "perched on", "petting", "piled on", "playing", "playing in", "playing on",
    "playing with", "pouring", "reaching for", "reading", "reflected on", "riding on", "running in", "running on",
    "running through", "seen through", "sitting behind", "sitting beside", "sitting by", "sitting in front of",
    "sitting near", "sitting next to", "sitting under", "skiing down", "skiing on", "sleeping in", "sleeping on",
    "smiling at", "sniffing", "splashing", "sprinkled on", "stacked on", "standing against", "standing around",
    "standing behind", "standing beside", "standing in front of", "standing near", "standing next to",
    "staring at", "stuck in", "surrounding", "swimming in", "swinging", "talking to", "topped with", "touching",
    "traveling down", "traveling on", "tying", "typing on", "underneath", "wading in", "waiting for",
    "walking across", "walking by", "walking down", "walking next to", "walking through", "working in",
    "working on", "worn on", "wrapped around", "wrapped in", "by", "of", "near", "next to", "with", "beside",
    "on the side of", "around"])
ARO_ATTRIBUTION_MIN_ITEMS = 25  # ARO scores only the attribute pairs with at least 25 items


@dataclass(frozen=True)
class Scoring:
    """How a benchmark's authors score it: whether a tie at the top counts for the caption, which subsets form
    their macro-average (None: they report the micro-average), and how its rows are grouped."""

    authors_tie_correct: bool = False
    families: bool = False  # rows per subset family (the part of the name before '_')
    macro: object = None  # (subset, its items) -> whether the authors' macro-average includes it
    mean_over_draws: bool = False  # subsets are draws of random perturbations


SCORINGS = {
    "sugarcrepe": Scoring(families=True),
    "aro_relation": Scoring(macro=lambda subset, n: subset not in ARO_SYMMETRIC_RELATIONS),
    "aro_attribution": Scoring(macro=lambda subset, n: n >= ARO_ATTRIBUTION_MIN_ITEMS),
    "aro_order": Scoring(authors_tie_correct=True, mean_over_draws=True),
}
DEFAULT_SCORING = Scoring(families=True)


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


def option_scores(image, caption, negatives) -> tuple[np.ndarray, np.ndarray]:
    """(n,) cosine of each image with its caption and (n, k) with each of its k negatives ((n, d) negatives: one)."""
    negatives = np.asarray(negatives, float)
    negatives = negatives[:, None, :] if negatives.ndim == 2 else negatives
    options = np.concatenate([np.asarray(caption, float)[:, None, :], negatives], axis=1)
    # one computation for the caption and the negatives, so that equal embeddings give exactly equal cosines
    cosines = np.einsum("nd,nkd->nk", normalise(np.asarray(image, float)), normalise(options))
    return cosines[:, 0], cosines[:, 1:]


def scored(positive, against, protocol: str, scoring: Scoring) -> np.ndarray:
    """Per item: 1 where the caption beats every negative, 0 where one beats it; for a tie at the top, the
    authors' rule (scoring.authors_tie_correct) or, protocol 'clean', 1/(1 + the negatives tied with it)."""
    best = against.max(axis=1)
    tied = (against == positive[:, None]).sum(axis=1)
    if protocol == "authors":
        return (positive >= best if scoring.authors_tie_correct else positive > best).astype(float)
    return np.where(positive > best, 1.0, np.where(positive == best, 1.0 / (1 + tied), 0.0))


def macro_row(correct, subsets, include) -> dict | None:
    """The mean of the per-subset accuracies over the subsets `include` keeps, its items and subsets, and a 95%
    interval from the subsets' Agresti-Coull variances (so that a subset of one item, right or wrong, still
    counts as uncertain); None when no subset is kept."""
    subsets = np.asarray(subsets)
    kept = [(correct[subsets == s].sum(), int((subsets == s).sum())) for s in dict.fromkeys(subsets)
            if include(s, int((subsets == s).sum()))]
    if not kept:
        return None
    right, counts = np.array(kept, float).T
    mean = float((right / counts).mean())
    adjusted_n = counts + Z95**2
    adjusted_p = (right + Z95**2 / 2) / adjusted_n
    half = Z95 * float(np.sqrt((adjusted_p * (1 - adjusted_p) / adjusted_n).sum())) / len(kept)
    return {"accuracy": mean, "n_items": int(counts.sum()), "n_subsets": len(kept),
            "accuracy_low95": max(0.0, mean - half), "accuracy_high95": min(1.0, mean + half)}


def compositional_rows(subsets, image, caption, negatives, scoring: Scoring = DEFAULT_SCORING) -> list[dict]:
    """One row per (protocol, group): group a subset, 'family: <family>', 'all', 'macro (ARO)' or 'mean over
    draws', as `scoring` says."""
    positive, against = option_scores(image, caption, negatives)
    ties = (against == positive[:, None]).any(axis=1)
    subsets = np.asarray(subsets)
    rows = []
    for protocol in ("authors", "clean"):
        correct = scored(positive, against, protocol, scoring)
        base = {"measure": "image-to-text", "protocol": protocol}
        for group, mask in groups_of(subsets, scoring.families):
            if group == "all" and scoring.mean_over_draws:
                draws = [correct[subsets == s].mean() for s in dict.fromkeys(subsets)]
                n = int((subsets == subsets[0]).sum())
                rows.append({**base, "subset": "mean over draws", "accuracy": float(np.mean(draws)), "n_items": n,
                             "n_ties": int(ties.sum()), "n_subsets": len(draws)})
                continue
            rows.append({**base, "subset": group, "accuracy": float(correct[mask].mean()),
                         "n_items": int(mask.sum()), "n_ties": int(ties[mask].sum())})
        if scoring.macro is not None:
            macro = macro_row(correct, subsets, scoring.macro)
            if macro:
                rows.append({**base, "subset": "macro (ARO)", "n_ties": int(ties.sum()), **macro})
    return rows


def winoground_scores(c0_i0, c1_i0, c0_i1, c1_i1) -> dict[str, np.ndarray]:
    """Per example, Winoground's text, image and group scores (1 or 0) from the four similarities
    c<caption>_i<image>."""
    text = (c0_i0 > c1_i0) & (c1_i1 > c0_i1)
    image = (c0_i0 > c0_i1) & (c1_i1 > c1_i0)
    return {"text": text.astype(float), "image": image.astype(float), "group": (text & image).astype(float)}


def pairs_of(items: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(index of each pair's first item, of its second), pairs in the order of their first item; ValueError naming
    the pair when it has not exactly two items."""
    members = {}
    for i, item in enumerate(items):
        members.setdefault(item["pair"], []).append(i)
    odd = next((pair for pair, rows in members.items() if len(rows) != 2), None)
    if odd is not None:
        raise ValueError(f"pair {odd!r} has {len(members[odd])} items; a pair has two")
    first, second = (np.array(side) for side in zip(*members.values()))
    return first, second


def pair_rows(items, first, scores: dict, ties: np.ndarray) -> list[dict]:
    """Rows of per-pair scores (1 or 0), per subset (the first item's) and 'all', protocol authors."""
    rows = []
    for group, mask in groups_of([items[i]["subset"] or "all" for i in first], families=False):
        for measure, score in scores.items():
            rows.append({"measure": measure, "protocol": "authors", "subset": group,
                         "accuracy": float(score[mask].mean()), "n_items": int(mask.sum()),
                         "n_ties": int(ties[mask].sum())})
    return rows


def winoground_rows(items: list[dict], image, caption, negative) -> list[dict]:
    """Rows of the Winoground measures over examples (pairs of items), per subset (the example's tag) and 'all'."""
    first, second = pairs_of(items)
    own, other = rowwise_cosine(image, caption), rowwise_cosine(image, negative)
    # first: image 0 with caption 0 (its negative caption 1); second: image 1 with caption 1 (negative caption 0)
    c0_i0, c1_i0, c1_i1, c0_i1 = own[first], other[first], own[second], other[second]
    ties = (c0_i0 == c1_i0) | (c1_i1 == c0_i1) | (c0_i0 == c0_i1) | (c1_i1 == c1_i0)
    return pair_rows(items, first, winoground_scores(c0_i0, c1_i0, c0_i1, c1_i1), ties)


def sugarcrepe_pp_scores(p1_i, p2_i, n_i, p1_p2, p1_n, p2_n) -> dict[str, np.ndarray]:
    """Per entry, SugarCrepe++'s measures (1 or 0, strictly greater) from the cosines of the image (i) and the
    two positives (p1, p2) and the negative (n)."""
    return {"image-to-text": ((p1_i > n_i) & (p2_i > n_i)).astype(float),
            "image-to-text, caption 1": (p1_i > n_i).astype(float),
            "image-to-text, caption 2": (p2_i > n_i).astype(float),
            "text-only": ((p1_p2 > p1_n) & (p1_p2 > p2_n)).astype(float)}


def sugarcrepe_pp_rows(items: list[dict], image, caption, negative) -> list[dict]:
    """Rows of SugarCrepe++'s measures over entries (pairs of items: the same image and negative, caption 1 then
    caption 2), per subset and 'all'."""
    first, second = pairs_of(items)
    p1_i, p2_i = rowwise_cosine(image[first], caption[first]), rowwise_cosine(image[second], caption[second])
    n_i = rowwise_cosine(image[first], negative[first])
    p1_p2 = rowwise_cosine(caption[first], caption[second])
    p1_n, p2_n = rowwise_cosine(caption[first], negative[first]), rowwise_cosine(caption[second], negative[first])
    ties = (p1_i == n_i) | (p2_i == n_i) | (p1_p2 == p1_n) | (p1_p2 == p2_n)
    return pair_rows(items, first, sugarcrepe_pp_scores(p1_i, p2_i, n_i, p1_p2, p1_n, p2_n), ties)


def main(snakemake) -> None:
    import pyarrow as pa

    from workflow_scripts.analyses.embedded import embedded_for_rule
    from workflow_scripts.analyses.labclip import map_text, text_maps
    from workflow_scripts.common.logs import start_job
    from workflow_scripts.common.parquet import write_table

    logger = start_job(snakemake)
    data, provenance = embedded_for_rule(snakemake)
    subsets = [item.get("subset") or snakemake.wildcards.dataset for item in data.items]
    negatives = data.negatives if data.negatives is not None else data.negative
    scoring = SCORINGS.get(snakemake.params.scoring, DEFAULT_SCORING)
    maps = text_maps({path: f" ({source})" for path, source in snakemake.params.transferred.items()},
                     snakemake.params.published_maps, data.caption.shape[1], snakemake.wildcards.model, logger)
    flat = negatives.reshape(-1, negatives.shape[-1])
    variants = [("CLIP", "none", None, data.caption, negatives)] + [
        (name, selection, trained_on, map_text(model, data.caption), map_text(model, flat).reshape(negatives.shape))
        for name, selection, _, trained_on, model in maps]

    def scored_rows(caption, negative):
        if snakemake.params.scoring == "sugarcrepe_pp":
            return sugarcrepe_pp_rows(data.items, data.image, caption, negative.reshape(caption.shape))
        if all(item.get("pair") for item in data.items):
            return winoground_rows(data.items, data.image, caption, negative.reshape(caption.shape))
        return compositional_rows(subsets, data.image, caption, negative, scoring)

    rows = [{"variant": variant, "selection": selection, "train_negatives": trained_on,
             "scoring": snakemake.params.scoring, **row}
            for variant, selection, trained_on, caption, negative in variants for row in scored_rows(caption, negative)]
    columns = list(dict.fromkeys(key for row in rows for key in row))  # macro rows have more keys than the others
    write_table(pa.Table.from_pylist([{key: row.get(key) for key in columns} for row in rows]),
                snakemake.output.compositional, provenance)
    for row in rows:
        if row["subset"] in ("all", "macro (ARO)", "mean over draws") and row["protocol"] == "authors":
            logger.info("%s, %s over %d: %.3f", row["variant"], row["measure"], row["n_items"], row["accuracy"])


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
