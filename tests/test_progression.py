"""The training tables and figure (summary/tables.py, figures.py): known shares in, the same shares out, grouped
by run, step and caption order."""
import io
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from workflow_scripts.summary.figures import draw
from workflow_scripts.summary.tables import caption_order_markdown, caption_order_table, progression_markdown
from workflow_scripts.summary.tables import progression_table, t975

WEIGHTS = "CLIP trained in this workflow on synthetic scenes (run {run}: dataset train, seed {seed}; step {step} of 10)"
# Final TOR first-named shares (clean protocol, 2 names) per caption order and seed
FINAL = {("large_first", 0): 0.6, ("large_first", 1): 0.7, ("large_first", 2): 0.8,
         ("random", 0): 0.5, ("random", 1): 0.5, ("random", 2): 0.5}


def trained():
    return {f"{order}-{seed}-{step}": {"run": f"{order}_{seed}", "step": step, "steps": 10, "seed": seed,
                                       "caption_order": order, "train_dataset": "train", "init": "",
                                       "hard_negatives": False}
            for order, seed in FINAL for step in (0, 10)}


def as_read_back(frame: pd.DataFrame) -> pd.DataFrame:
    """The table as the rule reads it: through CSV (IOR's large_position then mixes 'all' and numbers)."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    buffer.seek(0)
    return pd.read_csv(buffer)


def source_tables():
    tor, ior = [], []
    for model_id, info in {**trained(), "published": None}.items():
        run, seed, step = (info["run"], info["seed"], info["step"]) if info else ("x", 0, 0)
        labels = {"dataset": "eval", "model_id": model_id, "precision": "fp32",
                  "weights": WEIGHTS.format(run=run, seed=seed, step=step) if info else "openai"}
        final = FINAL[(info["caption_order"], seed)] if info and step == 10 else 0.5
        for protocol in ("authors", "clean"):
            for method, template, share in (("caption", "short", final), ("split-authors_sum", "short", 0.9),
                                            ("caption", "long", 0.1)):
                tor.append({**labels, "protocol": protocol, "template": template, "method": method, "n_objects": 2,
                            "n_captions": 200, "first_retrieved_share_1": share if protocol == "clean" else 0.95})
        for position, share in (("all", 0.75), (1, 0.2)):
            ior.append({**labels, "ranked_among": "own_objects", "n_objects": 4, "large_position": position,
                        "n_large_images": 40, "large_first_share": share})
        ior.append({**labels, "ranked_among": "all_references", "n_objects": 4, "large_position": "all",
                    "n_large_images": 40, "large_first_share": 0.0})
    return {"tor": as_read_back(pd.DataFrame(tor)), "ior": as_read_back(pd.DataFrame(ior))}


@pytest.fixture(scope="module")
def progression():
    return progression_table(source_tables(), trained())


def test_progression_keeps_one_row_per_checkpoint_measure_and_count(progression):
    assert len(progression) == len(trained()) * 3 and "published" not in set(progression["model_id"])
    clean = progression[progression["measure"] == "TOR first-named share (clean)"].set_index("model_id")
    assert clean.loc["large_first-1-10", "share"] == 0.7 and clean.loc["large_first-1-0", "share"] == 0.5
    assert clean.loc["large_first-1-10", ["run", "seed", "step", "n"]].tolist() == ["large_first_1", 1, 10, 200]
    assert (clean["chance"] == 0.5).all()
    authors = progression[progression["measure"] == "TOR first-named share (authors)"]
    assert (authors["share"] == 0.95).all() and authors["chance"].isna().all()
    ior = progression[progression["measure"] == "IOR large-object share"]
    assert (ior["share"] == 0.75).all() and (ior["n"] == 40).all() and (ior["chance"] == 0.25).all()
    row = clean.loc["random-0-10"]  # Wilson interval of 100 of 200
    assert row["share_low95"] == pytest.approx(0.4314, abs=1e-4) and row["share_high95"] == pytest.approx(0.5686,
                                                                                                      abs=1e-4)
    text = progression_markdown(progression)
    assert "| TOR first-named share (clean) | eval | 2 | large_first_0 | large_first | 0 | not recorded | not measured | 10 | 10 |" in text
    assert "0.600 [0.531, 0.665]" in text


def test_caption_order_gives_each_orders_mean_spread_and_runs(progression):
    table = caption_order_table({"training_progression": as_read_back(progression)})
    clean = table[table["measure"] == "TOR first-named share (clean)"].set_index("caption_order")
    large_first = clean.loc["large_first"]
    assert large_first["n_runs"] == 3 and large_first["seeds"] == "0 1 2"
    assert large_first["mean_share"] == pytest.approx(0.7) and large_first["sd_over_seeds"] == pytest.approx(0.1)
    half = 4.303 * 0.1 / math.sqrt(3)  # t(0.975, 2 degrees of freedom)
    assert large_first["mean_low95"] == pytest.approx(0.7 - half) and large_first["mean_high95"] == pytest.approx(
        0.7 + half)
    assert large_first["runs"].startswith("seed 0: 0.600 [0.531, 0.665], n=200; seed 1: 0.700")
    assert clean.loc["random", "sd_over_seeds"] == 0 and clean.loc["random", "mean_share"] == 0.5
    assert len(table) == 2 * 3  # two orders, three measures: the step-0 checkpoints are left out
    assert "| TOR first-named share (clean) | eval | 2 | large_first | train | 10 | fp32 | 3 | none | none | 0.700 [0.452, 0.948] |" in (
        caption_order_markdown(table))


def test_progression_figure_draws_every_measure(progression, tmp_path):
    draw("training_progression", {"progression": as_read_back(progression)}, tmp_path / "p.png", tmp_path / "p.pdf")
    with Image.open(tmp_path / "p.png") as png:
        assert png.size[0] > 600
    assert (tmp_path / "p.pdf").stat().st_size > 0


@pytest.mark.parametrize("df, exact", [(1, 12.7062), (3, 3.1824), (12, 2.1788), (31, 2.0395), (40, 2.0211),
                                       (60, 2.0003), (120, 1.9799), (1000, 1.9623)])
def test_t_quantile_matches_the_exact_values(df, exact):
    """Student's t 97.5% quantiles (exact values from the t distribution) on both sides of the table's end."""
    assert t975(df) == pytest.approx(exact, abs=1e-3)


# --- each run's convergence, from its loss curve -------------------------------------------------------------------
def curves(losses_by_run: dict) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"run": run, "step": range(1, len(losses) + 1), "loss": losses, "batch_size": 8,
                                    "checkpoint": False}) for run, losses in losses_by_run.items()], ignore_index=True)


def test_training_status_on_planted_loss_curves():
    from workflow_scripts.summary.runs import training_status

    falling = [4.0] * 10 + [3.0] * 80 + [1.0] * 10
    assert training_status(falling) == {"training": "converged", "start_loss": 4.0, "final_loss": 1.0,
                                        "lowest_loss": 1.0}
    rising = [2.0] * 10 + [1.0] * 80 + [2.5] * 10  # fell, then ended above where it started
    assert training_status(rising)["training"] == "diverged" and training_status(rising)["lowest_loss"] == 1.0
    assert training_status([2.0] * 50 + [float("nan")] * 50)["training"] == "diverged"
    assert training_status([3.0, 2.0])["training"] == "converged"  # one step per window on a short run


def test_a_diverged_run_is_flagged_in_both_tables_and_kept():
    losses = {f"{order}_{seed}": [4.0] * 10 + [2.0] * 10 for order, seed in FINAL}
    losses["random_1"] = [4.0] * 10 + [float("inf")] * 10
    tables = {**source_tables(), "runs": curves(losses)}
    progression = progression_table(tables, trained())
    flags = progression.drop_duplicates("run").set_index("run")["training"]
    assert flags["random_1"] == "diverged" and (flags.drop("random_1") == "converged").all()
    assert "| random_1 | random | 1 | diverged |" in progression_markdown(progression)
    table = caption_order_table({"training_progression": as_read_back(progression)})
    clean = table[table["measure"] == "TOR first-named share (clean)"].set_index("caption_order")
    assert clean.loc["random", "diverged_runs"] == "seed 1" and clean.loc["large_first", "diverged_runs"] == "none"
    assert clean.loc["random", "n_runs"] == 3  # reported, not dropped
    assert "seed 1" in caption_order_markdown(table)


def test_progression_without_loss_curves_says_so(progression):
    assert (progression["training"] == "not recorded").all()


def test_caption_order_difference_gives_each_pair_of_orders_and_its_welch_interval(progression):
    from workflow_scripts.summary.tables import caption_order_difference_markdown, caption_order_difference_table

    table = caption_order_difference_table({"training_progression": as_read_back(progression)})
    clean = table[table["measure"] == "TOR first-named share (clean)"].iloc[0]
    assert clean["orders"] == "large_first - random" and clean["n_seeds"] == "3, 3"
    assert clean["difference"] == pytest.approx(0.2)
    # random's seeds agree, so Welch's degrees of freedom are large_first's 2 and the standard error sqrt(0.01 / 3)
    half = 4.303 * math.sqrt(0.01 / 3)
    assert clean["difference_low95"] == pytest.approx(0.2 - half, abs=1e-3)
    assert clean["difference_high95"] == pytest.approx(0.2 + half, abs=1e-3)
    assert len(table) == 3  # one pair of orders per measure
    assert "| large_first - random | train | 10 | fp32 | 3, 3 | 0.700 | 0.500 | 0.200 [-0.048, 0.448] |" in (
        caption_order_difference_markdown(table))


def test_a_run_whose_heldout_loss_ends_at_chance_is_flagged_and_kept():
    from workflow_scripts.summary.runs import heldout_status

    def measured(run, losses):
        return pd.DataFrame({"run": run, "step": [0, 5, 10][:len(losses)], "loss": losses, "batch_size": 64})

    chance = np.log(64)
    assert heldout_status(measured("a", [4.2, 3.0]))["heldout"] == "below chance"
    assert heldout_status(measured("a", [4.2, 3.0, chance]))["heldout"] == "not below chance"  # the last counts
    assert heldout_status(measured("a", [4.2, float("nan")]))["heldout"] == "not below chance"
    assert heldout_status(measured("a", []))["heldout"] == "not measured"
    losses = {f"{order}_{seed}": [4.0] * 10 + [2.0] * 10 for order, seed in FINAL}
    heldout = pd.concat([measured(run, [4.2, 5.0 if run == "large_first_2" else 3.0]) for run in losses])
    tables = {**source_tables(), "runs": curves(losses), "heldout": heldout}
    progression = progression_table(tables, trained())
    flags = progression.drop_duplicates("run").set_index("run")
    assert flags.loc["large_first_2", "heldout"] == "not below chance"
    assert (flags.drop("large_first_2")["heldout"] == "below chance").all()
    assert flags.loc["large_first_2", "heldout_chance"] == pytest.approx(chance)
    assert "| large_first_2 | large_first | 2 | converged | not below chance |" in progression_markdown(progression)
    table = caption_order_table({"training_progression": as_read_back(progression)})
    clean = table[table["measure"] == "TOR first-named share (clean)"].set_index("caption_order")
    assert clean.loc["large_first", "heldout_not_below_chance"] == "seed 2"
    assert clean.loc["random", "heldout_not_below_chance"] == "none" and clean.loc["large_first", "n_runs"] == 3
    without = progression_table({**source_tables(), "runs": curves(losses)}, trained())
    assert (without["heldout"] == "not measured").all()
