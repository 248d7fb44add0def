"""Every share in a table carries its count and a 95% interval, and every bar in a figure draws it."""
import numpy as np
import pandas as pd
import pytest

from workflow_scripts.summary import figures
from workflow_scripts.summary.tables import (
    binding_markdown,
    binding_table,
    matching_markdown,
    matching_table,
    wilson_interval,
)


@pytest.mark.parametrize("share, n, expected", [
    (0.0, 10, (0.0, 0.2775)),
    (0.5, 10, (0.2366, 0.7634)),
    (1.0, 11, (0.7412, 1.0)),
    (0.5, 1000, (0.4691, 0.5309)),
])
def test_wilson_interval_known_values(share, n, expected):
    low, high = wilson_interval([share], [n])
    assert (low[0], high[0]) == pytest.approx(expected, abs=1e-4)


def test_no_items_give_no_interval():
    low, high = wilson_interval([0.5, np.nan], [0, 10])
    assert np.isnan(low).all() and np.isnan(high).all()


def binding_rows(n_test=11, accuracies=(6 / 11, 10 / 11)):
    return pd.DataFrame([{"dataset": "d", "dataset_kind": "clevr", "model_id": "m",
                          "weights": "random initialisation, torch seed 0", "protocol": "clean",
                          "selection": "none" if v == "CLIP" else "last_epoch", "epoch": None,
                          "probe_weight_target": "unique l2 0.001", "n_bootstrap": 0,
                          "variant": v, "n_test": n_test, "n_same_binding": 0, "n_scored": n_test,
                          "image_to_text_accuracy": acc, "n_recall_images": n_test,
                          **{f"recall_at_{k}": np.nan for k in (1, 5, 10)},
                          "n_twin_pairs": 0,
                          "text_to_image_accuracy": np.nan, "modality_gap": 0.1, "caption_negative_cosine": 0.9,
                          "probe_weight_cosine": 0.2} for v, acc in zip(("CLIP", "LABCLIP-HNB"), accuracies)])


def test_a_number_from_eleven_items_looks_like_one():
    table = binding_table(binding_rows()).set_index("variant")
    low, high = table.loc["CLIP", "image_to_text_accuracy_low95"], table.loc["CLIP", "image_to_text_accuracy_high95"]
    assert low < 0.3 and high > 0.75  # 6 of 11: anything from a coin flip's worse half to good binding
    assert np.isnan(table.loc["CLIP", "text_to_image_accuracy_low95"])  # no twin pair: no interval
    markdown = binding_markdown(table.reset_index())
    assert "| 0.545 [0.280, 0.787], n=11 |" in markdown and "95% Wilson interval" in markdown


def test_matching_markdown_shows_counts_and_intervals():
    rows = pd.DataFrame([{"dataset": "s", "model_id": "m", "weights": "w", "n_objects": 3, "condition": "original",
                          "large_position": "pooled", "method": "caption", "accuracy": 0.5, "n_pairs": 10,
                          "n_scenes": 10}])
    assert "| pooled | caption | 0.500 [0.237, 0.763] | 10 | 10 |" in matching_markdown(matching_table(rows))


def test_every_bar_draws_its_own_interval(tmp_path):
    table = binding_table(pd.concat([binding_rows(11), binding_rows(400, (0.3, 0.7)).assign(model_id="m2")]))
    fig, _ = figures.binding_accuracy({"binding": table})
    drawn, n_bars = [], 0
    for ax in fig.axes:  # one panel per model
        whiskers = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
        bars = [bar for c in ax.containers if type(c).__name__ == "BarContainer" for bar in c]
        assert len(whiskers) == len(bars)
        n_bars += len(bars)
        height_at = {round(b.get_x() + b.get_width() / 2, 6): b.get_height() for b in bars}
        drawn += [(round(height_at[round(float(w.lines[2][0].get_segments()[0][0, 0]), 6)], 3),
                   *np.round(w.lines[2][0].get_segments()[0][:, 1], 3)) for w in whiskers]
    assert n_bars == 4
    drawn.sort()
    expected = sorted(tuple(np.round((r.image_to_text_accuracy, r.image_to_text_accuracy_low95,
                                      r.image_to_text_accuracy_high95), 3)) for r in table.itertuples())
    assert drawn == expected  # each whisker stands on the bar whose value it belongs to


def test_figure_titles_say_in_a_few_words_what_weights_each_model_has():
    weights_note = figures.weights_note
    trained = ("CLIP trained in this workflow on synthetic scenes (run r: dataset d, 8 train items, caption order "
               "as_generated, seed 0; step 4 of 4); open_clip local-dir checkpoint results/x, "
               "open_clip_model.safetensors sha256 abc")
    frame = pd.DataFrame({"model_id": ["clip", "clip", "rand"],
                          "weights": [trained, trained, "random initialisation, torch seed 0"]})
    note = weights_note(frame)
    assert note == ("weights: clip: CLIP trained in this workflow on synthetic scenes (run r, step 4 of 4); rand: "
                    "RANDOM weights (the pipeline, not CLIP's behaviour)")
    assert "sha256" not in note
    assert weights_note(frame[frame.model_id == "rand"]) == "weights: RANDOM weights (the pipeline, not CLIP's behaviour)"
    tuned = ("CLIP trained in this workflow on synthetic scenes (run ft: dataset d, 8 train items, caption order "
             "as_generated, seed 0, fine-tuned from model clip with hard negatives; step 2 of 2); open_clip local-dir")
    assert weights_note(pd.DataFrame({"model_id": ["ft"], "weights": [tuned]})) == (
        "weights: CLIP trained in this workflow on synthetic scenes (run ft, fine-tuned from model clip with hard "
        "negatives, step 2 of 2)")


def test_markdown_tables_show_weights_short_and_give_them_in_full_below():
    from workflow_scripts.summary.tables import markdown_table

    trained = ("CLIP trained in this workflow on synthetic scenes (run r: dataset d, 8 train items, caption order "
               "as_generated, seed 0; step 4 of 4); open_clip local-dir checkpoint results/x, sha256 abc")
    text = markdown_table([{"model_id": "clip", "weights": trained, "acc": 0.5},
                           {"model_id": "b32", "weights": "open_clip pretrained tag ViT-B-32/openai", "acc": 0.25}],
                          ["model_id", "weights", "acc"])
    table, footnote = text.split("\n\n")
    assert "sha256" not in table and "| clip | CLIP trained in this workflow on synthetic scenes (run r, step 4 of 4) |" in table
    assert "| b32 | open_clip pretrained tag ViT-B-32/openai | 0.250 |" in table
    assert footnote == f"Weights of clip: {trained}.\n"
