"""Rule `table`: the papers' tables, each gathering one analysis' results over every dataset and model, as CSV
and Markdown, with the papers' reference numbers beside ours where they give any (TABLES says which)."""
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from workflow_scripts.common.parquet import read_provenance
from workflow_scripts.summary import reference


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    """A GitHub-flavoured Markdown table of `columns`; floats with 3 decimals, missing values blank."""

    def cell(value) -> str:
        if value is None or (isinstance(value, float) and value != value):
            return ""
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


RANDOM_NOTE = ("Rows whose weights are a random initialisation show that the pipeline runs; "
               "they say nothing about CLIP.")


def read_results(paths) -> pd.DataFrame:
    """Concatenate per-(dataset, model) or per-model result files, adding the dataset (where the file has
    one), model_id and weights columns from their provenance."""
    frames = []
    for path in paths:
        provenance = read_provenance(path)
        frame = pq.read_table(path).to_pandas()
        for key in ("weights", "model_id", "dataset"):
            if key in provenance:
                frame.insert(0, key, provenance[key])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def probe_table(probes: pd.DataFrame) -> pd.DataFrame:
    """Per-category rows, then a 'mean' row per (dataset, model, modality, objects) with the reference."""
    keys = ["dataset", "model_id", "weights", "modality", "solver", "n_objects"]
    means = probes.groupby(keys, as_index=False)[["train_accuracy", "val_accuracy", "test_accuracy", "chance"]].mean()
    means["object"] = "mean"
    table = pd.concat([probes, means], ignore_index=True).sort_values(keys + ["object"], kind="stable")
    is_reference = (table["object"] == "mean") & (table["n_objects"] == 2)
    table["reference_test_accuracy"] = table["modality"].map(reference.PROBE_ACCURACY).where(is_reference)
    table["reference_source"] = np.where(is_reference, reference.SOURCE, "")
    return table.reset_index(drop=True)


def probe_markdown(table: pd.DataFrame) -> str:
    keys = ["dataset", "model_id", "weights", "modality", "n_objects"]
    wide = table.pivot_table(index=keys, columns="object", values="test_accuracy").reset_index()
    chance = table[table["object"] == "mean"].set_index(keys)["chance"]
    paper = table[table["object"] == "mean"].set_index(keys)["reference_test_accuracy"]
    rows = []
    for row in wide.to_dict("records"):
        key = tuple(row[k] for k in keys)
        rows.append({**row, "chance": chance[key], "paper": paper[key]})
    shapes = [c for c in wide.columns if c not in keys and c != "mean"]
    columns = keys + shapes + ["mean", "chance", "paper"]
    return ("# Linear probe test accuracy\n\nOne probe per object category predicts that object's colour; "
            f"'paper' is {reference.SOURCE}.\n{RANDOM_NOTE}\n\n" + markdown_table(rows, columns))


def binding_table(binding: pd.DataFrame) -> pd.DataFrame:
    table = binding.copy()
    table["reference_binding_accuracy"] = table["variant"].map(reference.BINDING_ACCURACY)
    table["reference_probe_weight_cosine"] = table["variant"].map(reference.PROBE_WEIGHT_COSINE)
    table["reference_source"] = reference.SOURCE
    return table


def binding_markdown(table: pd.DataFrame) -> str:
    columns = ["dataset", "model_id", "weights", "variant", "image_to_text_accuracy", "reference_binding_accuracy",
               "text_to_image_accuracy", "modality_gap", "caption_negative_cosine", "probe_weight_cosine",
               "reference_probe_weight_cosine"]
    return ("# Cross-modal binding on the test split\n\nImage-to-text: an image is more similar to its caption "
            "than to the attribute-swapped caption (chance 0.5). Text-to-image: a caption is more similar to its "
            "image than to the image of its swapped twin. References: " + reference.SOURCE + ".\n"
            + RANDOM_NOTE + "\n\n" + markdown_table(table.to_dict("records"), columns))


def tor_table(tor: pd.DataFrame) -> pd.DataFrame:
    """TOR rows with the reference shares on the rows the paper reports (4 objects, whole short captions)."""
    table = tor.copy()
    reported = (table["n_objects"] == 4) & (table["method"] == "caption") & (table["template"] == "short")
    for position, share in reference.TOR_FIRST_RETRIEVED_SHARE.items():
        table[f"reference_first_retrieved_share_{position}"] = np.where(reported, share, np.nan)
    table["reference_source"] = np.where(reported, reference.PAPER_B_SOURCE, "")
    return table


def tor_markdown(table: pd.DataFrame) -> str:
    shares = [c for c in table.columns if c.startswith("first_retrieved_share_")]
    columns = (["dataset", "model_id", "weights", "template", "n_objects", "method", "top_n_accuracy"] + shares
               + ["reference_first_retrieved_share_1", "reference_first_retrieved_share_4"])
    return ("# Text-based object retrieval\n\nOver each dataset's object names: share of captions whose most "
            "similar single-object text embedding "
            "is the object mentioned at each position (a first-mention bias puts mass on position 1). "
            "'split-<how>' embeds each object alone and aggregates (the mitigation). References: "
            f"{reference.PAPER_B_SOURCE}.\n{RANDOM_NOTE}\n\n" + markdown_table(table.to_dict("records"), columns))


def ior_table(ior: pd.DataFrame) -> pd.DataFrame:
    """IOR rows with the reference shares on the rows the paper reports (one large and three small objects,
    all large positions)."""
    table = ior.copy()
    reported = (table["n_objects"] == 4) & (table["large_position"] == "all")
    table["reference_large_first_share"] = np.where(reported, reference.IOR_LARGE_FIRST_SHARE, np.nan)
    for j, share in enumerate(reference.IOR_SMALL_FIRST_SHARE):
        table[f"reference_small_first_share_{j + 1}"] = np.where(reported, share, np.nan)
    table["reference_source"] = np.where(reported, reference.PAPER_B_IOR_SOURCE, "")
    return table


def ior_markdown(table: pd.DataFrame) -> str:
    columns = (["dataset", "model_id", "weights", "n_objects", "large_position", "n_images", "top_n_accuracy",
                "large_first_share", "reference_large_first_share"]
               + [c for c in table.columns if c.startswith("small_first_share_")])
    return ("# Image-based object retrieval\n\nShare of multi-object images whose most similar single-object "
            "reference image is the large object, or each small object (in caption order). 'large_position' "
            "is the large object's position in the caption ('all': every image). References: "
            f"{reference.PAPER_B_IOR_SOURCE}.\n{RANDOM_NOTE}\n\n" + markdown_table(table.to_dict("records"), columns))


def matching_markdown(table: pd.DataFrame) -> str:
    columns = ["dataset", "model_id", "weights", "n_objects", "condition", "method", "accuracy", "n_pairs"]
    return ("# Image-text matching under reordering and resizing\n\nShare of images more similar to their "
            "caption than to a distractor naming one other object (ties count half). 'original': the scene's "
            "caption; '<size> to first|last': the large or a small object moved to the caption's first or last "
            "slot (caption and distractor alike); 'large named <p>': scenes whose large object is the p-th "
            "named. 'split-<how>' embeds each object's name alone and aggregates (the mitigation). "
            "REFERENCE.md gives no number for this measure.\n" + RANDOM_NOTE + "\n\n"
            + markdown_table(table.to_dict("records"), columns))


TABLES = {"probes": (probe_table, probe_markdown), "binding": (binding_table, binding_markdown),
          "tor": (tor_table, tor_markdown), "ior": (ior_table, ior_markdown),
          "matching": (pd.DataFrame.copy, matching_markdown)}


def main(snakemake) -> None:
    from workflow_scripts.common.logs import log_to

    logger = log_to(snakemake.log[0])
    name = snakemake.wildcards.table
    make_table, make_markdown = TABLES[name]
    table = make_table(read_results(snakemake.input.results))
    table.to_csv(snakemake.output.csv, index=False)
    Path(snakemake.output.md).write_text(make_markdown(table))
    logger.info("%d %s rows", len(table), name)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
