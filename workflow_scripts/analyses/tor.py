"""Rule `tor`: text-based object retrieval (paper B) over a dataset's object names: for captions naming several
objects, which single-name text embedding is nearest, and at which caption slot that name stands.

Two protocols, both with the short template (names joined by " and ") and the authors' long template:
- "authors", as their code runs it: one caption per combination of n names, the names in vocabulary order (so
  slot 1 always holds the name that comes earliest in the list: a confound); a caption is top-n correct when each
  of its n nearest names occurs in the caption as a substring ("dog" counts inside "hot dog").
- "clean": every combination in each of its n cyclic orders, so every name stands at every slot equally often;
  top-n correct when the n nearest names are exactly the caption's names.
- "size_order" (where the vocabulary gives names a size category, as `names: coco` does): captions of one large and
  n - 1 small names, each in two orders, "large first" and "large last" (rows "size_order, large first|last"), top-n
  correct as in "clean": does the first slot win whatever is named there, or does the large object?
All report the slot shares over all captions and among the top-n-correct ones.
'split-<how>' rows embed each bare name alone and aggregate them (the mitigation; "authors_sum" is the authors' Sum,
the sum of the L2-normalised embeddings).

By default every caption a protocol defines is embedded, as the authors' code does (C(18,4) = 3,060 and C(18,5) =
8,568 SIMCO captions; C(90,3) = 117,480 COCO ones); `captions_per_count` makes sampling an explicit choice, and each
row says whether it was sampled ('sampled', 'n_possible'). Each distinct text is embedded once per object count.
"""
import sys
from collections.abc import Callable, Sequence
from itertools import combinations
from math import comb
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import numpy as np

from workflow_scripts.analyses.retrieval import MAX_OBJECTS, aggregate_object_embeddings, retrieve

PROTOCOLS = ("authors", "clean", "size_order")
SIZE_ORDERS = ("large first", "large last")
TEMPLATES = ("short", "long")
# The authors' long template: for n names, the text up to the end of the n-th phrase, which then ends with ".".
LONG_TEMPLATE = (
    "This vibrant display features a stunning {} with its radiant glow",
    ", a mesmerizing {} with bold contours",
    ", an enchanting {} that fits perfectly with its graceful form",
    ", a dazzling {} with brilliant tones and intricate patterns",
    ", and an alluring {} that completes the ensemble with its seamless fusion and distinct shape",
)
ENUMERATE_UP_TO = 2_000_000  # combinations listed in full below this count, sampled by rejection above it
MAX_CAPTIONS = 5_000_000  # captions per job beyond which a full enumeration is refused (hours even on a GPU)


def render_caption(names: Sequence[str], template: str = "short") -> str:
    """The caption naming `names` in order: "short" joins them with " and "; "long" is the authors' long template
    for 2..5 names."""
    if template == "short":
        return " and ".join(names)
    if template != "long":
        raise ValueError(f"unknown template {template!r}; expected one of {TEMPLATES}")
    if not 2 <= len(names) <= len(LONG_TEMPLATE):
        raise ValueError(f"the long template takes 2..{len(LONG_TEMPLATE)} names, got {len(names)}")
    return "".join(part.format(name) for part, name in zip(LONG_TEMPLATE, names)) + "."


def combination_tuples(k: int, n: int, limit: int | None = None, seed: int = 0) -> list[tuple[int, ...]]:
    """Index tuples of every n-combination of range(k), each in increasing (vocabulary) order, in the order
    itertools.combinations yields them; with `limit`, a seeded random subset of that many (same order)."""
    if not 2 <= n <= MAX_OBJECTS:
        raise ValueError(f"n must be in 2..{MAX_OBJECTS}, got {n}")
    if n > k:
        raise ValueError(f"n={n} exceeds the number of names ({k})")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be positive, got {limit}")
    total = comb(k, n)
    if limit is None or limit >= total:
        return list(combinations(range(k), n))
    rng = np.random.default_rng(seed)
    if total <= ENUMERATE_UP_TO:
        every = list(combinations(range(k), n))
        return [every[i] for i in np.sort(rng.choice(total, size=limit, replace=False))]
    chosen = set()
    while len(chosen) < limit:
        chosen.add(tuple(sorted(int(i) for i in rng.choice(k, size=n, replace=False))))
    return sorted(chosen)


def protocol_tuples(protocol: str, k: int, n: int, limit: int | None, seed: int) -> list[tuple[int, ...]]:
    """The captions' name-index tuples: "authors", combinations in vocabulary order (at most `limit`); "clean",
    each of at most ceil(limit / n) combinations in its n cyclic orders (balanced: every name at every slot once
    per combination)."""
    if protocol == "authors":
        return combination_tuples(k, n, limit, seed)
    if protocol != "clean":
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    chosen = combination_tuples(k, n, None if limit is None else -(-limit // n), seed)
    return [c[r:] + c[:r] for c in chosen for r in range(n)]


def possible_captions(protocol: str, k: int, n: int, sizes: Sequence[str] = ()) -> int:
    """How many captions `protocol` defines for n of k names: every combination (authors), each in its n cyclic
    orders (clean), or, per order of size_order, every set of one large and n - 1 small names."""
    if protocol == "authors":
        return comb(k, n)
    if protocol == "clean":
        return n * comb(k, n)
    if protocol == "size_order":
        return sizes.count("large") * comb(sizes.count("small"), n - 1)
    raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")


def planned_captions(protocol: str, k: int, n: int, sizes: Sequence[str], limit: int | None) -> int:
    """How many captions tor_rows embeds per template for `protocol` (size_order: both orders together), as
    protocol_tuples and size_order_tuples draw them under `limit`."""
    possible = possible_captions(protocol, k, n, sizes)
    if limit is None:
        return len(SIZE_ORDERS) * possible if protocol == "size_order" else possible
    if protocol == "authors":
        return min(possible, limit)
    if protocol == "clean":
        return n * min(comb(k, n), -(-limit // n))  # whole combinations, each in its n rotations
    return len(SIZE_ORDERS) * min(possible, -(-limit // 2))


def check_caption_budget(tor_cfg: dict, k: int, sizes: Sequence[str], where: str) -> int:
    """The number of captions the settings ask for over k names (per template); ValueError naming
    paper_b.tor.captions_per_count when a full enumeration would exceed MAX_CAPTIONS."""
    limit, sizes = tor_cfg["captions_per_count"], list(sizes)
    total = sum(planned_captions(protocol, k, n, sizes, limit) for protocol in tor_cfg["protocols"]
                for n in tor_cfg["objects_per_caption"] if n <= k)
    if limit is None and total > MAX_CAPTIONS:
        raise ValueError(f"{where}: every TOR caption over {k} names is {total:,} captions per template (more than "
                         f"{MAX_CAPTIONS:,}); set paper_b.tor.captions_per_count to sample that many per protocol "
                         "and name count (the table then marks those rows as sampled), or list fewer "
                         "objects_per_caption")
    return total


def size_order_tuples(sizes: Sequence[str], n: int, limit: int | None, seed: int) -> dict[str, list[tuple]]:
    """{"large first": tuples, "large last": the same names with the large one moved to the end}: name-index tuples
    of one "large" and n - 1 "small" names (`sizes` aligned with the names), at most ceil(limit / 2) distinct sets
    drawn with a seeded generator (every set where there are fewer); empty lists where a size lacks names."""
    large = [i for i, size in enumerate(sizes) if size == "large"]
    small = [i for i, size in enumerate(sizes) if size == "small"]
    if not large or len(small) < n - 1:
        return {order: [] for order in SIZE_ORDERS}
    total = len(large) * comb(len(small), n - 1)
    wanted = total if limit is None else min(total, -(-limit // 2))
    rng, chosen = np.random.default_rng(seed), set()
    while len(chosen) < wanted:
        chosen.add((int(rng.choice(large)), *sorted(int(i) for i in rng.choice(small, n - 1, replace=False))))
    sets = sorted(chosen)
    return {"large first": sets, "large last": [t[1:] + t[:1] for t in sets]}


def tor_metrics(caption_emb: np.ndarray, name_emb: np.ndarray, tuples: np.ndarray, protocol: str,
                names: Sequence[str] | None = None, captions: Sequence[str] | None = None) -> dict:
    """Rank the single-name embeddings for each caption embedding. Returns per caption:
    top_n_correct (bool), first_slot (slot of the nearest name in the caption, -1 when not in it); and the counts.
    Under "authors" a caption is top-n correct when each of its n nearest `names` is a substring of its text in
    `captions`; under "clean" when they are exactly its names."""
    tuples = np.asarray(tuples, int)
    n = tuples.shape[1]
    ranks = retrieve(caption_emb, name_emb)
    if protocol == "authors":
        if names is None or captions is None:
            raise ValueError("the authors' top-n test needs the names and caption texts")
        correct = np.array([all(names[j] in text for j in row[:n]) for row, text in zip(ranks, captions)])
    else:
        correct = (np.sort(ranks[:, :n], axis=1) == np.sort(tuples, axis=1)).all(axis=1)
    hit = ranks[:, :1] == tuples
    first_slot = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
    return {"top_n_correct": correct, "first_slot": first_slot}


def tor_rows(encode_text: Callable[[list[str]], np.ndarray], names: Sequence[str], tor_cfg: dict,
             seed: int, sizes: Sequence[str] = ()) -> list[dict]:
    """One row per (protocol, template, name count, method) over the names `names`: 'caption' embeds the whole
    caption; 'split-<how>' embeds each bare name alone and aggregates (the mitigation, the same for every
    template, so it is given once, with the short template). `sizes`: each name's size category ("large",
    "small" or ""), for the size_order protocol, which gives no rows without them. Each row says how many captions
    the protocol defines ('n_possible') and whether its captions are a sample of them ('sampled')."""
    names, sizes = list(names), list(sizes)
    name_emb = encode_text(names)
    limit = tor_cfg["captions_per_count"]
    rows = []
    for n in tor_cfg["objects_per_caption"]:
        encode = memoised(encode_text)  # the clean protocol's first rotation is the authors' caption: embed it once
        for protocol in tor_cfg["protocols"]:
            if protocol == "size_order":
                orders = {f"size_order, {order}": tuples for order, tuples in
                          size_order_tuples(sizes, n, limit, seed).items() if tuples}
            else:
                orders = {protocol: protocol_tuples(protocol, len(names), n, limit, seed)}
            possible = possible_captions(protocol, len(names), n, sizes)
            for label, tuples in orders.items():
                sample = {"n_possible": possible, "sampled": len(tuples) < possible}
                rows += [{**row, **sample} for row in
                         protocol_rows(encode, names, name_emb, np.array(tuples), protocol, label, tor_cfg)]
    return rows


def memoised(encode_text: Callable[[list[str]], np.ndarray]) -> Callable[[list[str]], np.ndarray]:
    """`encode_text` that embeds each distinct text once over all its calls (the vectors are kept)."""
    known: dict[str, np.ndarray] = {}

    def encode(texts: list[str]) -> np.ndarray:
        new = sorted(set(texts) - known.keys())
        if new:
            known.update(zip(new, encode_text(new)))
        return np.stack([known[text] for text in texts])

    return encode


def protocol_rows(encode_text, names, name_emb, tuples, protocol, label, tor_cfg) -> list[dict]:
    """The rows of one protocol's captions (`tuples`), per template and method, labelled `label`."""
    rows = []
    for template in tor_cfg["templates"]:
        texts = [render_caption([names[i] for i in t], template) for t in tuples]
        methods = {"caption": encode_text(texts)}
        if template == "short":
            for how in tor_cfg["aggregations"]:
                methods[f"split-{how}"] = aggregate_object_embeddings(name_emb[tuples], how)
        for method, caption_emb in methods.items():
            rows.append({**tor_row(protocol, template, method, caption_emb, name_emb, tuples, names, texts),
                         "protocol": label})
    return rows


def tor_row(protocol, template, method, caption_emb, name_emb, tuples, names, texts) -> dict:
    n = tuples.shape[1]
    metrics = tor_metrics(caption_emb, name_emb, tuples, protocol, names, texts)
    correct, first_slot = metrics["top_n_correct"], metrics["first_slot"]
    return {"protocol": protocol, "template": template, "n_objects": n, "method": method,
            "n_names": len(names), "n_captions": len(tuples), "top_n_accuracy": float(correct.mean()),
            "not_mentioned_share": float((first_slot == -1).mean()),
            **shares_by_slot(first_slot, n, "first_retrieved_share"),
            "n_top_n_correct": int(correct.sum()),
            **shares_by_slot(first_slot[correct], n, "correct_first_retrieved_share")}


def shares_by_slot(first_slot: np.ndarray, n: int, prefix: str) -> dict:
    """{prefix_p: share of these captions whose nearest name stands at slot p}, p = 1..MAX_OBJECTS: NaN past the
    caption's n slots, and NaN everywhere when there is no caption."""
    return {f"{prefix}_{p + 1}": float((first_slot == p).mean()) if p < n and first_slot.size else float("nan")
            for p in range(MAX_OBJECTS)}


def main(snakemake) -> None:
    import pyarrow as pa

    from workflow_scripts.common.logs import start_job
    from workflow_scripts.common.parquet import write_table
    from workflow_scripts.datasets.items import read_vocabulary
    from workflow_scripts.models.embed import configured_text_encoder

    logger = start_job(snakemake)
    vocabulary = read_vocabulary(snakemake.input.item_table)
    names = vocabulary.objects
    total = check_caption_budget(snakemake.params.tor, len(names), vocabulary.sizes,
                                 f"datasets.{snakemake.wildcards.dataset}")
    logger.info("TOR over %d names: %d captions per template", len(names), total)
    encode_text, provenance = configured_text_encoder(snakemake, progress=True)
    rows = tor_rows(encode_text, names, snakemake.params.tor, snakemake.params.seed, vocabulary.sizes)
    provenance = {**provenance, "dataset": snakemake.wildcards.dataset, "tor": snakemake.params.tor}
    write_table(pa.Table.from_pylist(rows), snakemake.output.tor, provenance)
    logger.info("%d TOR rows over %d object names", len(rows), len(names))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
