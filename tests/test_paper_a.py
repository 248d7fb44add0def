"""Paper A end to end on known-answer embeddings: probes, LABCLIP, diagnostics, tables and figures."""
import pandas as pd
import pytest
from PIL import Image

from synthetic import synthetic_embedded
from workflow_scripts.analyses.binding import binding_rows
from workflow_scripts.analyses.labclip import map_text, train_labclip
from workflow_scripts.analyses.probes import load_probe_weights, probe_table, save_probe_weights
from workflow_scripts.datasets.clevr import generate_scenes
from workflow_scripts.summary import reference
from workflow_scripts.summary.figures import PAPER_A_FIGURES, draw
from workflow_scripts.summary.tables import binding_markdown, binding_table, probe_markdown
from workflow_scripts.summary.tables import probe_table as probe_summary

PROBES = {"solver": "lbfgs", "lbfgs": {"l2_grid": [0.0, 0.001, 0.01]}}


@pytest.fixture(scope="module")
def data():
    spec = {"objects_per_scene": [2], "scenes_per_count": 1500, "negatives_per_scene": 1, "shards": 1,
            "splits": {"train": 0.8, "val": 0.1, "test": 0.1}}
    return synthetic_embedded(generate_scenes("syn", spec, 320, 240, seed=0).to_pylist())


@pytest.fixture(scope="module")
def results(data, tmp_path_factory):
    probes, weights = probe_table(data, PROBES, seed=0)
    path = tmp_path_factory.mktemp("weights") / "probe_weights.npz"
    save_probe_weights(weights, path)
    variants = {"CLIP": lambda text: text}
    for mode in ("SB", "HNB"):
        model, _ = train_labclip(data.subset(data.split == "train"), data.subset(data.split == "val"), mode,
                                 lr=0.01, epochs=30, batch_size=128, seed=0)
        variants[f"LABCLIP-{mode}"] = lambda text, model=model: map_text(model, text)
    binding, cosines = binding_rows(data, variants, PROBES, load_probe_weights(path), seed=0)
    return probes.to_pandas(), binding.to_pandas().set_index("variant"), cosines.to_pandas()


def test_probes_decode_the_binding_in_each_modality(results):
    probes, _, _ = results
    assert len(probes) == 6  # 3 categories x 2 modalities
    assert (probes["test_accuracy"] >= 0.9).all()
    assert (probes["chance"] == 0.125).all()


def test_cosine_sees_a_bag_of_words_and_labclip_hnb_restores_binding(results):
    _, binding, _ = results
    assert binding.loc["CLIP", "image_to_text_accuracy"] == pytest.approx(0.5, abs=0.1)
    assert binding.loc["CLIP", "text_to_image_accuracy"] == pytest.approx(0.5, abs=0.1)
    assert binding.loc["LABCLIP-HNB", "image_to_text_accuracy"] >= 0.9
    assert binding.loc["LABCLIP-HNB", "text_to_image_accuracy"] >= 0.9
    # Hard negatives pull a caption away from its swapped twin, and the probes of the two modalities together.
    assert binding.loc["LABCLIP-HNB", "caption_negative_cosine"] < binding.loc["CLIP", "caption_negative_cosine"]
    assert binding.loc["LABCLIP-HNB", "probe_weight_cosine"] > binding.loc["CLIP", "probe_weight_cosine"]


def test_per_scene_cosines_cover_the_test_split_for_every_variant(data, results):
    _, _, cosines = results
    n_test = int((data.split == "test").sum())
    assert cosines.groupby("variant").size().to_dict() == {"CLIP": n_test, "LABCLIP-HNB": n_test, "LABCLIP-SB": n_test}


def labelled(frame: pd.DataFrame, weights: str) -> pd.DataFrame:
    frame = frame.reset_index()
    frame.insert(0, "weights", weights)
    frame.insert(0, "model_id", "syn-model")
    frame.insert(0, "dataset", "syn")
    return frame


def test_tables_put_the_references_beside_ours(data, results):
    probes, binding, _ = results
    summary = probe_summary(labelled(probes, data.weights))
    means = summary[summary["object"] == "mean"].set_index("modality")
    assert means.loc["image", "reference_test_accuracy"] == reference.PROBE_ACCURACY["image"]
    assert means.loc["text", "test_accuracy"] == pytest.approx(probes[probes["modality"] == "text"]["test_accuracy"].mean())
    assert summary[summary["object"] != "mean"]["reference_test_accuracy"].isna().all()
    assert "| syn | syn-model |" in probe_markdown(summary)

    table = binding_table(labelled(binding, data.weights)).set_index("variant")
    assert table.loc["CLIP", "reference_binding_accuracy"] == 0.58
    assert table.loc["LABCLIP-HNB", "reference_probe_weight_cosine"] == 0.75
    markdown = binding_markdown(table.reset_index())
    assert "| LABCLIP-HNB |" in markdown and "0.580" in markdown


@pytest.mark.parametrize("name", sorted(PAPER_A_FIGURES))
def test_every_figure_is_drawn_as_png_and_pdf(name, data, results, tmp_path):
    probes, binding, cosines = results
    probe_rows = probe_summary(labelled(probes, "random initialisation, torch seed 0"))
    tables = {"probes": probe_rows, "binding": binding_table(labelled(binding, "random initialisation, torch seed 0")),
              "cosines": labelled(cosines.set_index("variant"), "random initialisation, torch seed 0")}
    draw(name, tables, tmp_path / "f.png", tmp_path / "f.pdf")
    with Image.open(tmp_path / "f.png") as png:
        assert png.size[0] > 300 and png.size[1] > 200
    assert (tmp_path / "f.pdf").read_bytes().startswith(b"%PDF")
