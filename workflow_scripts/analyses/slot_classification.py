"""Rule `slot_classification`: paper B's object classification by slot (IOC and TOC). For each object slot, a linear
head trained on frozen embeddings names the object in that slot; the slot the encoder favours classifies best.

- TOC (text-based object classification): on the caption's text embedding, slot k is the object named k-th.
- IOC (image-based object classification): on the image embedding, slot k is the k-th largest object (by its
  radius in the item table; ties keep the caption order), so in a one-large scene slot 1 is the large object.

The authors published no code for these experiments; this is our reading of the paper. Each head is the probes'
fast path (probes.train_probe_sklearn: scikit-learn's LogisticRegression after a StandardScaler, C chosen on the
validation split), trained on the train split over every item that has the slot (all object counts pooled), scored
on test: one row per task and slot, with its test count; chance is 1 / the classes in the training rows.
"""
import logging
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import numpy as np

from workflow_scripts.analyses.embedded import Embedded
from workflow_scripts.analyses.probes import topk_set_accuracy, train_probe_sklearn
from workflow_scripts.datasets.items import SPLITS

log = logging.getLogger("clip_binding")

TASKS = {"TOC": ("text", "caption position"), "IOC": ("image", "size rank")}  # task: (embedding, slot order)


def slot_objects(item: dict, order: str) -> list[str]:
    """The item's object names in slot order: as the caption names them ("caption position"), or largest first
    ("size rank", by radius; ties keep the caption order)."""
    objects = item["objects"]
    if order == "size rank":
        objects = sorted(objects, key=lambda obj: -obj["radius"])  # sorted is stable: ties keep the caption order
    elif order != "caption position":
        raise ValueError(f"slot order must be 'caption position' or 'size rank', not {order!r}")
    return [obj["object"] for obj in objects]


def slot_rows(x: np.ndarray, items: list[dict], split: np.ndarray, names, order: str, settings: dict) -> list[dict]:
    """One row per slot (1 to the most objects an item has): the head trained on the train items that have the
    slot, C chosen on val, scored on test (counts, accuracy, chance). A slot without a train, val or test item, or
    with one object name in all its training rows, is skipped with a warning."""
    index = {name: j for j, name in enumerate(names)}
    slots = [slot_objects(item, order) for item in items]
    rows = []
    for slot in range(1, max(len(s) for s in slots) + 1):
        has = np.array([len(s) >= slot for s in slots])
        targets = np.zeros((len(items), len(names)), dtype=np.float32)
        for i in np.flatnonzero(has):
            targets[i, index[slots[i][slot - 1]]] = 1
        chosen = {name: np.flatnonzero(has & (split == name)) for name in SPLITS}
        present = np.flatnonzero(targets[chosen["train"]].sum(axis=0))
        if any(len(rows_) == 0 for rows_ in chosen.values()) or len(present) < 2:
            log.warning("%s slot %d skipped: %s items, %d object names in training", order, slot,
                        {name: len(rows_) for name, rows_ in chosen.items()}, len(present))
            continue
        fit = train_probe_sklearn(x[chosen["train"]], targets[chosen["train"]], x[chosen["val"]],
                                  targets[chosen["val"]], **settings)
        test = chosen["test"]
        accuracy = topk_set_accuracy(fit.logits(x[test]), targets[test])
        rows.append({"slot": slot, "n_train": len(chosen["train"]), "n_val": len(chosen["val"]), "n_test": len(test),
                     "n_correct": int(round(accuracy * len(test))), "test_accuracy": accuracy,
                     "chance": 1 / len(present), "chosen": fit.chosen})
    return rows


def slot_classification_rows(data: Embedded, settings: dict) -> list[dict]:
    """TOC's rows on the caption embeddings, then IOC's on the image embeddings (slot_rows), each labelled with
    its task, embedding and slot order."""
    rows = []
    for task, (modality, order) in TASKS.items():
        x = data.caption if modality == "text" else data.image
        for row in slot_rows(x, data.items, data.split, data.vocabulary.objects, order, settings):
            rows.append({"task": task, "modality": modality, "slot_order": order, **row})
            log.info("%s slot %d: test accuracy %.3f of %d (chance %.3f)", task, row["slot"], row["test_accuracy"],
                     row["n_test"], row["chance"])
    return rows


def main(snakemake) -> None:
    import pyarrow as pa

    from workflow_scripts.analyses.embedded import embedded_for_rule
    from workflow_scripts.common.logs import start_job
    from workflow_scripts.common.parquet import write_table

    start_job(snakemake)
    data, provenance = embedded_for_rule(snakemake)
    settings = snakemake.params.classifier
    rows = slot_classification_rows(data, settings)
    write_table(pa.Table.from_pylist(rows), snakemake.output.slots, {**provenance, "classifier": settings})


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
