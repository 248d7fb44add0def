"""Paper B (CLIP Under the Microscope): object-retrieval measures of the text encoder's first-mention bias
and the image encoder's large-object bias, image-text matching conditions, and the per-object mitigation.

Everything here works on embeddings passed in as numpy arrays; nothing loads a model.
"""
from collections.abc import Sequence
from math import perm

import numpy as np

from workflow_scripts.binding import normalise
from workflow_scripts.scenes import simco_caption

MAX_OBJECTS = 5
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
AGGREGATIONS = ("mean", "sum", "max")


def render_caption(names: Sequence[str], template: str = "short") -> str:
    """The caption naming `names` in order: "short" joins them with " and ", "long" wraps each in the
    phrase for its position (at most len(LONG_PHRASES) objects)."""
    if template == "short":
        return simco_caption(names)
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


def retrieve(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """(m, k) candidate indices per query, by cosine similarity descending; ties go to the lower index."""
    similarity = normalise(np.asarray(queries, float)) @ normalise(np.asarray(candidates, float)).T
    return np.argsort(-similarity, axis=1, kind="stable")


def _top_n_accuracy(ranks: np.ndarray, objects: np.ndarray) -> float:
    """Share of rows whose n best-ranked candidates are exactly the row's n objects (in any order)."""
    n = objects.shape[1]
    return float((np.sort(ranks[:, :n], axis=1) == np.sort(objects, axis=1)).all(axis=1).mean())


def _first_share_by_position(first: np.ndarray, objects: np.ndarray) -> np.ndarray:
    """Per position p, the share of rows whose top-1 candidate is the object at position p."""
    return (first[:, None] == objects).mean(axis=0)


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
        "top_n_accuracy": _top_n_accuracy(ranks, tuples),
        "first_retrieved_share": _first_share_by_position(first, tuples),
        "not_mentioned_share": float((first[:, None] != tuples).all(axis=1).mean()),
    }


def ior_metrics(image_emb: np.ndarray, reference_emb: np.ndarray, objects: np.ndarray,
                large: np.ndarray) -> dict:
    """Image-based object retrieval: rank single-object image embeddings for each multi-object image.

    `large[i]` is the position within objects[i] of the large object, or -1 when all are the same size.
    top_n_accuracy: share of images whose n nearest references are exactly the image's n objects.
    large_first_share: among images with a large object, share whose nearest reference is the large object.
    small_first_share: (n - 1,) among those images, share whose nearest reference is the j-th small object,
        the small objects taken in their order in the scene's object list. NaN when no image has a large object.
    first_retrieved_share_by_position: (n,) as tor_metrics' first_retrieved_share, over all images.
    """
    objects = np.asarray(objects, int)
    large = np.asarray(large, int)
    m, n = objects.shape
    if large.shape != (m,) or ((large < -1) | (large >= n)).any():
        raise ValueError(f"large must be (m,) = ({m},) positions in -1..{n - 1}")
    ranks = retrieve(image_emb, reference_emb)
    first = ranks[:, 0]
    has_large = large >= 0
    if has_large.any():
        rows = np.flatnonzero(has_large)
        is_large = np.arange(n)[None, :] == large[rows, None]
        large_objects = objects[rows, large[rows]]
        small_objects = objects[rows][~is_large].reshape(len(rows), n - 1)
        large_share = float((first[rows] == large_objects).mean())
        small_share = _first_share_by_position(first[rows], small_objects)
    else:
        large_share = float("nan")
        small_share = np.full(n - 1, np.nan)
    return {
        "top_n_accuracy": _top_n_accuracy(ranks, objects),
        "large_first_share": large_share,
        "small_first_share": small_share,
        "first_retrieved_share_by_position": _first_share_by_position(first, objects),
    }


def _check_position(order: tuple, k: int) -> None:
    if not 0 <= k < len(order):
        raise ValueError(f"position k={k} outside 0..{len(order) - 1}")


def move_object(order: tuple, k: int, to: str) -> tuple:
    """`order` with the object at position k moved to the "first" or "last" slot, the rest keeping their order."""
    _check_position(order, k)
    rest = order[:k] + order[k + 1:]
    if to == "first":
        return (order[k],) + rest
    if to == "last":
        return rest + (order[k],)
    raise ValueError(f"to must be 'first' or 'last', got {to!r}")


def replace_object(order: tuple, k: int, new) -> tuple:
    """`order` with the object at position k replaced by `new`, an object the caption does not mention."""
    _check_position(order, k)
    if new in order:
        raise ValueError(f"replacement {new!r} is already in {order}")
    return order[:k] + (new,) + order[k + 1:]


def aggregate_object_embeddings(per_object: np.ndarray, how: str) -> np.ndarray:
    """(m, d) caption embeddings from (m, n, d) embeddings of each object phrase embedded alone:
    "mean" of the L2-normalised ones, "sum" of the raw ones, or elementwise "max" of the normalised ones."""
    per_object = np.asarray(per_object, float)
    if how == "mean":
        return normalise(per_object).mean(axis=1)
    if how == "sum":
        return per_object.sum(axis=1)
    if how == "max":
        return normalise(per_object).max(axis=1)
    raise ValueError(f"unknown aggregation {how!r}; expected one of {AGGREGATIONS}")
