"""Which trained CLIP is studied (clip_selection, summary/runs.select_run): candidates with planted training and
held-out curves, the run the rule must pick, and the table that reports the choice."""
import json
import math

import pandas as pd
import pytest

from workflow_scripts.summary.runs import read_heldout, read_training_curves, select_run
from workflow_scripts.summary.tables import clip_selection_markdown, clip_selection_table

ARCHITECTURE = {"image_size": 64, "patch_size": 8, "vision_width": 192, "vision_layers": 4, "text_width": 128,
                "text_layers": 4, "head_width": 64, "embed_dim": 128, "context_length": 32}
# run: (training loss per step, held-out (loss, image-to-text r1, text-to-image r1) at steps 0, 5, 10)
PLANTED = {
    # the lowest training loss, but held-out loss rising again: memorised its training scenes
    "overfit": ([4.0] * 5 + [0.1] * 5, [(4.8, 0.01, 0.01), (1.0, 0.70, 0.68), (2.5, 0.60, 0.60)]),
    # the lowest held-out loss at its last checkpoint: the one the rule must pick
    "general": ([4.0] * 5 + [0.9] * 5, [(4.8, 0.01, 0.01), (1.5, 0.60, 0.61), (1.2, 0.80, 0.82)]),
    # the best recall, a little behind on loss
    "recaller": ([4.0] * 5 + [0.8] * 5, [(4.8, 0.01, 0.01), (1.6, 0.70, 0.70), (1.3, 0.90, 0.90)]),
    # diverged: no finite held-out loss at the end
    "diverged": ([4.0] * 5 + [math.nan] * 5, [(4.8, 0.01, 0.01), (0.5, 0.95, 0.95), (math.nan, 0.0, 0.0)]),
}


def write_run(root, run, losses, heldout, digest="abc", heldout_batch=100):
    folder = root / run / "step-000010"
    folder.mkdir(parents=True)
    record = {"run": run, "settings": {"batch_size": 64}, "loss": losses, "heldout_items_digest": digest,
              "heldout": [{"step": step, "loss": loss, "image_to_text_r1": i2t, "text_to_image_r1": t2i,
                           "items": 500, "batch_size": heldout_batch, "batches": 5}
                          for step, (loss, i2t, t2i) in zip((0, 5, 10), heldout)]}
    (folder / "training.json").write_text(json.dumps(record))
    return root / run


@pytest.fixture
def runs(tmp_path):
    return [write_run(tmp_path, run, *curves) for run, curves in PLANTED.items()]


def test_the_lowest_heldout_loss_at_the_last_checkpoint_is_selected_not_the_lowest_training_loss(runs):
    selected, rows = select_run(read_heldout(runs), list(PLANTED), "heldout_loss")
    assert selected == "general"
    ranks = rows.set_index("run")["rank"]
    assert ranks["general"] == 1 and ranks["recaller"] == 2 and ranks["overfit"] == 3
    assert pd.isna(ranks["diverged"])  # never selected, though its mid-run loss was the lowest of all


def test_heldout_recall_selects_the_best_retrieval(runs):
    assert select_run(read_heldout(runs), list(PLANTED), "heldout_recall")[0] == "recaller"


def test_equal_candidates_go_to_the_first_listed(tmp_path):
    twins = [write_run(tmp_path, run, *PLANTED["general"]) for run in ("b_run", "a_run")]
    assert select_run(read_heldout(twins), ["b_run", "a_run"], "heldout_loss")[0] == "b_run"


def test_candidates_measured_on_other_items_or_batches_are_refused(tmp_path):
    runs = [write_run(tmp_path, "one", *PLANTED["general"]), write_run(tmp_path, "two", *PLANTED["overfit"], "xyz")]
    with pytest.raises(ValueError, match="different held-out items.*one: abc, two: xyz"):
        select_run(read_heldout(runs), ["one", "two"], "heldout_loss")
    runs.append(write_run(tmp_path, "three", *PLANTED["overfit"], heldout_batch=50))
    with pytest.raises(ValueError, match="different held-out batch sizes.*three: 50"):
        select_run(read_heldout(runs), ["one", "three"], "heldout_loss")
    with pytest.raises(ValueError, match="run\\(s\\) four measured no held-out items"):
        select_run(read_heldout(runs), ["one", "four"], "heldout_loss")


def test_the_selection_table_reports_every_candidate_and_the_choice(runs):
    settings = {run: {"architecture": ARCHITECTURE, "steps": 10, "batch_size": 64, "lr": 3e-4, "warmup_steps": 2,
                      "seed": 0, "caption_order": "as_generated"} for run in PLANTED}
    tables = {"runs": read_training_curves(runs), "heldout": read_heldout(runs)}
    table = clip_selection_table(tables, {"candidates": list(PLANTED), "criterion": "heldout_loss",
                                          "settings": settings})
    rows = table.set_index("run")
    assert rows["selected"].tolist() == [False, True, False, False]
    assert rows.loc["general", "heldout_loss"] == 1.2 and rows.loc["general", "heldout_items"] == 500
    assert rows.loc["diverged", "training"] == "diverged" and rows.loc["general", "training"] == "converged"
    assert rows.loc["general", "model"] == "ViT 64px/8 192x4, text 128x4, embed 128"
    assert rows.loc["general", "image_to_text_r1_low95"] < 0.8 < rows.loc["general", "image_to_text_r1_high95"]
    text = clip_selection_markdown(table)
    assert "**heldout_loss**" in text and "| general | **yes** | 1.200 | 1 | ViT 64px/8 192x4, text 128x4, embed 128 | 10 | 64 | 0.0003 |" in text
    assert "0.800 [0.763, 0.833], n=500" in text
    assert isinstance(table, pd.DataFrame)
