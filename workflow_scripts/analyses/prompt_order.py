"""Rule `prompt_order`: does a text-to-image model draw the first-named object of its prompt most prominently
(paper B's question for Stable Diffusion)? For each generated image (rule generate_images) and each measure, which
of the prompt's own objects is the most prominent, and at which position the prompt names it.

Measures, per image over the objects its prompt names:
- `detector`: the open-vocabulary detector of the caption-order statistic (models/detection.py, GroundingDINO):
  each object's largest box at the configured resize and thresholds. An object appears when it has a box; the most
  prominent is the object with the largest box area. Scores: box area as a fraction of the image, null where the
  object has no box.
- `clip`: CLIP zero-shot: the softmax over the prompt's objects of the model's logit scale times the cosine between
  the image and "a photo of a {name}". The most prominent is the most probable object. A softmax always picks one,
  so there is no appearance threshold here: an image with none of its objects still has a most prominent one.
An image has no most prominent object where no object has a score or the largest score is shared.

Outputs: the per-image rows, and the summary (summary_rows), per measure and object count and over all counts:
the share of images whose first-named object is the most prominent among the images that have one, its 95% Wilson
interval over those images (the rotations and seeds of one object set are counted as independent images), chance
(1/n; over all counts the mean of 1/n over those images) and the share at each prompt position.
"""
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import numpy as np
import pyarrow as pa

from workflow_scripts.analyses.retrieval import MAX_OBJECTS
from workflow_scripts.analyses.tor import shares_by_slot
from workflow_scripts.common.intervals import wilson_interval
from workflow_scripts.models.text_to_image import IMAGE_ROW_TYPES

MEASURES = ("detector", "clip")
CLIP_TEMPLATE = "a photo of a {name}"
CLIP_BATCH_SIZE = 64
IMAGE_COLUMNS = tuple(column for column in IMAGE_ROW_TYPES if column != "prompt")  # of generate_images' table
ROW_TYPES = {**{column: IMAGE_ROW_TYPES[column] for column in IMAGE_COLUMNS}, "measure": pa.string(),
             "first_named": pa.string(), "most_prominent": pa.string(), "position_of_most_prominent": pa.int32(),
             "first_is_most_prominent": pa.bool_(), "n_appearing": pa.int32(), "scores": pa.list_(pa.float64())}


def most_prominent(scores: list[float | None]) -> int | None:
    """The index of the single largest score (None: the object has none), or None when no object has a score or
    two share the largest."""
    found = [score for score in scores if score is not None]
    if not found or found.count(max(found)) > 1:
        return None
    return scores.index(max(found))


def detector_scores(detector, images: list, objects: list[list[str]], settings: dict) -> list[list[float | None]]:
    """Per image, per named object: its largest box's area (a fraction of the image), None where it has no box."""
    from workflow_scripts.analyses.object_areas import measure_areas

    found = measure_areas(detector, None, images, objects, settings)
    return [[None if hit is None else hit["box_area"] for hit in hits] for hits in found]


def clip_scores(model, preprocess, tokenizer, images: list, objects: list[list[str]], device: str) -> list[list[float]]:
    """Per image, per named object: CLIP's zero-shot probability over the image's named objects (fp32)."""
    from workflow_scripts.analyses.similarity import normalise
    from workflow_scripts.models.embed import embed_images, embed_texts

    names = sorted({name for image_objects in objects for name in image_objects})
    image_emb = normalise(embed_images(model, preprocess, [str(path) for path in images], device, CLIP_BATCH_SIZE,
                                       0, "fp32"))
    text_emb = normalise(embed_texts(model, tokenizer, [CLIP_TEMPLATE.format(name=name) for name in names], device,
                                     CLIP_BATCH_SIZE, "fp32"))
    row_of = {name: i for i, name in enumerate(names)}
    scale = float(model.logit_scale.exp())
    scores = []
    for vector, image_objects in zip(image_emb, objects):
        logits = scale * (text_emb[[row_of[name] for name in image_objects]] @ vector).astype(float)
        probabilities = np.exp(logits - logits.max())
        scores.append((probabilities / probabilities.sum()).tolist())
    return scores


def prompt_order_rows(images: list[dict], scores: dict[str, list[list[float | None]]]) -> list[dict]:
    """One row per image and measure: `images` are the images table's rows, `scores` per measure each image's
    scores aligned with its objects (module docstring)."""
    rows = []
    for measure, per_image in scores.items():
        if len(per_image) != len(images):
            raise ValueError(f"measure {measure}: {len(per_image)} score lists for {len(images)} images")
        for image, values in zip(images, per_image):
            objects = list(image["objects"])
            if len(values) != len(objects):
                raise ValueError(f"image {image['image']}: {len(values)} {measure} scores for objects {objects}")
            index = most_prominent(values)
            rows.append({**{key: image[key] for key in IMAGE_COLUMNS}, "measure": measure,
                         "first_named": objects[0],
                         "most_prominent": None if index is None else objects[index],
                         "position_of_most_prominent": None if index is None else index + 1,
                         "first_is_most_prominent": None if index is None else index == 0,
                         "n_appearing": sum(value is not None for value in values) if measure == "detector" else None,
                         "scores": [None if value is None else float(value) for value in values]})
    return rows


def summary_rows(rows: list[dict]) -> list[dict]:
    """Per measure, per object count ("2", "3", ...) and over all counts ("all"): n_images (with a most prominent
    object), n_undecided (without one), the share whose first-named object is the most prominent with its 95%
    Wilson interval, chance and share_position_1..5 (NaN past the count's positions; NaN everywhere without
    images)."""
    summary = []
    for measure in dict.fromkeys(row["measure"] for row in rows):
        measured = [row for row in rows if row["measure"] == measure]
        counts = sorted({row["n_objects"] for row in measured})
        groups = [(str(n), [row for row in measured if row["n_objects"] == n], n) for n in counts]
        for group, members, slots in groups + [("all", measured, MAX_OBJECTS)]:
            decided = [row for row in members if row["first_is_most_prominent"] is not None]
            first = np.array([row["first_is_most_prominent"] for row in decided], float)
            share = float(first.mean()) if decided else float("nan")
            low, high = wilson_interval(share, len(decided))
            positions = np.array([row["position_of_most_prominent"] - 1 for row in decided], int)
            summary.append({"measure": measure, "n_objects": group, "n_images": len(decided),
                            "n_undecided": len(members) - len(decided), "share": share, "share_low95": float(low),
                            "share_high95": float(high),
                            "chance": float(np.mean([1 / row["n_objects"] for row in decided or members])),
                            **shares_by_slot(positions, slots, "share_position")})
    return summary


def main(snakemake) -> None:
    import torch

    from workflow_scripts.common.devices import resolve_device
    from workflow_scripts.common.logs import start_job
    from workflow_scripts.common.parquet import read_provenance, read_table, write_table
    from workflow_scripts.models.hf_models import is_local_folder

    logger = start_job(snakemake)
    measures = list(snakemake.params.measures)
    unknown = sorted(set(measures) - set(MEASURES))
    if unknown:
        raise ValueError(f"prompt_order measures {unknown}: the measures are {list(MEASURES)}")
    what = "generated images (rule generate_images)"
    images = read_table(snakemake.input.images_table, list(IMAGE_COLUMNS), what=what).to_pylist()
    generated = read_provenance(snakemake.input.images_table, what)
    paths = [Path(snakemake.input.images) / image["image"] for image in images]
    objects = [list(image["objects"]) for image in images]
    device = resolve_device(snakemake.params.device)
    torch.set_num_threads(max(1, snakemake.threads))
    provenance = {"dataset": snakemake.wildcards.dataset, "weights": generated["weights"],
                  "model_id": Path(generated["model"]).name if is_local_folder(generated["model"])
                  else generated["model"],
                  "text_to_image_model": generated["model"], "measures": measures, "device": device,
                  "precision": f"text-to-image {generated['precision']}, measures fp32"}
    scores = {}
    if "detector" in measures:
        from workflow_scripts.models.detection import load_detector, settings_record

        settings = snakemake.params.detector
        detector = load_detector(settings["model"], device, offline=True)
        scores["detector"] = detector_scores(detector, paths, objects, settings)
        provenance.update(settings_record(detector, None, tuple(settings["resize"]), settings["box_threshold"],
                                          settings["text_threshold"]))
    if "clip" in measures:
        from workflow_scripts.models.loading import load_model, offline_from_record

        clip = snakemake.params.clip
        model, preprocess, tokenizer, weights = load_model(
            clip["name"], clip["pretrained"], device, snakemake.params.seed,
            offline=offline_from_record(snakemake.input.get("clip_weights")))
        scores["clip"] = clip_scores(model, preprocess, tokenizer, paths, objects, device)
        provenance.update(clip_model=clip["id"], clip_weights=weights["weights"], clip_template=CLIP_TEMPLATE)
    rows = prompt_order_rows(images, scores)
    write_table(pa.Table.from_pylist(rows, schema=pa.schema(ROW_TYPES)), snakemake.output.rows, provenance)
    summary = summary_rows(rows)
    write_table(pa.Table.from_pylist(summary), snakemake.output.summary, provenance)
    for row in summary:
        if row["n_objects"] == "all":
            logger.info("%s: first-named object most prominent in %.3f of %d images (chance %.3f), %d undecided",
                        row["measure"], row["share"], row["n_images"], row["chance"], row["n_undecided"])


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
