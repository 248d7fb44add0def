"""The loss curves of the CLIPs trained in the workflow (rule train_clip's training.json), read for the training
figure and tables, and whether each run converged: a flag fixed before any result, on the loss alone."""
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
        last = sorted(Path(run_dir).glob("step-*"))[-1]
        record = json.loads((last / "training.json").read_text())
        saved = {int(p.name.split("-")[1]) for p in Path(run_dir).glob("step-*")}
        steps = range(1, len(record["loss"]) + 1)
        frames.append(pd.DataFrame({"run": record["run"], "step": steps, "loss": record["loss"],
                                    "batch_size": record["settings"]["batch_size"],
                                    "checkpoint": [step in saved for step in steps]}))
    return pd.concat(frames, ignore_index=True)


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


def run_statuses(curves: pd.DataFrame) -> pd.DataFrame:
    """training_status per run of read_training_curves' table, indexed by run."""
    return pd.DataFrame([{"run": run, **training_status(curve.sort_values("step")["loss"])}
                         for run, curve in curves.groupby("run", sort=True)]).set_index("run")
