"""Rule `tor`: text-based object retrieval (paper B) over a dataset's object names, with short and long caption
templates: for captions naming several objects, which single-object text embedding is nearest, and at which
caption position that object stands. 'split-<how>' rows embed each object alone and aggregate (the mitigation)."""
import sys
from collections.abc import Callable, Sequence
from math import perm
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import numpy as np

from workflow_scripts.analyses.retrieval import (
    MAX_OBJECTS,
    aggregate_object_embeddings,
    first_share_by_position,
    retrieve,
    top_n_accuracy,
)

LONG_PREFIX = "This vibrant display features"
# One descriptive phrase per caption position, after the paper's long TOR template.
LONG_PHRASES = (
    "a stunning {} with its radiant glow",
    "a mesmerizing {} with bold contours",
    "an elegant {} with intricate details",
    "a striking {} with a polished finish",
    "a graceful {} with soft shadows",
)
TEMPLATES = ("short", "long")


def render_caption(names: Sequence[str], template: str = "short") -> str:
    """The caption naming `names` in order: "short" joins them with " and ", "long" wraps each in the
    phrase for its position (at most len(LONG_PHRASES) objects)."""
    if template == "short":
        return " and ".join(names)
    if template != "long":
        raise ValueError(f"unknown template {template!r}; expected one of {TEMPLATES}")
    if not 1 <= len(names) <= len(LONG_PHRASES):
        raise ValueError(f"long template takes 1..{len(LONG_PHRASES)} objects, got {len(names)}")
    phrases = [phrase.format(name) for phrase, name in zip(LONG_PHRASES, names)]
    if len(phrases) == 1:
        body = phrases[0]
    elif len(phrases) == 2:
        body = f"{phrases[0]} and {phrases[1]}"
    else:
        body = ", ".join(phrases[:-1]) + f", and {phrases[-1]}"
    return f"{LONG_PREFIX} {body}."


def _unrank_permutation(rank: int, k: int, n: int) -> tuple[int, ...]:
    """The `rank`-th ordered n-tuple of distinct indices from range(k), in lexicographic order
    (the order itertools.permutations yields)."""
    remaining = list(range(k))
    out = []
    for i in range(n):
        block = perm(k - i - 1, n - i - 1)
        digit, rank = divmod(rank, block)
        out.append(remaining.pop(digit))
    return tuple(out)


def tor_captions(objects: Sequence[str], n: int, template: str = "short", limit: int | None = None,
                 seed: int = 0) -> list[tuple[str, tuple[int, ...]]]:
    """(caption, object-index tuple) for every ordered n-tuple of distinct objects, in lexicographic order;
    with `limit`, a seeded random subset of that many tuples (still in lexicographic order)."""
    k = len(objects)
    if not 2 <= n <= MAX_OBJECTS:
        raise ValueError(f"n must be in 2..{MAX_OBJECTS}, got {n}")
    if n > k:
        raise ValueError(f"n={n} exceeds the number of objects ({k})")
    if template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}; expected one of {TEMPLATES}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be non-negative, got {limit}")
    total = perm(k, n)
    if limit is None or limit >= total:
        ranks = range(total)
    else:
        ranks = np.sort(np.random.default_rng(seed).choice(total, size=limit, replace=False)).tolist()
    tuples = [_unrank_permutation(r, k, n) for r in ranks]
    return [(render_caption([objects[i] for i in t], template), t) for t in tuples]


def tor_metrics(caption_emb: np.ndarray, object_emb: np.ndarray, tuples: np.ndarray) -> dict:
    """Text-based object retrieval: rank the single-object text embeddings for each caption embedding.

    top_n_accuracy: share of captions whose n nearest objects are exactly the caption's n objects.
    first_retrieved_share: (n,) share of captions whose nearest object is the one at each caption position.
    not_mentioned_share: share of captions whose nearest object is not in the caption.
    """
    tuples = np.asarray(tuples, int)
    ranks = retrieve(caption_emb, object_emb)
    first = ranks[:, 0]
    return {
        "top_n_accuracy": top_n_accuracy(ranks, tuples),
        "first_retrieved_share": first_share_by_position(first, tuples),
        "not_mentioned_share": float((first[:, None] != tuples).all(axis=1).mean()),
    }


def tor_rows(encode_text: Callable[[list[str]], np.ndarray], objects: Sequence[str], tor_cfg: dict,
             seed: int) -> list[dict]:
    """One row per (template, object count, method) over the object names `objects`: 'caption' embeds the whole
    caption; 'split-<how>' embeds each object's phrase alone and aggregates them (the mitigation)."""
    objects = list(objects)
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


def main(snakemake) -> None:
    import pyarrow as pa

    from workflow_scripts.common.logs import log_to
    from workflow_scripts.common.parquet import write_table
    from workflow_scripts.datasets.items import read_vocabulary
    from workflow_scripts.models.embed import configured_text_encoder

    logger = log_to(snakemake.log[0])
    encode_text, provenance = configured_text_encoder(snakemake)

    objects = read_vocabulary(snakemake.input.item_table).objects
    rows = tor_rows(encode_text, objects, snakemake.params.tor, snakemake.params.seed)
    provenance = {**provenance, "dataset": snakemake.wildcards.dataset, "tor": snakemake.params.tor}
    write_table(pa.Table.from_pylist(rows), snakemake.output.tor, provenance)
    logger.info("%d TOR rows over %d object names", len(rows), len(objects))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
