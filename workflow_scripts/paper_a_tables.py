"""Paper A's tables: probe accuracy and binding diagnostics of every dataset and model, as CSV and
Markdown, with the paper's reference numbers beside ours."""
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from workflow_scripts import reference
from workflow_scripts.tables import markdown_table, read_provenance

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
    means["shape"] = "mean"
    table = pd.concat([probes, means], ignore_index=True).sort_values(keys + ["shape"], kind="stable")
    is_reference = (table["shape"] == "mean") & (table["n_objects"] == 2)
    table["reference_test_accuracy"] = table["modality"].map(reference.PROBE_ACCURACY).where(is_reference)
    table["reference_source"] = np.where(is_reference, reference.SOURCE, "")
    return table.reset_index(drop=True)


def probe_markdown(table: pd.DataFrame) -> str:
    keys = ["dataset", "model_id", "weights", "modality", "n_objects"]
    wide = table.pivot_table(index=keys, columns="shape", values="test_accuracy").reset_index()
    chance = table[table["shape"] == "mean"].set_index(keys)["chance"]
    paper = table[table["shape"] == "mean"].set_index(keys)["reference_test_accuracy"]
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


def main(snakemake) -> None:
    from workflow_scripts.rule_logging import log_to

    logger = log_to(snakemake.log[0])
    probes = probe_table(read_results(snakemake.input.probes))
    probes.to_csv(snakemake.output.probes_csv, index=False)
    Path(snakemake.output.probes_md).write_text(probe_markdown(probes))
    binding = binding_table(read_results(snakemake.input.binding))
    binding.to_csv(snakemake.output.binding_csv, index=False)
    Path(snakemake.output.binding_md).write_text(binding_markdown(binding))
    logger.info("%d probe rows, %d binding rows", len(probes), len(binding))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
