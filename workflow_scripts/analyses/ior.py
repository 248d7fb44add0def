"""Rule `ior`: image-based object retrieval (paper B): for multi-object images, which single-object reference
image (the dataset's "<name>-references") is nearest, the large object or a small one, overall and by the large
object's caption position."""
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import numpy as np

from workflow_scripts.analyses.retrieval import (
    MAX_OBJECTS,
    first_share_by_position,
    large_position,
    retrieve,
    top_n_accuracy,
)


RANKED_AMONG = ("own_objects", "all_references")  # the authors' per-image share, and the global top-1


def ior_metrics(image_emb: np.ndarray, reference_emb: np.ndarray, objects: np.ndarray,
                large: np.ndarray, ranked_among: str = "all_references") -> dict:
    """Image-based object retrieval: rank single-object image embeddings for each multi-object image.

    `large[i]` is the position within objects[i] of the large object, or -1 when all are the same size.
    `ranked_among` says which reference counts as an image's first: "all_references", the nearest of every
    reference (an absent object may win, and then no object of the image is counted); "own_objects", the nearest
    of the image's own objects' references, as the authors' code counts it (the shares then sum to 1).
    top_n_accuracy: share of images whose n nearest references are exactly the image's n objects.
    large_first_share: among images with a large object, share whose first reference is the large object.
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
    if ranked_among == "all_references":
        first = ranks[:, 0]
    elif ranked_among == "own_objects":
        position = np.argsort(ranks, axis=1)  # position[i, r]: the rank of reference r for image i
        first = objects[np.arange(m), np.take_along_axis(position, objects, axis=1).argmin(axis=1)]
    else:
        raise ValueError(f"ranked_among must be one of {RANKED_AMONG}, not {ranked_among!r}")
    has_large = large >= 0
    if has_large.any():
        rows = np.flatnonzero(has_large)
        is_large = np.arange(n)[None, :] == large[rows, None]
        large_objects = objects[rows, large[rows]]
        small_objects = objects[rows][~is_large].reshape(len(rows), n - 1)
        large_share = float((first[rows] == large_objects).mean())
        small_share = first_share_by_position(first[rows], small_objects)
    else:
        large_share = float("nan")
        small_share = np.full(n - 1, np.nan)
    return {
        "top_n_accuracy": top_n_accuracy(ranks, objects),
        "large_first_share": large_share,
        "small_first_share": small_share,
        "first_retrieved_share_by_position": first_share_by_position(first, objects),
    }


def _padded(values, prefix: str) -> dict:
    """{prefix_1: v1, ...} padded with NaN up to MAX_OBJECTS columns, so rows of every count share columns."""
    values = list(values) + [np.nan] * (MAX_OBJECTS - len(values))
    return {f"{prefix}_{p + 1}": float(v) for p, v in enumerate(values)}


def ior_rows(items: list[dict], image_emb: np.ndarray, reference_names: list[str],
             reference_emb: np.ndarray) -> list[dict]:
    """Image-based object retrieval per object count and way of ranking (RANKED_AMONG): one row over all images
    ("all") and one per caption position of the large object (the object order controlled), each with the share
    of images whose first single-object reference is the large object, each small object, and the object at
    each position."""
    index = {name: i for i, name in enumerate(reference_names)}
    missing = sorted({o["object"] for s in items for o in s["objects"]} - set(index))
    if missing:
        raise ValueError(f"no reference image for objects {missing}")
    rows = []
    for n in sorted({s["n_objects"] for s in items}):
        members = [i for i, s in enumerate(items) if s["n_objects"] == n]
        objects = np.array([[index[o["object"]] for o in items[i]["objects"]] for i in members])
        large = np.array([large_position(items[i]) for i in members])
        groups = [("all", np.ones(len(members), bool))] + [
            (str(p + 1), large == p) for p in range(n) if (large == p).any()]
        for ranked_among, (group, mask) in ((r, g) for r in RANKED_AMONG for g in groups):
            metrics = ior_metrics(image_emb[members][mask], reference_emb, objects[mask], large[mask], ranked_among)
            rows.append({
                "ranked_among": ranked_among, "n_objects": n, "large_position": group, "n_images": int(mask.sum()),
                "n_large_images": int((large[mask] >= 0).sum()),
                "top_n_accuracy": metrics["top_n_accuracy"],
                "large_first_share": metrics["large_first_share"],
                **_padded(metrics["small_first_share"], "small_first_share"),
                **_padded(metrics["first_retrieved_share_by_position"], "first_retrieved_share"),
            })
    return rows


def main(snakemake) -> None:
    import pyarrow as pa

    from workflow_scripts.analyses.embedded import load_images
    from workflow_scripts.common.logs import start_job
    from workflow_scripts.common.parquet import write_table

    logger = start_job(snakemake)
    items, images, image_provenance, _ = load_images(snakemake.input.item_table, snakemake.input.images)
    references, reference_images, reference_provenance, _ = load_images(snakemake.input.reference_items,
                                                                        snakemake.input.reference_images)
    if reference_provenance["weights"] != image_provenance["weights"]:
        raise ValueError(f"{snakemake.input.reference_images} was embedded with {reference_provenance['weights']}, "
                         f"{snakemake.input.images} with {image_provenance['weights']}; rerun the embeddings")
    names = [r["objects"][0]["object"] for r in references]
    rows = ior_rows(items, images, names, reference_images)
    provenance = {key: value for key, value in image_provenance.items() if key not in ("kind", "dataset")}
    write_table(pa.Table.from_pylist(rows), snakemake.output.ior, {**provenance, "dataset": snakemake.wildcards.dataset})
    logger.info("%d IOR rows", len(rows))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
