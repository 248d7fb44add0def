"""The one-screen summary (summary/brief.py): known table rows in, the lines a reader needs out."""
import pandas as pd

from workflow_scripts.summary.brief import brief

WEIGHTS = ("CLIP trained in this workflow on synthetic scenes (run {run}: dataset lab, 100 train items, caption order "
           "as_generated, seed 0, from scratch, without hard negatives; step 10 of 10), sha256 abc")
TRAINED = {
    "lab-a": {"run": "lab_a", "step": 10, "steps": 10, "init": "", "hard_negatives": False},
    "lab-a-half": {"run": "lab_a", "step": 5, "steps": 10, "init": "", "hard_negatives": False},
    "lab-b": {"run": "lab_b", "step": 10, "steps": 10, "init": "", "hard_negatives": False},
    "lab-b-ft": {"run": "lab_b_ft", "step": 10, "steps": 10, "init": "lab-b", "hard_negatives": True},
}


def probe_rows():
    rows = []
    for model, (image, text) in {"lab-a": (0.5, 0.6), "lab-b": (0.92, 0.97), "lab-b-ft": (0.1, 0.1)}.items():
        for modality, accuracy in (("image", image), ("text", text)):
            for protocol in ("authors", "clean"):
                rows.append({"dataset": "lab_clevr", "dataset_kind": "clevr", "model_id": model, "modality": modality,
                             "protocol": protocol, "object": "mean", "n_objects": 2, "n_test": 200,
                             "test_accuracy": accuracy if protocol == "clean" else 0.0, "test_accuracy_low95": 0.8,
                             "test_accuracy_high95": 0.99, "weights": WEIGHTS.format(run=model)})
    return pd.DataFrame(rows)


def binding_rows():
    rows = []
    for model, variant, selection, accuracy in [("lab-b", "CLIP", "", 0.55), ("lab-b", "LABCLIP-SB", "best_val", 0.6),
                                                ("lab-b", "LABCLIP-SB", "last_epoch", 0.0),
                                                ("lab-b", "LABCLIP-HNB", "best_val", 0.9),
                                                ("lab-b-ft", "CLIP", "", 0.8), ("lab-a", "CLIP", "", 0.0)]:
        rows.append({"dataset": "lab_clevr", "model_id": model, "variant": variant, "selection": selection,
                     "protocol": "clean", "image_to_text_accuracy": accuracy, "image_to_text_accuracy_low95": 0.5,
                     "image_to_text_accuracy_high95": 0.95, "n_scored": 180, "weights": WEIGHTS.format(run=model)})
    return pd.DataFrame(rows)


def test_the_summary_reports_the_selected_clips_premise_paper_a_row_and_each_arm_difference():
    selection = pd.DataFrame({"run": ["lab_a", "lab_b"], "selected": [False, True],
                              "criterion": "heldout_loss", "criterion_value": [1.5, 1.2]})
    differences = pd.DataFrame([{"measure": "TOR first-named share (clean)", "n_objects": 3,
                                 "orders": "large_first - random", "n_seeds": "5, 5", "mean_first": 0.6,
                                 "mean_second": 0.33, "difference": 0.27, "difference_low95": 0.1,
                                 "difference_high95": 0.44}])
    caption_order = pd.DataFrame([{"caption_order": order, "n_runs": 5, "heldout_not_below_chance": flagged}
                                  for order, flagged in (("large_first", "seed 0 seed 3"), ("random", "none"),
                                                         ("large_first", "seed 0 seed 3"))])
    text = brief({"clip_selection": selection, "probes": probe_rows(), "binding": binding_rows(),
                  "caption_order": caption_order, "caption_order_difference": differences}, TRAINED)
    lines = text.splitlines()
    assert lines[0] == "selection: run lab_b by heldout_loss (1.200; the other candidates: lab_a 1.500)"
    assert lines[1].startswith("precondition: image probes 0.920 [0.800, 0.990], n=200, text probes 0.970 "
                               "[0.800, 0.990], n=200")
    assert "lab-a" not in lines[1] and "lab-b-ft" not in lines[1]
    assert lines[2] == ("paper A, lab_clevr (lab-b): binding CLIP 0.550 [0.500, 0.950], n=180; LABCLIP-SB 0.600 "
                        "[0.500, 0.950], n=180; LABCLIP-HNB 0.900 [0.500, 0.950], n=180; CLIP-FT 0.800 [0.500, "
                        "0.950], n=180")
    assert lines[3] == ("data order, runs whose held-out loss ended not below chance (they memorised their training "
                        "pairs): large_first seed 0 seed 3 of 5; random none of 5")
    assert lines[4] == ("data order, TOR first-named share (clean), 3 objects: large_first - random = 0.270 [0.100, "
                        "0.440] (seeds 5, 5; 0.600 vs 0.330)")
    assert lines[5].startswith("weights of lab-b: CLIP trained in this workflow") and len(lines) == 6


def test_without_a_selection_every_model_trained_from_scratch_is_summarised():
    text = brief({"probes": probe_rows()}, TRAINED)
    assert text.count("precondition:") == 2 and "model lab-a," in text and "model lab-b," in text
    assert brief({}, {}) == "no table of this run has a summary line\n"
