"""Retrieval by cosine similarity, the caption edits and the per-object aggregation (paper B's mitigation),
shared by the TOR, IOR and matching analyses. Works on numpy arrays; nothing here loads a model."""
import numpy as np

from workflow_scripts.analyses.similarity import normalise

MAX_OBJECTS = 5
AGGREGATIONS = ("authors_sum", "max")


def retrieve(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """(m, k) candidate indices per query, by cosine similarity descending; ties go to the lower index."""
    similarity = normalise(np.asarray(queries, float)) @ normalise(np.asarray(candidates, float)).T
    return np.argsort(-similarity, axis=1, kind="stable")


def top_n_accuracy(ranks: np.ndarray, objects: np.ndarray) -> float:
    """Share of rows whose n best-ranked candidates are exactly the row's n objects (in any order)."""
    n = objects.shape[1]
    return float((np.sort(ranks[:, :n], axis=1) == np.sort(objects, axis=1)).all(axis=1).mean())


def first_share_by_position(first: np.ndarray, objects: np.ndarray) -> np.ndarray:
    """Per position p, the share of rows whose top-1 candidate is the object at position p."""
    return (first[:, None] == objects).mean(axis=0)


def large_position(item: dict) -> int:
    """Position in the object list of the scene's only large object, or -1 when not exactly one is large."""
    large = [i for i, o in enumerate(item["objects"]) if o["size"] == "large"]
    return large[0] if len(large) == 1 else -1


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
    """(m, d) caption embeddings from (m, n, d) embeddings of each object phrase embedded alone: "authors_sum",
    the sum of the L2-normalised ones (paper B's Sum, as the authors' code adds them), or the elementwise "max" of
    the normalised ones. (A sum of raw, unnormalised embeddings is another method, which weights each name by its
    embedding's norm; it is not offered, so that no row named "sum" differs from the authors'.)"""
    per_object = normalise(np.asarray(per_object, float))
    if how == "authors_sum":
        return per_object.sum(axis=1)
    if how == "max":
        return per_object.max(axis=1)
    raise ValueError(f"unknown aggregation {how!r}; expected one of {AGGREGATIONS}")
