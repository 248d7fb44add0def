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


Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
LOW, HIGH = "_low95", "_high95"  # suffixes of a share's interval columns
# Per table: the shares that get a 95% interval, each with the column that counts the items it is a share of.
SHARE_COUNTS = {
    "probes": {"test_accuracy": "n_test"},
    "binding": {"image_to_text_accuracy": "n_test", "text_to_image_accuracy": "n_twin_pairs"},
    "tor": {"top_n_accuracy": "n_captions", "not_mentioned_share": "n_captions",
            **{f"first_retrieved_share_{p}": "n_captions" for p in range(1, 6)}},
    "ior": {"top_n_accuracy": "n_images", "large_first_share": "n_large_images",
            **{f"small_first_share_{j}": "n_large_images" for j in range(1, 6)},
            **{f"first_retrieved_share_{p}": "n_images" for p in range(1, 6)}},
    "matching": {"accuracy": "n_pairs"},
}


def wilson_interval(share, n) -> tuple[np.ndarray, np.ndarray]:
    """The 95% Wilson score interval of a proportion `share` of `n` items (arrays alike); NaN where n is 0 or the
    share is missing. For a share in which ties count half, the interval treats it as a proportion of n."""
    share, n = np.asarray(share, float), np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = (share + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
        half = Z95 / (1 + Z95**2 / n) * np.sqrt(share * (1 - share) / n + Z95**2 / (4 * n**2))
    valid = (n > 0) & np.isfinite(share)
    # The interval holds the share; min/max only undo rounding at 0 and 1.
    low, high = np.minimum(np.clip(centre - half, 0, 1), share), np.maximum(np.clip(centre + half, 0, 1), share)
    return np.where(valid, low, np.nan), np.where(valid, high, np.nan)


def with_intervals(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """The table with `<share>_low95` and `<share>_high95` beside each share SHARE_COUNTS names for it."""
    table = table.copy()
    for share, count in SHARE_COUNTS[name].items():
        if share in table.columns:
            low, high = wilson_interval(table[share], table[count])
            at = table.columns.get_loc(share) + 1
            table.insert(at, share + LOW, low)
            table.insert(at + 1, share + HIGH, high)
    return table


def interval_text(value, low, high) -> str:
    """'0.500 [0.237, 0.763]': a share with its 95% interval; blank where the share is missing."""
    if value is None or value != value:
        return ""
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    """A GitHub-flavoured Markdown table of `columns`; floats with 3 decimals, a share that has interval columns
    with its 95% interval, missing values blank."""

    def cell(row, column) -> str:
        value = row.get(column)
        if column + LOW in row:
            return interval_text(value, row[column + LOW], row[column + HIGH])
        if value is None or (isinstance(value, float) and value != value):
            return ""
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row, c) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


INTERVAL_NOTE = ("Shares and accuracies show their 95% Wilson interval in brackets; the n columns say of how many "
                 "items each is a share.")


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
    """Per-category rows, then a 'mean' row per (dataset, model, modality, objects) with the reference. A mean
    row's counts are the categories' summed, so its interval treats the (unweighted) mean accuracy as a share of
    all their test items: an approximation."""
    keys = ["dataset", "model_id", "weights", "modality", "solver", "n_objects"]
    means = probes.groupby(keys, as_index=False)[["train_accuracy", "val_accuracy", "test_accuracy", "chance"]].mean()
    means = means.merge(probes.groupby(keys, as_index=False)[["n_train", "n_val", "n_test"]].sum(), on=keys)
    means["object"] = "mean"
    table = pd.concat([probes, means], ignore_index=True).sort_values(keys + ["object"], kind="stable")
    is_reference = (table["object"] == "mean") & (table["n_objects"] == 2)
    table["reference_test_accuracy"] = table["modality"].map(reference.PROBE_ACCURACY).where(is_reference)
    table["reference_source"] = np.where(is_reference, reference.SOURCE, "")
    return with_intervals(table.reset_index(drop=True), "probes")


def probe_markdown(table: pd.DataFrame) -> str:
    keys = ["dataset", "model_id", "weights", "modality", "n_objects"]
    table = table.assign(cell=[f"{interval_text(a, lo, hi)}, n={n}" for a, lo, hi, n in zip(
        table["test_accuracy"], table["test_accuracy" + LOW], table["test_accuracy" + HIGH], table["n_test"])])
    wide = table.pivot(index=keys, columns="object", values="cell").reset_index()
    chance = table[table["object"] == "mean"].set_index(keys)["chance"]
    paper = table[table["object"] == "mean"].set_index(keys)["reference_test_accuracy"]
    rows = []
    for row in wide.to_dict("records"):
        key = tuple(row[k] for k in keys)
        rows.append({**row, "chance": chance[key], "paper": paper[key]})
    shapes = [c for c in wide.columns if c not in keys and c != "mean"]
    columns = keys + shapes + ["mean", "chance", "paper"]
    return ("# Linear probe test accuracy\n\nOne probe per object category predicts that object's attribute (CLEVR: "
            f"its colour); each cell is the test accuracy with its 95% Wilson interval and the number of test items "
            f"(for 'mean', the categories' unweighted mean and their summed items). 'paper' is {reference.SOURCE}."
            f"\n{RANDOM_NOTE}\n\n" + markdown_table(rows, columns))


def binding_table(binding: pd.DataFrame) -> pd.DataFrame:
    table = binding.copy()
    table["reference_binding_accuracy"] = table["variant"].map(reference.BINDING_ACCURACY)
    table["reference_probe_weight_cosine"] = table["variant"].map(reference.PROBE_WEIGHT_COSINE)
    table["reference_source"] = reference.SOURCE
    return with_intervals(table, "binding")


def binding_markdown(table: pd.DataFrame) -> str:
    columns = ["dataset", "model_id", "weights", "variant", "n_test", "image_to_text_accuracy",
               "reference_binding_accuracy", "n_twin_pairs", "text_to_image_accuracy", "modality_gap", "caption_negative_cosine", "probe_weight_cosine",
               "reference_probe_weight_cosine"]
    return ("# Cross-modal binding on the test split\n\nImage-to-text: an image is more similar to its caption "
            "than to the attribute-swapped caption (chance 0.5). Text-to-image: a caption is more similar to its "
            "image than to the image of its swapped twin. References: " + reference.SOURCE + ".\n"
            + INTERVAL_NOTE + " Ties count half.\n" + RANDOM_NOTE + "\n\n" + markdown_table(table.to_dict("records"), columns))


def tor_table(tor: pd.DataFrame) -> pd.DataFrame:
    """TOR rows with the reference shares on the rows the paper reports (4 objects, whole short captions)."""
    table = tor.copy()
    reported = (table["n_objects"] == 4) & (table["method"] == "caption") & (table["template"] == "short")
    for position, share in reference.TOR_FIRST_RETRIEVED_SHARE.items():
        table[f"reference_first_retrieved_share_{position}"] = np.where(reported, share, np.nan)
    table["reference_source"] = np.where(reported, reference.PAPER_B_SOURCE, "")
    return with_intervals(table, "tor")


def tor_markdown(table: pd.DataFrame) -> str:
    shares = [c for c in table.columns if c.startswith("first_retrieved_share_")]
    columns = (["dataset", "model_id", "weights", "template", "n_objects", "method", "n_captions", "top_n_accuracy"]
               + [c for c in shares if not c.endswith((LOW, HIGH))]
               + ["reference_first_retrieved_share_1", "reference_first_retrieved_share_4"])
    return ("# Text-based object retrieval\n\nOver each dataset's object names: share of captions whose most "
            "similar single-object text embedding "
            "is the object mentioned at each position (a first-mention bias puts mass on position 1). "
            "'split-<how>' embeds each object alone and aggregates (the mitigation). References: "
            f"{reference.PAPER_B_SOURCE}.\n{INTERVAL_NOTE}\n{RANDOM_NOTE}\n\n"
            + markdown_table(table.to_dict("records"), columns))


def ior_table(ior: pd.DataFrame) -> pd.DataFrame:
    """IOR rows with the reference shares on the rows the paper reports: one large and three small objects, all
    large positions, ranked among the image's own objects as the authors' code ranks them."""
    table = ior.copy()
    reported = ((table["n_objects"] == 4) & (table["large_position"] == "all")
                & (table["ranked_among"] == "own_objects"))
    table["reference_large_first_share"] = np.where(reported, reference.IOR_LARGE_FIRST_SHARE, np.nan)
    for j, share in enumerate(reference.IOR_SMALL_FIRST_SHARE):
        table[f"reference_small_first_share_{j + 1}"] = np.where(reported, share, np.nan)
    table["reference_source"] = np.where(reported, reference.PAPER_B_IOR_SOURCE, "")
    return with_intervals(table, "ior")


def ior_markdown(table: pd.DataFrame) -> str:
    columns = (["dataset", "model_id", "weights", "ranked_among", "n_objects", "large_position", "n_images",
                "top_n_accuracy",
                "n_large_images", "large_first_share", "reference_large_first_share"]
               + [c for c in table.columns if c.startswith("small_first_share_") and not c.endswith((LOW, HIGH))])
    return ("# Image-based object retrieval\n\nShare of multi-object images whose most similar single-object "
            "reference image is the large object, or each small object (in caption order). 'large_position' "
            "is the large object's position in the caption ('all': every image). 'ranked_among': 'own_objects' "
            "counts which of the image's own objects' references is nearest, as the authors' code does (the shares "
            "sum to 1, and the paper's numbers stand beside these rows); 'all_references' counts the nearest of all "
            "references, so an image whose nearest reference is an absent object counts for none. References: "
            f"{reference.PAPER_B_IOR_SOURCE}.\n{INTERVAL_NOTE}\n{RANDOM_NOTE}\n\n"
            + markdown_table(table.to_dict("records"), columns))


def matching_markdown(table: pd.DataFrame) -> str:
    columns = ["dataset", "model_id", "weights", "protocol", "n_objects", "condition", "method", "accuracy", "n_pairs"]
    return ("# Image-text matching under reordering and resizing\n\nShare of images more similar to their "
            "caption than to a distractor naming one other object (ties count half). 'original': the scene's "
            "caption; '<size> to first|last': the large or a small object moved to the caption's first or last "
            "slot (caption and distractor alike); 'large named <p>': scenes whose large object is the p-th "
            "named. 'split-<how>' embeds each object's name alone and aggregates (the mitigation). Protocol "
            "'authors': the authors' scenarios, one distractor per absent object, a tie counting as wrong: "
            "'authors 1: large first' (the large object swapped into the first slot, the distractor replacing it), "
            "'authors 2: large last' (the large object swapped into the last slot, the distractor naming it first "
            "and replacing the last object). "
            "REFERENCE.md gives no number for this measure.\n" + INTERVAL_NOTE + "\n" + RANDOM_NOTE + "\n\n"
            + markdown_table(table.to_dict("records"), columns))


def matching_table(matching: pd.DataFrame) -> pd.DataFrame:
    return with_intervals(matching, "matching")


TABLES = {"probes": (probe_table, probe_markdown), "binding": (binding_table, binding_markdown),
          "tor": (tor_table, tor_markdown), "ior": (ior_table, ior_markdown),
          "matching": (matching_table, matching_markdown)}


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
