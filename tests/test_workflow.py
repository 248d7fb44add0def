"""The workflow itself, run by Snakemake: a tiny config end to end, the full DAG, lint, bad configs."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from PIL import Image

from conftest import REPO
from workflow_scripts.embed import load_model
from workflow_scripts.labclip import LabClip, export_authors_weights, load_labclip
from workflow_scripts.tables import embedding_matrix, read_provenance

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
TINY = {
    "seed": 5,
    "datasets": {"toy": {"objects_per_scene": [2, 3], "scenes_per_count": 10, "shards": 2}},
    "render": {"resolution": [64, 64], "samples": 4},
    "models": [{"id": "rand", "name": "ViT-B-32", "pretrained": "none"}],
    "embedding": {"device": "cpu", "precision": "fp32", "batch_size": 8, "num_workers": 0},
    "paper_a": {"probes": {"solver": "lbfgs"}, "labclip": {"epochs": 3, "batch_size": 8, "device": "cpu"}},
    "paper_b": {"tor": {"objects_per_caption": [2, 3], "captions_per_count": 20}},
}
PAPER_A_FIGURES = ["probe_accuracy", "probes_vs_objects", "binding_accuracy", "caption_cosines", "modality_gap"]


def snakemake(*args, cwd=REPO):
    return subprocess.run(
        [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), *map(str, args)],
        cwd=cwd, capture_output=True, text=True,
    )


def write_config(folder: Path, config: dict) -> Path:
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny")
    maps = {"identity": LabClip(512), "too_small": LabClip(4)}  # the second fits no model: skipped
    for name, model in maps.items():
        export_authors_weights(model, workdir / f"{name}.pt")
    published = {name: str(workdir / f"{name}.pt") for name in maps}
    config = write_config(workdir, {**TINY, "paper_a": {**TINY["paper_a"], "published_maps": published}})
    run = snakemake("--cores", 2, "--directory", workdir, "--configfile", config)
    assert run.returncode == 0, run.stderr[-3000:]
    return workdir, config


def test_tiny_run_leaves_scenes_pngs_and_embeddings(tiny_run):
    workdir, _ = tiny_run
    results = workdir / "results" / "toy"
    scenes = pq.read_table(results / "scenes.parquet")
    assert scenes.num_rows == 20
    for image in scenes.column("image").to_pylist():
        with Image.open(results / image) as png:
            assert png.size == (64, 64)

    images = pq.read_table(results / "embeddings/rand/images.parquet")
    assert images.column("scene_id").to_pylist() == scenes.column("scene_id").to_pylist()
    assert embedding_matrix(images.column("embedding")).shape == (20, 512)
    provenance = read_provenance(results / "embeddings/rand/images.parquet")
    assert provenance["pretrained"] == "none" and provenance["dim"] == 512
    assert provenance["weights"] == "random initialisation, torch seed 5"

    texts = pq.read_table(results / "embeddings/rand/texts.parquet")
    assert texts.num_rows == 40
    assert set(texts.column("scene_id").to_pylist()) == set(scenes.column("scene_id").to_pylist())
    assert read_provenance(results / "embeddings/rand/texts.parquet")["kind"] == "texts"
    for rule in ["scene_specs", "render_shard", "embed_images", "embed_texts", "paper_a_probes", "labclip_train",
                 "paper_a_binding", "paper_a_tables", "paper_a_figure"]:
        assert list((workdir / "results/logs" / rule).rglob("*.log")), rule


def test_tiny_run_writes_paper_a_tables_and_figures(tiny_run):
    workdir, _ = tiny_run
    tables = workdir / "results/paper_a/tables"
    binding = pd.read_csv(tables / "binding.csv").set_index("variant")
    assert sorted(binding.index) == ["CLIP", "LABCLIP-HNB", "LABCLIP-SB", "published:identity"]
    # The identity map only normalises, which cosine similarity ignores: it must score exactly as CLIP.
    for column in ["image_to_text_accuracy", "caption_negative_cosine", "modality_gap"]:
        assert binding.loc["published:identity", column] == pytest.approx(binding.loc["CLIP", column], abs=1e-6)
    assert "too_small" in (workdir / "results/logs/paper_a_binding/toy/rand.log").read_text()
    assert set(binding["weights"]) == {"random initialisation, torch seed 5"}
    assert binding["image_to_text_accuracy"].between(0, 1).all()
    probes = pd.read_csv(tables / "probes.csv")
    assert set(probes["modality"]) == {"image", "text"} and "mean" in set(probes["shape"])
    assert "random initialisation" in (tables / "probes.md").read_text()
    for name in PAPER_A_FIGURES:
        with Image.open(workdir / f"results/paper_a/figures/{name}.png") as png:
            assert png.size[0] > 300
        assert (workdir / f"results/paper_a/figures/{name}.pdf").stat().st_size > 1000
    model = workdir / "results/toy/paper_a/rand"
    assert read_provenance(model / "labclip_HNB_history.parquet")["mode"] == "HNB"
    assert load_labclip(model / "labclip_HNB.safetensors")[1]["weights"] == "random initialisation, torch seed 5"


def test_tiny_run_writes_paper_b_tor(tiny_run):
    workdir, _ = tiny_run
    tor = pd.read_csv(workdir / "results/paper_b/tables/tor.csv")
    assert set(zip(tor["template"], tor["n_objects"], tor["method"])) == {
        (t, n, m) for t in ("short", "long") for n in (2, 3) for m in ("caption", "split-mean")}
    shares = tor[[f"first_retrieved_share_{p}" for p in (1, 2, 3)]].sum(axis=1) + tor["not_mentioned_share"]
    assert np.allclose(shares[tor["n_objects"] == 3], 1.0)
    assert set(tor["weights"]) == {"random initialisation, torch seed 5"}
    assert (workdir / "results/paper_b/figures/tor_position_bias.pdf").stat().st_size > 1000


def test_workflow_embeddings_equal_open_clip_on_the_rendered_png(tiny_run):
    workdir, _ = tiny_run
    results = workdir / "results" / "toy"
    scenes = pq.read_table(results / "scenes.parquet").to_pylist()
    stored = embedding_matrix(pq.read_table(results / "embeddings/rand/images.parquet").column("embedding"))
    texts = pq.read_table(results / "embeddings/rand/texts.parquet")
    model, preprocess, tokenizer, _ = load_model("ViT-B-32", "none", seed=TINY["seed"])
    with torch.no_grad():
        image = preprocess(Image.open(results / scenes[3]["image"]).convert("RGB")).unsqueeze(0)
        np.testing.assert_allclose(stored[3], model.encode_image(image)[0].numpy(), atol=1e-4, rtol=1e-4)
        negative = scenes[3]["negative_captions"][0]
        row = texts.column("text").to_pylist().index(negative)
        np.testing.assert_allclose(
            embedding_matrix(texts.column("embedding"))[row], model.encode_text(tokenizer([negative]))[0].numpy(),
            atol=1e-4, rtol=1e-4,
        )


def test_finished_run_has_nothing_left_to_do(tiny_run):
    workdir, config = tiny_run
    run = snakemake("-n", "--cores", 1, "--directory", workdir, "--configfile", config)
    assert run.returncode == 0 and "Nothing to be done" in run.stdout + run.stderr


def test_one_output_can_be_built_alone(tiny_run, tmp_path):
    config = write_config(tmp_path, TINY)
    run = snakemake("results/toy/scenes.parquet", "--cores", 1, "--directory", tmp_path, "--configfile", config)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "results/toy/scenes.parquet").exists()
    assert not (tmp_path / "results/toy/images").exists()
    figure = snakemake("results/paper_a/figures/modality_gap.png", "-n", "--cores", 1, "--directory", tmp_path,
                       "--configfile", config)
    assert figure.returncode == 0 and "paper_a_figure" in figure.stdout
    assert "probe_accuracy" not in figure.stdout
    same = pq.read_table(tiny_run[0] / "results/toy/scenes.parquet")
    assert pq.read_table(tmp_path / "results/toy/scenes.parquet").equals(same)


def test_bad_config_stops_before_any_job(tmp_path):
    config = write_config(tmp_path, {**TINY, "render": {"sampels": 4}})
    run = snakemake("--cores", 1, "--directory", tmp_path, "--configfile", config)
    assert run.returncode != 0
    assert "render: Additional properties are not allowed ('sampels' was unexpected)" in run.stderr
    assert not (tmp_path / "results").exists()


def test_full_config_builds_the_paper_scale_dag(tmp_path):
    run = snakemake("-n", "--cores", 1, "--directory", tmp_path, "--configfile", REPO / "config.yaml")
    assert run.returncode == 0, run.stderr[-2000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", run.stdout, re.MULTILINE))
    assert counts["scene_specs"] == "2"
    assert counts["render_shard"] == "230"
    assert counts["embed_images"] == counts["embed_texts"] == "4"
    assert counts["paper_a_probes"] == counts["paper_a_binding"] == "4"
    assert counts["labclip_train"] == "8"
    assert counts["paper_a_figure"] == "5" and counts["paper_a_tables"] == "1"
    assert counts["paper_b_tor"] == "2" and counts["paper_b_figure"] == "1"


def test_lint_is_clean():
    run = snakemake("--lint")
    assert "Congratulations, your workflow is in a good condition" in run.stdout + run.stderr, run.stdout
