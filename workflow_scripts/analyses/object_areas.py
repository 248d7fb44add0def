"""Rule `object_areas`: the area in its image of each object a caption names (rule caption_objects), measured with
the open-vocabulary detector (GroundingDINO: its largest box for the object's phrase, the authors' resize and
thresholds) and, where a segmenter is configured, SAM's mask inside that box (models/detection.py).

Output per item: `areas`, one entry per object of the caption in caption order: null where the detector found no
box for the phrase, else {box [x0, y0, x1, y1] in the image's pixels, score, box_area, mask_area} (areas as
fractions of the image; mask_area null without a segmenter). Items without an image get null.
"""
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import pyarrow as pa

AREA_TYPE = pa.struct([("box", pa.list_(pa.float64())), ("score", pa.float64()), ("box_area", pa.float64()),
                       ("mask_area", pa.float64())])


def measure_areas(detector, segmenter, images: list, phrases: list[list[str]], settings: dict) -> list[list]:
    """Per image, per phrase: None, or {box, score, box_area, mask_area} (module docstring)."""
    from workflow_scripts.models.detection import detect_largest_boxes, mask_areas

    found = detect_largest_boxes(detector, images, phrases, tuple(settings["resize"]), settings["box_threshold"],
                                 settings["text_threshold"], settings["batch_size"])
    boxes = [[None if hit is None else hit["box"] for hit in hits] for hits in found]
    masks = mask_areas(segmenter, images, boxes) if segmenter is not None else [[None] * len(b) for b in boxes]
    return [[None if hit is None else {"box": hit["box"], "score": hit["score"], "box_area": hit["area"],
                                       "mask_area": mask}
             for hit, mask in zip(hits, image_masks)] for hits, image_masks in zip(found, masks)]


def main(snakemake) -> None:
    from workflow_scripts.common.devices import resolve_device
    from workflow_scripts.common.logs import start_job
    from workflow_scripts.common.parquet import read_table, write_table
    from workflow_scripts.datasets.items import image_file, read_items
    from workflow_scripts.models.detection import load_detector, load_segmenter, settings_record

    logger = start_job(snakemake)
    rows, _ = read_items(snakemake.input.item_table)
    objects = read_table(snakemake.input.objects, ["item_id", "objects"], what="caption objects").to_pydict()
    if objects["item_id"] != [row["item_id"] for row in rows]:
        raise ValueError(f"{snakemake.input.objects}: its items are not those of {snakemake.input.item_table}")
    settings, device = snakemake.params.detector, resolve_device(snakemake.params.device)
    detector = load_detector(settings["model"], device, offline=True)
    segmenter = load_segmenter(snakemake.params.segmenter, device, offline=True) if snakemake.params.segmenter else None
    with_image = [i for i, row in enumerate(rows) if row["image"]]
    images = [image_file(snakemake.input.item_table, rows[i]["image"]) for i in with_image]
    phrases = [[obj["phrase"] for obj in objects["objects"][i]] for i in with_image]
    measured = dict(zip(with_image, measure_areas(detector, segmenter, images, phrases, settings)))
    areas = pa.array([measured.get(i) for i in range(len(rows))], pa.list_(AREA_TYPE))
    record = settings_record(detector, segmenter, tuple(settings["resize"]), settings["box_threshold"],
                             settings["text_threshold"])
    provenance = {"dataset": snakemake.wildcards.dataset, "method": snakemake.wildcards.method, **record,
                  "weights": record["detector_weights"], "device": device, "precision": "fp32"}
    write_table(pa.table({"item_id": objects["item_id"], "areas": areas}), snakemake.output.areas, provenance)
    found = sum(hit is not None for hits in measured.values() for hit in hits)
    logger.info("%s: %d images, %d of %d phrases found by %s", snakemake.wildcards.dataset, len(with_image), found,
                sum(map(len, phrases)), settings["model"])


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
