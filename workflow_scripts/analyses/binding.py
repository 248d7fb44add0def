"""Rule `binding`: cross-modal binding diagnostics of CLIP and of each LABCLIP map (ours and published ones) on
the test split: does similarity prefer the right binding of attributes to objects?

Every variant gets one row per protocol (similarity.py defines the binding rules):

- `authors`: the authors' binding rule for the dataset's kind (CLEVR: L2-normalised image . raw text, ties correct,
  scenes whose negative binds as the caption left out; other kinds: cosine, ties wrong, nothing left out); Recall@k
  with the same similarity and ties over the authors' candidates, their pair labels of the whole vocabulary
  (authors_candidates: CLEVR one wording per binding, PUG:SPAR's two texture pairs, PUG:SPARE both word orders);
  the probe-weight cosine of the configured probe solver's weights (for SGD the last epoch's, whose image and text
  probes share their seeded initialisation), as the authors' style of it.
- `clean`: cosine, ties half, items without a distinct negative left out; Recall@k by cosine, ties broken at
  random, over the test split's bindings, one wording each (binding_candidates); the probe-weight cosine of the
  unique probe target (probes.fit_unique_probe), with its bootstrap spread.

Each row names its Recall@k candidate set (`recall_candidates`) and counts it (`n_recall_captions`) and the images
ranked (`n_recall_images`).

A LABCLIP map's text is L2-normalised, so for it the two similarities coincide and the protocols differ only in
ties and exclusions (and in the probe-weight cosine). LABCLIP maps come in two epoch selections (`last_epoch`, the
authors', and `best_val`), each a variant row of its own with the epoch it kept.
"""
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
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
from workflow_scripts.datasets.items import PAIR_LABELS, Vocabulary

RECALL_KS = (1, 5, 10)
DISTINCT_STRINGS = "the test split's distinct caption strings (free text: no grammar to tell a binding)"
NO_PAIR_LABELS = "the test split's distinct caption strings (no attribute grammar, so no pair labels of the authors')"


@dataclass(frozen=True)
class Variant:
    """A text side to test: CLIP's own text embeddings, or a LABCLIP map of them (with its epoch selection)."""

    name: str  # "CLIP", "LABCLIP-HNB", "published:<name>"
    map_text: Callable = lambda text: text
    selection: str = "none"  # "last_epoch" or "best_val" for our maps; "released" for published ones
    epoch: int | None = None
    train_negatives: str | None = None  # what a map trained on (labclip.train_negatives_text); None for CLIP


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


@dataclass(frozen=True)
class RecallCandidates:
    """What Recall@k ranks: the candidate captions, the test items ranked and each one's right answer."""

    texts: list[str]  # the candidate captions
    images: np.ndarray  # the ranked test items (indices into the test split)
    correct: np.ndarray  # per ranked item, the index of its right answer in `texts`
    description: str  # the candidate set in words (the rows' `recall_candidates`)


def distinct_string_candidates(items: list[dict], description: str = DISTINCT_STRINGS) -> RecallCandidates:
    """Every item ranked against the distinct caption strings of `items` (caption_candidates): where captions are
    free text, the only candidate set there is; two word orders of one binding are two candidates."""
    rows, correct = caption_candidates(items)
    return RecallCandidates([items[i]["caption"] for i in rows], np.arange(len(items)), correct, description)


def pair_labels(vocabulary: Vocabulary) -> list[tuple[str, str, str, str]]:
    """The authors' Recall@k candidates over two-object captions, (attribute 1, object 1, attribute 2, object 2), in
    the vocabulary's order of attributes and objects; vocabulary.pair_labels says which set:

    - "unordered" (their CLEVR get_pair_labels): every (a1, o1, a2, o2) of the vocabulary with o1 != o2 (a1 == a2
      allowed), of (a1, o1, a2, o2) and (a2, o2, a1, o1) only the first met in loops over a1, o1, a2, o2: one wording
      per set of attribute-object pairs (their loops run over Python sets, so their wording is arbitrary; ours
      follows the vocabulary's order). 8 colours x 3 shapes: 192.
    - "ordered" (their PUG:SPARE loader): every (a1, o1, a2, o2) with o1 != o2 and a1 != a2, both word orders.
      12 animals x 8 textures: 7,392.
    - "attribute_pairs" (their PUG:SPAR loader): for every o1 != o2, (first, o1, second, o2) for each (first,
      second) of vocabulary.attribute_pairs, one wording per binding. 32 animals, 2 pairs: 1,984."""
    attributes, objects, kind = vocabulary.attributes, vocabulary.objects, vocabulary.pair_labels
    if kind == "unordered":
        labels, seen = [], set()
        for label in ((a1, o1, a2, o2) for a1 in attributes for o1 in objects for a2 in attributes for o2 in objects
                      if o1 != o2):
            if (label[2], label[3], label[0], label[1]) not in seen:
                seen.add(label)
                labels.append(label)
        return labels
    if kind == "ordered":
        return [(a1, o1, a2, o2) for a1 in attributes for o1 in objects for a2 in attributes for o2 in objects
                if o1 != o2 and a1 != a2]
    if kind == "attribute_pairs":
        return [(first, o1, second, o2) for o1 in objects for o2 in objects if o1 != o2
                for first, second in vocabulary.attribute_pairs]
    raise ValueError(f"vocabulary pair_labels {kind!r}: expected one of {PAIR_LABELS}")


def pair_label_description(vocabulary: Vocabulary) -> str:
    """The authors' candidate set of `vocabulary` in words."""
    if vocabulary.pair_labels == "unordered":
        return ("every binding of two attribute-object pairs of the vocabulary (two objects), one wording each "
                "(the authors' CLEVR pair labels)")
    if vocabulary.pair_labels == "ordered":
        return ("every ordered pair label of the vocabulary (two objects, two attributes), both word orders (the "
                "authors' PUG:SPARE loader)")
    pairs = ", ".join(f"{first}/{second}" for first, second in vocabulary.attribute_pairs)
    return (f"every ordered pair of objects of the vocabulary with each attribute pair ({pairs}), one wording per "
            "binding (the authors' PUG:SPAR loader)")


def authors_candidates(items: list[dict], vocabulary: Vocabulary) -> RecallCandidates:
    """The authors' Recall@k: the pair labels of the whole vocabulary (pair_labels), not only of the test split, as
    captions in its grammar ("{a1} {o1} and {a2} {o2}"); ranked are the two-object items (the authors' Recall has
    candidates for two-object scenes only) whose pair label is a candidate, in the caption's order or else reversed
    (their lookup), the right answer that candidate. Where the vocabulary has no attribute grammar (free text, or
    objects only) the authors' Recall has no candidate set: the test split's distinct caption strings."""
    if vocabulary.phrase is None or "{attribute}" not in vocabulary.phrase:
        return distinct_string_candidates(items, NO_PAIR_LABELS)
    labels = pair_labels(vocabulary)
    index = {label: i for i, label in enumerate(labels)}
    ranked, correct = [], []
    for i, item in enumerate(items):
        pairs = vocabulary.parse(item["caption"])
        if len(pairs) != 2:
            continue
        (a1, o1), (a2, o2) = pairs
        found = index.get((a1, o1, a2, o2), index.get((a2, o2, a1, o1)))
        if found is not None:
            ranked.append(i)
            correct.append(found)
    return RecallCandidates([vocabulary.caption([o1, o2], [a1, a2]) for a1, o1, a2, o2 in labels],
                            np.array(ranked, dtype=int), np.array(correct, dtype=int),
                            pair_label_description(vocabulary))


def binding_candidates(items: list[dict], vocabulary: Vocabulary) -> RecallCandidates:
    """The clean Recall@k: every item ranked against the distinct bindings of `items` (the test split), each worded
    as the caption of the first item with that binding, the right answer its own caption's binding. A caption's
    word order is not in its image, so two word orders of one binding are one answer, not two candidates that
    compete (ranking the distinct caption strings, as this rule once did, made an image's Recall depend on which
    wordings the split happens to hold); and the set is the split evaluated, where the authors' is their whole
    vocabulary's pair labels. Free text: the distinct caption strings."""
    if vocabulary.phrase is None:
        return distinct_string_candidates(items)
    index, texts = {}, []
    for item in items:
        key = vocabulary.binding(item["caption"])
        if key not in index:
            index[key] = len(texts)
            texts.append(item["caption"])
    return RecallCandidates(texts, np.arange(len(items)),
                            np.array([index[vocabulary.binding(item["caption"])] for item in items], dtype=int),
                            "the test split's bindings, one wording each")


def candidate_embeddings(texts: list[str], data: Embedded, encode_text: Callable | None = None
                         ) -> tuple[np.ndarray, int]:
    """((len(texts), d) text embeddings of the candidate captions, how many were borrowed): a caption's embedding
    where the data holds it (an item's caption or negative, any split), the others from `encode_text` (texts ->
    embeddings, the rule's model). Without an encoder (precomputed embeddings only) a caption the data lacks
    borrows the embedding of a data text that binds alike (its other word order), counted; ValueError naming the
    caption where none does."""
    known = {}
    for i, item in enumerate(data.items):
        known.setdefault(item["caption"], data.caption[i])
        negatives = item["negative_captions"] if data.negatives is not None else item["negative_captions"][:1]
        for j, text in enumerate(negatives):
            known.setdefault(text, data.negatives[i, j] if data.negatives is not None else data.negative[i])
    missing = sorted({t for t in texts if t not in known})
    borrowed = 0
    if missing and encode_text is not None:
        known.update(zip(missing, np.asarray(encode_text(missing), dtype=np.float64)))
    elif missing:
        alike = {}
        for text, vector in known.items():
            alike.setdefault(data.vocabulary.binding(text), vector)
        for text in missing:
            if data.vocabulary.binding(text) not in alike:
                raise ValueError(f"no embedding of candidate caption {text!r} nor of a text that binds alike: "
                                 "Recall@k over these candidates needs a text encoder")
            known[text] = alike[data.vocabulary.binding(text)]
        borrowed = len(missing)
    dim = data.caption.shape[1]
    return np.array([known[t] for t in texts], dtype=np.float64).reshape(len(texts), dim), borrowed


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


def recall_candidates(items: list[dict], vocabulary: Vocabulary) -> dict[str, RecallCandidates]:
    """Per protocol, the Recall@k candidates of the test items `items`."""
    return {"authors": authors_candidates(items, vocabulary), "clean": binding_candidates(items, vocabulary)}


def candidate_recall(image, candidates: RecallCandidates, candidate_text, rule: BindingRule,
                     ks=RECALL_KS) -> dict[int, float]:
    """Recall@k of the test images `image` (all of the split, in its order) over `candidates`, whose captions'
    text embeddings (a variant's) are `candidate_text`, by `rule`'s similarity and ties; NaN when none is ranked."""
    if not len(candidates.images):
        return dict.fromkeys(ks, float("nan"))
    return recall_at_k(np.asarray(image)[candidates.images], candidate_text, candidates.correct, ks, rule.similarity,
                       rule.tie)


def binding_rows(data: Embedded, variants: list[Variant], probes_cfg: dict, probe_weights: dict, seed: int,
                 kind: str = "clevr", cosine_cfg: dict | None = None, encode_text: Callable | None = None):
    """Test-split binding diagnostics: one row per variant and protocol (columns in the module docstring's terms;
    every share with its count), and the per-item cosine between each test caption and its hard negative.
    `kind` is the dataset's kind, which chooses the authors' binding rule; `encode_text` embeds the Recall@k
    candidate captions the data has no embedding of (candidate_embeddings)."""
    cosine_cfg = cosine_cfg or {"l2": UNIQUE_L2, "resamples": 0}
    is_test = data.split == "test"
    test = data.subset(is_test)
    distinct = has_distinct_negative(test.items, data.vocabulary)
    pairs = twin_pairs(test.items, data.vocabulary)
    candidates = recall_candidates(test.items, data.vocabulary)
    texts = [t for protocol in PROTOCOLS for t in candidates[protocol].texts]
    vectors, borrowed = candidate_embeddings(texts, data, encode_text)
    starts = np.cumsum([0] + [len(candidates[protocol].texts) for protocol in PROTOCOLS])
    candidate_text = {protocol: vectors[starts[i]:starts[i + 1]] for i, protocol in enumerate(PROTOCOLS)}
    if borrowed:
        candidates["authors"] = replace(candidates["authors"], description=candidates["authors"].description + (
            f"; {borrowed} without an embedding took that of the other word order (no text encoder)"))
    probe_cosine = probe_cosines(data, variants, probes_cfg, probe_weights, cosine_cfg, seed)
    rows, cosines = [], []
    for variant in variants:
        caption, negative = variant.map_text(test.caption), variant.map_text(test.negative)
        pair_cosine = rowwise_cosine(caption, negative)
        mapped = {protocol: variant.map_text(text) for protocol, text in candidate_text.items()}
        for protocol in PROTOCOLS:
            rule = binding_rule(protocol, kind)
            accuracy, n_scored = binding_accuracy(rule, test.image, caption, negative, distinct)
            scored = rule.scored(distinct)
            ranked = candidates[protocol]
            recall = candidate_recall(test.image, ranked, mapped[protocol], rule)
            cosine = probe_cosine[variant.name, variant.selection]
            boot = cosine["clean"][1] if protocol == "clean" else []
            rows.append({
                "dataset_kind": kind, "protocol": protocol, "variant": variant.name,
                "selection": variant.selection, "epoch": variant.epoch, "train_negatives": variant.train_negatives,
                "similarity": rule.similarity, "ties": rule.ties,
                "n_test": len(test.items), "n_same_binding": int((~distinct).sum()), "n_scored": n_scored,
                "image_to_text_accuracy": accuracy,
                "n_twin_pairs": len(pairs),
                "text_to_image_accuracy": text_to_image_accuracy(test.image, caption, pairs, rule),
                "n_recall_images": len(ranked.images), "n_recall_captions": len(ranked.texts),
                "recall_candidates": ranked.description,
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


def lazy_text_encoder(snakemake, weights: str) -> Callable:
    """models.embed.configured_text_encoder's texts -> embeddings, its model loaded at the first call (only where
    some Recall@k candidate caption has no embedding yet); ValueError when its weights are not those of the
    embeddings (`weights`)."""
    loaded = []

    def encode_text(texts):
        if not loaded:
            from workflow_scripts.models.embed import configured_text_encoder

            encode, provenance = configured_text_encoder(snakemake)
            if provenance["weights"] != weights:
                raise ValueError(f"the text encoder's weights ({provenance['weights']}) are not those of the "
                                 f"embeddings ({weights})")
            loaded.append(encode)
        return loaded[0](texts)

    return encode_text


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
    variants = [Variant("CLIP")] + [Variant(name, lambda text, model=model: map_text(model, text), selection, epoch,
                                            negatives) for name, selection, epoch, negatives, model in maps]
    rows, cosines = binding_rows(data, variants, snakemake.params.probes,
                                 load_probe_weights(snakemake.input.probe_weights), snakemake.params.seed,
                                 snakemake.params.kind, snakemake.params.probe_cosine,
                                 lazy_text_encoder(snakemake, data.weights))
    rows = rows.add_column(1, "paper_setting", pa.array([snakemake.params.paper_setting] * rows.num_rows, pa.string()))
    write_table(rows, snakemake.output.binding, provenance)
    write_table(cosines, snakemake.output.cosines, provenance)
    for row in rows.to_pylist():
        logger.info("%s", row)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
