"""The loss curves of the CLIPs trained in the workflow (rule train_clip's training.json), read for the training
figure and tables; whether each run converged, a flag fixed before any result on the loss alone; and which of
several candidate runs is selected (clip_selection), by their held-out pairing of images and captions alone."""
import json
from pathlib import Path

import numpy as np
import pandas as pd

WINDOW = 0.1  # the share of a run's steps averaged at its start and at its end


def read_training_curves(run_dirs) -> pd.DataFrame:
    """(run, step, loss, batch_size, checkpoint) per training step, from each run's last checkpoint's
    training.json (rule train_clip)."""
    frames = []
    for run_dir in run_dirs:
        record = last_record(run_dir)
        saved = {int(p.name.split("-")[1]) for p in Path(run_dir).glob("step-*")}
        steps = range(1, len(record["loss"]) + 1)
        frames.append(pd.DataFrame({"run": record["run"], "step": steps, "loss": record["loss"],
                                    "batch_size": record["settings"]["batch_size"],
                                    "checkpoint": [step in saved for step in steps]}))
    return pd.concat(frames, ignore_index=True)


def last_record(run_dir) -> dict:
    """The training.json of a run's last checkpoint: the settings, the loss curve and the held-out measures."""
    last = sorted(Path(run_dir).glob("step-*"))[-1]
    return json.loads((last / "training.json").read_text())


def read_heldout(run_dirs) -> pd.DataFrame:
    """(run, step, loss, image_to_text_r1, text_to_image_r1, items, batch_size, batches, heldout_items_digest)
    per checkpoint of each run that measured held-out items (train_clip's "heldout")."""
    frames = []
    for run_dir in run_dirs:
        record = last_record(run_dir)
        if record.get("heldout"):
            frame = pd.DataFrame(record["heldout"]).assign(run=record["run"])
            frame["heldout_items_digest"] = record.get("heldout_items_digest", "")
            frames.append(frame)
    columns = ["run", "step", "loss", "image_to_text_r1", "text_to_image_r1", "items", "batch_size", "batches",
               "heldout_items_digest"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


# clip_selection's criteria: the measure at each candidate's last checkpoint, and whether lower is better
SELECTION_CRITERIA = {
    "heldout_loss": ("loss", True),
    "heldout_recall": ("mean_r1", False),  # the mean of image-to-text and text-to-image recall@1
}


def select_run(heldout: pd.DataFrame, candidates: list[str], criterion: str) -> tuple[str, pd.DataFrame]:
    """(the selected run, one row per candidate at its last checkpoint with the criterion's value and rank) among
    `candidates` (read_heldout's rows): the best value of `criterion` (SELECTION_CRITERIA), the first candidate
    in the given order among equals; a run whose value is not finite is never selected. ValueError naming the
    runs when one has no held-out measure, when the candidates measured different held-out items or batch sizes
    (their losses would not compare), or when none has a finite value."""
    column, lower_is_better = SELECTION_CRITERIA[criterion]
    last = heldout.sort_values("step").groupby("run").tail(1).set_index("run")
    missing = [run for run in candidates if run not in last.index]
    if missing:
        raise ValueError(f"clip_selection: run(s) {', '.join(missing)} measured no held-out items (their training "
                         "datasets have no val split); the selection compares held-out measures")
    last = last.loc[candidates].copy()
    for what, words in (("heldout_items_digest", "items (digest)"), ("batch_size", "batch sizes")):
        if last[what].nunique() > 1:
            raise ValueError(f"clip_selection: the candidates measured different held-out {words} "
                             f"({', '.join(f'{r}: {v}' for r, v in last[what].items())}); train them on the same "
                             "datasets with the same heldout_batch_size")
    last["mean_r1"] = (last["image_to_text_r1"] + last["text_to_image_r1"]) / 2
    values = last[column].where(np.isfinite(last[column]))
    if values.isna().all():
        raise ValueError(f"clip_selection: no candidate has a finite {criterion}")
    last["criterion"], last["criterion_value"] = criterion, values
    last["rank"] = values.rank(ascending=lower_is_better, method="first").astype("Int64")
    selected = values.idxmin() if lower_is_better else values.idxmax()
    last["selected"] = last.index == selected
    return selected, last.rename_axis("run").reset_index()


def training_status(losses) -> dict:
    """{"training": "converged" | "diverged", "start_loss", "final_loss", "lowest_loss"} of one run's per-step
    losses: the start and final losses are the means over its first and last WINDOW of steps (at least one step).
    A run diverged when a loss is not finite or its final loss is not below its start loss; a reader compares
    final_loss with lowest_loss for a run that rose late. Reported, never used to drop a run."""
    losses = np.asarray(losses, dtype=float)
    window = max(1, int(round(WINDOW * len(losses))))
    start, final = float(losses[:window].mean()), float(losses[-window:].mean())
    finite = bool(np.isfinite(losses).all())
    return {"training": "converged" if finite and final < start else "diverged", "start_loss": start,
            "final_loss": final, "lowest_loss": float(np.nanmin(losses)) if finite else float("nan")}


def heldout_status(heldout: pd.DataFrame) -> dict:
    """{"heldout": "below chance" | "not below chance" | "not measured", "heldout_loss", "heldout_chance"} of one
    run's held-out measures (read_heldout's rows) at its last checkpoint. Chance is ln(batch size), the contrastive
    loss of a CLIP whose similarities are all equal: a run not below it matches unseen images and captions no better
    than one that has learnt nothing, however low its training loss. Reported, never used to drop a run."""
    if heldout.empty:
        return {"heldout": "not measured", "heldout_loss": np.nan, "heldout_chance": np.nan}
    last = heldout.sort_values("step").iloc[-1]
    chance = float(np.log(last["batch_size"]))
    below = bool(np.isfinite(last["loss"]) and last["loss"] < chance)
    return {"heldout": "below chance" if below else "not below chance", "heldout_loss": float(last["loss"]),
            "heldout_chance": chance}


def run_statuses(curves: pd.DataFrame, heldout: pd.DataFrame | None = None) -> pd.DataFrame:
    """training_status and heldout_status per run of read_training_curves' table (and read_heldout's), by run."""
    heldout = pd.DataFrame(columns=["run"]) if heldout is None else heldout
    return pd.DataFrame([{"run": run, **training_status(curve.sort_values("step")["loss"]),
                          **heldout_status(heldout[heldout["run"] == run])}
                         for run, curve in curves.groupby("run", sort=True)]).set_index("run")
