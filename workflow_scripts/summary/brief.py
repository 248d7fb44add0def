"""Rule `brief`: one screen of a run's answers (results/summary.txt), read from its tables: which trained CLIP the
selection chose, whether that CLIP meets paper A's premise (each modality's probes on two-object CLEVR-style test
scenes), paper A's binding row per dataset, and, for the data-order experiment, the runs that did not learn to
match unseen scenes and each difference between caption orders. Every number carries its interval and count; a
part whose table the run does not build is left out."""
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import pandas as pd

from workflow_scripts.summary.tables import HIGH, LOW, counted_interval_text, interval_text, short_weights

PROBE_PROTOCOL = "clean"  # the probes' best validation epoch: what an embedding encodes, not one SGD epoch's luck
BINDING_VARIANTS = ("CLIP", "LABCLIP-SB", "LABCLIP-HNB")


def share(row, column: str, count: str) -> str:
    return counted_interval_text(row[column], row[column + LOW], row[column + HIGH], row[count])


def selection_lines(selection: pd.DataFrame) -> tuple[list[str], str | None]:
    """(lines, the selected run)."""
    chosen = selection[selection["selected"]].iloc[0]
    others = "; ".join(f"{r.run} {r.criterion_value:.3f}" for r in selection.itertuples() if not r.selected)
    return [f"selection: run {chosen['run']} by {chosen['criterion']} ({chosen['criterion_value']:.3f}; "
            f"the other candidates: {others or 'none'})"], chosen["run"]


def studied_models(trained: dict, run: str | None) -> list[str]:
    """The models whose paper A rows the summary shows: the selected run's last checkpoint, or (no selection)
    every model trained from scratch at its last checkpoint; [] when no CLIP is trained here (then every model)."""
    return [model for model, c in trained.items() if c["step"] == c["steps"] and not c["init"]
            and (run is None or c["run"] == run)]


def fine_tuned_from(trained: dict, model: str) -> list[str]:
    """The models fine-tuned here with hard negatives from `model` (paper A's CLIP-FT), at their last checkpoint."""
    return [m for m, c in trained.items() if c["init"] == model and c["hard_negatives"] and c["step"] == c["steps"]]


def precondition_lines(probes: pd.DataFrame, models: list[str]) -> list[str]:
    rows = probes[(probes["object"] == "mean") & (probes["n_objects"] == 2) & (probes["dataset_kind"] == "clevr")
                  & (probes["protocol"] == PROBE_PROTOCOL)]
    if models:
        rows = rows[rows["model_id"].isin(models)]
    lines = []
    for (dataset, model), group in rows.groupby(["dataset", "model_id"], sort=True):
        by = group.set_index("modality")
        if not {"image", "text"} <= set(by.index):
            continue
        lines.append(f"precondition: image probes {share(by.loc['image'], 'test_accuracy', 'n_test')}, text probes "
                     f"{share(by.loc['text'], 'test_accuracy', 'n_test')} (paper A's premise: 0.9 and 0.95; "
                     f"{dataset}, two-object test scenes, model {model}, mean over shapes, probes {PROBE_PROTOCOL})")
    return lines


def binding_lines(binding: pd.DataFrame, models: list[str], trained: dict) -> list[str]:
    """Per dataset and studied model: image-to-text binding accuracy (protocol clean) of CLIP, LABCLIP-SB and -HNB
    (each map's best validation epoch) and of the model fine-tuned from it with hard negatives (CLIP-FT)."""
    rows = binding[binding["protocol"] == "clean"]
    lines = []
    for model in models or sorted(set(rows["model_id"])):
        fine_tuned = fine_tuned_from(trained, model)
        for dataset, group in rows[rows["model_id"] == model].groupby("dataset", sort=True):
            cells = []
            for variant in BINDING_VARIANTS:
                found = group[(group["variant"] == variant)
                              & ((group["variant"] == "CLIP") | (group["selection"] == "best_val"))]
                if len(found):
                    cells.append(f"{variant} {share(found.iloc[0], 'image_to_text_accuracy', 'n_scored')}")
            tuned = rows[rows["model_id"].isin(fine_tuned) & (rows["dataset"] == dataset) & (rows["variant"] == "CLIP")]
            if len(tuned):
                cells.append(f"CLIP-FT {share(tuned.iloc[0], 'image_to_text_accuracy', 'n_scored')}")
            lines.append(f"paper A, {dataset} ({model}): binding " + "; ".join(cells))
    return lines


def difference_lines(differences: pd.DataFrame) -> list[str]:
    lines = []
    for row in differences.to_dict("records"):
        text = interval_text(row["difference"], row["difference_low95"], row["difference_high95"])
        lines.append(f"data order, {row['measure']}, {row['n_objects']} objects: {row['orders']} = {text} "
                     f"(seeds {row['n_seeds']}; {row['mean_first']:.3f} vs {row['mean_second']:.3f})")
    return lines


def heldout_lines(caption_order: pd.DataFrame) -> list[str]:
    """Per caption order of the data-order experiment: the seeds whose held-out loss did not end below chance."""
    if "heldout_not_below_chance" not in caption_order:
        return []
    arms = caption_order.drop_duplicates("caption_order")
    return ["data order, runs whose held-out loss ended not below chance (they memorised their training pairs): "
            + "; ".join(f"{r.caption_order} {r.heldout_not_below_chance} of {r.n_runs}" for r in arms.itertuples())]


def brief(tables: dict[str, pd.DataFrame], trained: dict) -> str:
    lines, run = [], None
    if "clip_selection" in tables:
        more, run = selection_lines(tables["clip_selection"])
        lines += more
    models = studied_models(trained, run)
    if "probes" in tables:
        lines += precondition_lines(tables["probes"], models)
    if "binding" in tables:
        lines += binding_lines(tables["binding"], models, trained)
    if "caption_order" in tables:
        lines += heldout_lines(tables["caption_order"])
    if "caption_order_difference" in tables:
        lines += difference_lines(tables["caption_order_difference"])
    weights = sorted({(m, w) for name in ("probes", "binding") if name in tables
                      for m, w in zip(tables[name]["model_id"], tables[name]["weights"]) if not models or m in models})
    lines += [f"weights of {model}: {short_weights(w)}" for model, w in weights]
    return "\n".join(lines or ["no table of this run has a summary line"]) + "\n"


def main(snakemake) -> None:
    from workflow_scripts.common.files import write_atomically
    from workflow_scripts.common.logs import start_job

    logger = start_job(snakemake)
    tables = {name: pd.read_csv(path) for name, path in snakemake.input.items()}
    text = brief(tables, snakemake.params.trained)
    write_atomically(snakemake.output[0], lambda partial: Path(partial).write_text(text))
    logger.info("summary:\n%s", text)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
