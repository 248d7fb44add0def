"""Rule `mention_order`: paper B's caption-order statistic, where in a caption the largest object it names is
named, against what a random order would give (the largest of k named objects stands at each position with
chance 1/k), and how many objects captions name.

For each object-listing method (rule caption_objects) and each source of object areas:
- `annotations (mask)` / `annotations (box)`: ground truth, where the item table has `annotated_objects` (COCO's
  instances): a named object's area is the largest annotated instance of its COCO category, by mask or by box;
  a named object that is not annotated in the image has no area.
- `detector (box)` / `segmenter (mask)`: the open-vocabulary detector's largest box for the object's phrase, and
  the segmenter's mask inside that box (rule object_areas); an object the detector does not find has no area.
Only the named objects with an area count; a caption counts when at least two of them have one and a single one
is the largest (a tie is counted in n_tied and left out). Rows per number of objects k (2..max_objects) and
position, and over all k: the largest first, the largest last (chance: the mean of 1/k). With annotations, also
the share of captions that name the image's largest annotated object at all (`largest annotated named`).

Protocol `authors` marks the rows measured the authors' way (objects listed by the LLM, areas from the detector
and segmenter); `workflow` the others (a deterministic list, or ground-truth areas).

Intervals are 95% percentile bootstrap intervals over images (captions of one image are resampled together,
COCO's five captions per image being no five independent observations), seeded, widened where needed to hold the
Wilson interval that counts each image once: a percentile bootstrap over a handful of images is far too narrow
(over one image it has no width at all), and a share from 11 images must look like one.
"""
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import numpy as np
import pandas as pd

from workflow_scripts.analyses.object_lexicon import coco_category
from workflow_scripts.common.intervals import wilson_interval

ANNOTATION_AREAS = {"annotations (mask)": "area", "annotations (box)": "box_area"}
DETECTOR_AREAS = {"detector (box)": "box_area", "segmenter (mask)": "mask_area"}
POSITION_MEASURE = "largest named object's position"
NAMED_MEASURE = "largest annotated object named"


def annotated_areas(objects: list[dict], annotated: list[dict], key: str) -> list[float | None]:
    """Per named object (caption order): the largest area (`key`: area or box_area) of the annotated instances of
    its COCO category, None where none is annotated."""
    largest = {}
    for instance in annotated or []:
        largest[instance["object"]] = max(largest.get(instance["object"], 0.0), instance[key])
    return [largest.get(coco_category(obj["name"])) for obj in objects]


def largest_position(areas: list[float | None]) -> tuple[int, int] | str | None:
    """(k, position from 1) of the largest of the named objects that have an area; "tied" when two share the
    largest area; None when fewer than two have one."""
    found = [area for area in areas if area is not None and area > 0]
    if len(found) < 2:
        return None
    largest = max(found)
    if found.count(largest) > 1:
        return "tied"
    return len(found), found.index(largest) + 1


def bootstrap_intervals(clusters, hits: np.ndarray, counts: np.ndarray, draws: int, seed: int):
    """95% percentile intervals of the ratios hits.sum(0) / counts.sum(0) (items x cells), resampling the
    items' clusters with replacement `draws` times, each widened to hold the Wilson interval of that ratio over
    the number of clusters with items in the cell (each cluster counted once)."""
    _, cluster = np.unique(np.asarray(clusters), return_inverse=True)
    n = cluster.max() + 1
    hit_sums = np.zeros((n, hits.shape[1]))
    count_sums = np.zeros((n, hits.shape[1]))
    np.add.at(hit_sums, cluster, hits)
    np.add.at(count_sums, cluster, counts)
    rng = np.random.default_rng(seed)
    shares = []
    for start in range(0, draws, 100):
        weights = rng.multinomial(n, np.full(n, 1 / n), size=min(100, draws - start)).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares.append((weights @ hit_sums) / (weights @ count_sums))
    shares = np.concatenate(shares)
    ratio = hit_sums.sum(0) / count_sums.sum(0)
    wilson_low, wilson_high = wilson_interval(ratio, (count_sums > 0).sum(0))
    return (np.fmin(np.nanpercentile(shares, 2.5, axis=0), wilson_low),
            np.fmax(np.nanpercentile(shares, 97.5, axis=0), wilson_high))


def position_rows(positions: list, clusters: list, max_objects: int, draws: int, seed: int) -> list[dict]:
    """The statistic's rows for one method and area source: per k and position, and first/last over all k."""
    valid = [i for i, p in enumerate(positions) if isinstance(p, tuple) and p[0] <= max_objects]
    if not valid:
        return []
    ks = np.array([positions[i][0] for i in valid])
    ps = np.array([positions[i][1] for i in valid])
    cells = [(str(k), str(p), (ks == k) & (ps == p), ks == k, 1 / k)
             for k in range(2, max_objects + 1) if (ks == k).any() for p in range(1, k + 1)]
    everything = np.ones(len(valid), bool)
    cells += [("all", "first", ps == 1, everything, float(np.mean(1 / ks))),
              ("all", "last", ps == ks, everything, float(np.mean(1 / ks)))]
    hits = np.stack([cell[2] for cell in cells], axis=1).astype(float)
    counts = np.stack([cell[3] for cell in cells], axis=1).astype(float)
    low, high = bootstrap_intervals([clusters[i] for i in valid], hits, counts, draws, seed)
    tied = sum(p == "tied" for p in positions)
    return [{"measure": POSITION_MEASURE, "n_objects": k, "position": p, "share": hits[:, j].sum() / counts[:, j].sum(),
             "share_low95": low[j], "share_high95": high[j], "chance": chance, "n_captions": int(counts[:, j].sum()),
             "n_images": len({clusters[i] for i in np.array(valid)[counts[:, j] > 0]}), "n_tied": tied}
            for j, (k, p, _, _, chance) in enumerate(cells)]


def named_rows(objects: list[list[dict]], annotated: list, clusters: list, draws: int, seed: int) -> list[dict]:
    """The share of captions naming their image's largest annotated object (by mask area), among captions whose
    image has annotations."""
    keep = [i for i, a in enumerate(annotated) if a]
    if not keep:
        return []
    hits = np.array([[max(annotated[i], key=lambda o: o["area"])["object"]
                      in {coco_category(o["name"]) for o in objects[i]}] for i in keep], float)
    low, high = bootstrap_intervals([clusters[i] for i in keep], hits, np.ones_like(hits), draws, seed)
    return [{"measure": NAMED_MEASURE, "n_objects": "all", "position": "", "share": hits.mean(),
             "share_low95": low[0], "share_high95": high[0], "chance": np.nan, "n_captions": len(keep),
             "n_images": len({clusters[i] for i in keep}), "n_tied": 0}]


def mention_order_rows(items: list[dict], objects: dict[str, list[list[dict]]], detected: dict[str, list],
                       area_models: dict[str, str], max_objects: int, draws: int, seed: int) -> pd.DataFrame:
    """Every row of the statistic. `objects`: per method, the objects of each item (caption order); `detected`:
    per method, each item's detector output (a list of {box_area, mask_area} per object, or None), where the
    detector ran; `area_models`: per area source, the model that measured it (annotations: the dataset)."""
    clusters = [item.get("image_group") or item.get("image") or item["item_id"] for item in items]
    annotated = [item.get("annotated_objects") for item in items]
    rows = []
    for method, per_item in objects.items():
        sources = {}
        if any(annotated):
            for source, key in ANNOTATION_AREAS.items():
                sources[source] = [annotated_areas(o, a, key) for o, a in zip(per_item, annotated)]
        for source, key in DETECTOR_AREAS.items():
            if method in detected and source in area_models:
                sources[source] = [[(found or {}).get(key) for found in (areas or [])] for areas in detected[method]]
        for source, areas in sources.items():
            found = position_rows([largest_position(a) for a in areas], clusters, max_objects, draws, seed)
            protocol = "authors" if method == "llm" and source in DETECTOR_AREAS else "workflow"
            rows += [{"method": method, "areas": source, "area_model": area_models.get(source, ""),
                      "protocol": protocol, **row} for row in found]
        if any(annotated):
            rows += [{"method": method, "areas": "annotations (mask)", "area_model": area_models.get(
                "annotations (mask)", ""), "protocol": "workflow", **row}
                for row in named_rows(per_item, annotated, clusters, draws, seed)]
    return pd.DataFrame(rows)


def objects_per_caption_rows(objects: dict[str, list[list[dict]]], max_objects: int) -> pd.DataFrame:
    """Per method, the share of captions naming 0, 1, ..., max_objects and more objects (text only)."""
    rows = []
    for method, per_item in objects.items():
        found = np.minimum([len(o) for o in per_item], max_objects)
        for count in range(max_objects + 1):
            rows.append({"method": method, "objects_named": f"{count}+" if count == max_objects else str(count),
                         "share": float(np.mean(found == count)), "n_captions": len(found),
                         "mean_objects_named": float(np.mean([len(o) for o in per_item]))})
    return pd.DataFrame(rows)


def main(snakemake) -> None:
    import pyarrow as pa

    from workflow_scripts.common.logs import start_job
    from workflow_scripts.common.parquet import read_provenance, read_table, write_table
    from workflow_scripts.datasets.items import read_items

    logger = start_job(snakemake)
    items, _ = read_items(snakemake.input.item_table)
    settings = snakemake.params.settings
    ids = [item["item_id"] for item in items]
    objects, detected, area_models, weights, precision = {}, {}, {}, {}, {}
    for method, path in zip(settings["methods"], snakemake.input.objects):
        table = read_table(path, ["item_id", "objects"], what="caption objects").to_pydict()
        if table["item_id"] != ids:
            raise ValueError(f"{path}: its items are not those of {snakemake.input.item_table}; rerun caption_objects")
        objects[method] = table["objects"]
        provenance = read_provenance(path)
        weights[method] = provenance["weights"]
        if "precision" in provenance:
            precision[method] = provenance["precision"]
    for method, path in zip(settings["methods"], snakemake.input.get("areas", [])):
        table = read_table(path, ["item_id", "areas"], what="object areas").to_pydict()
        areas_of = dict(zip(table["item_id"], table["areas"]))
        detected[method] = [areas_of.get(i) for i in ids]
        provenance = read_provenance(path)
        area_models["detector (box)"] = provenance["detector"]
        precision["detector"] = provenance["precision"]
        if provenance.get("segmenter"):
            area_models["segmenter (mask)"] = provenance["segmenter"]
    dataset = snakemake.wildcards.dataset
    area_models.update({source: f"{dataset}'s annotations" for source in ANNOTATION_AREAS})
    rows = mention_order_rows(items, objects, detected, area_models, settings["max_objects"], settings["bootstrap"],
                              snakemake.params.seed)
    provenance = {"dataset": dataset, "weights": "; ".join(f"{m}: {w}" for m, w in weights.items()),
                  "precision": ", ".join(f"{m} {p}" for m, p in precision.items()) or "no neural model",
                  "bootstrap": settings["bootstrap"], "seed": snakemake.params.seed}
    empty = pd.DataFrame(columns=["method", "areas", "area_model", "protocol", "measure", "n_objects", "position", "share",
                                  "share_low95", "share_high95", "chance", "n_captions", "n_images", "n_tied"])
    write_table(pa.Table.from_pandas(rows if len(rows) else empty, preserve_index=False),
                snakemake.output.mention_order, provenance)
    write_table(pa.Table.from_pandas(objects_per_caption_rows(objects, settings["max_objects"]), preserve_index=False),
                snakemake.output.objects_per_caption, provenance)
    logger.info("%s: %d statistic rows over %d captions", dataset, len(rows), len(items))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
