"""The workflow itself, run by Snakemake: a tiny config end to end, the full DAG, lint, bad configs."""
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from PIL import Image

# TINY, snakemake and write_config live in conftest (with the session-wide tiny_run fixture); test_profiles
# imports them from here.
from conftest import REPO, TINY, snakemake, write_config, write_meshes  # noqa: F401
from test_comco import BOXES
from workflow_scripts.models.loading import load_model
from workflow_scripts.analyses.labclip import load_labclip
from workflow_scripts.common.parquet import embedding_matrix, read_provenance

PAPER_A_FIGURES = ["probe_accuracy", "probes_vs_objects", "binding_accuracy", "caption_cosines", "modality_gap"]


def test_tiny_run_leaves_scenes_pngs_and_embeddings(tiny_run):
    workdir, _ = tiny_run
    results = workdir / "results" / "toy"
    scenes = pq.read_table(results / "items.parquet")
    assert scenes.num_rows == 20
    for image in scenes.column("image").to_pylist():
        with Image.open(results / image) as png:
            assert png.size == (64, 64)

    images = pq.read_table(results / "embeddings/rand/images.parquet")
    assert images.column("item_id").to_pylist() == scenes.column("item_id").to_pylist()
    assert embedding_matrix(images.column("embedding")).shape == (20, 512)
    provenance = read_provenance(results / "embeddings/rand/images.parquet")
    assert provenance["pretrained"] == "none" and provenance["dim"] == 512
    assert provenance["weights"] == "random initialisation, torch seed 5"

    texts = pq.read_table(results / "embeddings/rand/texts.parquet")
    assert texts.num_rows == 40
    assert set(texts.column("item_id").to_pylist()) == set(scenes.column("item_id").to_pylist())
    assert read_provenance(results / "embeddings/rand/texts.parquet")["kind"] == "texts"
    for rule in ["items", "render_shard", "embed_images", "embed_texts", "probes", "labclip", "binding", "table",
                 "figure", "tor", "ior", "matching", "mesh_geometry"]:
        assert list((workdir / "results/logs" / rule).rglob("*.log")), rule


def test_tiny_run_writes_paper_a_tables_and_figures(tiny_run):
    workdir, _ = tiny_run
    tables = workdir / "results/paper_a/tables"
    binding = pd.read_csv(tables / "binding.csv").set_index("variant")
    assert sorted(set(binding.index)) == ["CLIP", "LABCLIP-HNB", "LABCLIP-SB", "published:identity"]
    assert set(binding["protocol"]) == {"authors", "clean"}
    assert set(binding.loc["LABCLIP-HNB", "selection"]) == {"last_epoch", "best_val"}
    # The identity map only normalises, which cosine similarity ignores: under the clean protocol (cosine) it must
    # score exactly as CLIP (the authors' CLEVR rule scores CLIP's raw text, so there they may differ).
    clean = binding[binding["protocol"] == "clean"]
    for column in ["image_to_text_accuracy", "caption_negative_cosine", "modality_gap"]:
        assert clean.loc["published:identity", column] == pytest.approx(clean.loc["CLIP", column], abs=1e-6)
    assert "too_small" in (workdir / "results/logs/binding/toy/rand.log").read_text()
    assert set(binding["weights"]) == {"random initialisation, torch seed 5"}
    assert binding["image_to_text_accuracy"].between(0, 1).all()
    probes = pd.read_csv(tables / "probes.csv")
    assert set(probes["modality"]) == {"image", "text"} and "mean" in set(probes["object"])
    assert "random initialisation" in (tables / "probes.md").read_text()
    for name in PAPER_A_FIGURES:
        with Image.open(workdir / f"results/paper_a/figures/{name}.png") as png:
            assert png.size[0] > 300
        assert (workdir / f"results/paper_a/figures/{name}.pdf").stat().st_size > 1000
    labclip = workdir / "results/toy/labclip/rand"
    assert read_provenance(labclip / "HNB_history.parquet")["mode"] == "HNB"
    assert load_labclip(labclip / "HNB.safetensors")[1]["weights"] == "random initialisation, torch seed 5"


def test_tiny_run_writes_paper_b_tor(tiny_run):
    workdir, _ = tiny_run
    tor = pd.read_csv(workdir / "results/paper_b/tables/tor.csv")
    kinds = (("short", "caption"), ("short", "split-authors_sum"), ("long", "caption"))
    sized = ("size_order, large first", "size_order, large last")  # only the COCO names have size categories
    assert set(zip(tor["dataset"], tor["protocol"], tor["template"], tor["n_objects"], tor["method"])) == {
        (d, p, t, n, m) for d in ("shapes", "objects", "coco_names") for p in ("authors", "clean") for n in (2, 3)
        for t, m in kinds} | {("coco_names", p, t, n, m) for p in sized for n in (2, 3) for t, m in kinds}
    assert set(zip(tor["dataset"], tor["n_names"])) == {("shapes", 18), ("objects", 6), ("coco_names", 90)}
    shares = tor[[f"first_retrieved_share_{p}" for p in (1, 2, 3)]].sum(axis=1) + tor["not_mentioned_share"]
    assert np.allclose(shares[tor["n_objects"] == 3], 1.0)
    assert set(tor["weights"]) == {"random initialisation, torch seed 5"}
    assert not (workdir / "results/coco_names/embeddings/rand/images.parquet").exists()
    assert (workdir / "results/paper_b/figures/tor_position_bias.pdf").stat().st_size > 1000


def test_every_embedding_file_and_table_records_the_precision(tiny_run):
    workdir, _ = tiny_run
    embeddings = list((workdir / "results").glob("*/embeddings/rand/*.parquet"))
    assert len(embeddings) > 5
    assert {read_provenance(path)["precision"] for path in embeddings} == {"fp32"}  # the CPU computes in fp32
    tables = list((workdir / "results").glob("paper_*/tables/*.csv"))
    assert len(tables) == 6
    for table in tables:
        assert set(pd.read_csv(table)["precision"]) == {"fp32"}, table
        assert "| precision |" in table.with_suffix(".md").read_text(), table


def test_paper_a_s_clevr_numbers_stand_beside_the_clevr_dataset_only(tiny_run):
    workdir, _ = tiny_run
    binding = pd.read_csv(workdir / "results/paper_a/tables/binding.csv")
    assert set(zip(binding["dataset"], binding["paper_setting"].fillna(""))) == {("toy", "CLEVR")}
    reported = binding.dropna(subset=["reference_binding_accuracy"])
    assert sorted(zip(reported["variant"], reported["reference_binding_accuracy"])) == [("CLIP", 0.58),
                                                                                      ("LABCLIP-HNB", 0.95)]
    assert set(reported["reference_source"]) == {"paper A, ViT-B/32 on its own CLEVR data (second-hand figures "
                                                 "from REFERENCE.md)"}


def test_tiny_run_renders_simco_and_comco_with_their_references(tiny_run):
    workdir, _ = tiny_run
    results = workdir / "results"
    shapes = pq.read_table(results / "shapes/items.parquet").to_pylist()
    assert len(shapes) == 6 and all(s["caption"].count(" and ") == s["n_objects"] - 1 for s in shapes)
    assert len(pq.read_table(results / "shapes-references/items.parquet")) == 18
    measured = json.loads((results / "objects/meshes.json").read_text())
    assert sorted(measured) == sorted(name.replace("_", " ") for name in BOXES)
    references = pq.read_table(results / "objects-references/items.parquet").column("caption").to_pylist()
    assert references == list(measured)
    for dataset, count in (("shapes", 6), ("shapes-references", 18), ("objects", 4), ("objects-references", 6)):
        assert len(list((results / dataset / "images").rglob("*.png"))) == 2 * count, dataset  # with each's masks
        assert len(list((results / dataset / "images").rglob("*.objects.png"))) == count, dataset
        assert len(pq.read_table(results / dataset / "embeddings/rand/images.parquet")) == count, dataset


def test_tiny_run_writes_paper_b_ior_and_matching(tiny_run):
    workdir, _ = tiny_run
    tables = workdir / "results/paper_b/tables"
    ior = pd.read_csv(tables / "ior.csv")
    assert set(ior["dataset"]) == {"shapes", "objects"} and set(ior["n_objects"]) == {2, 3}
    assert set(ior["weights"]) == {"random initialisation, torch seed 5"}
    everything = ior[ior["large_position"] == "all"]
    shares = everything[["large_first_share", "small_first_share_1", "small_first_share_2"]].sum(axis=1, min_count=1)
    assert (shares <= 1 + 1e-9).all()
    matching = pd.read_csv(tables / "matching.csv")
    assert {"original", "large to first", "small to last", "large named 1"} <= set(matching["condition"])
    assert set(matching["method"]) == {"caption", "split-authors_sum"}
    assert matching["accuracy"].between(0, 1).all()
    assert set(matching["dataset"]) == {"shapes", "objects"}
    for name in ("ior", "matching"):
        assert "random initialisation" in (tables / f"{name}.md").read_text()
    for figure in ("ior_large_object", "matching_conditions"):
        assert (workdir / f"results/paper_b/figures/{figure}.pdf").stat().st_size > 1000


def test_tiny_run_writes_paper_b_attention(tiny_run):
    """Every tiny SIMCO scene has one large object; it covers more of the image than a small one."""
    workdir, _ = tiny_run
    attention = pd.read_csv(workdir / "results/paper_b/tables/attention.csv")
    assert set(attention["dataset"]) == {"shapes"} and set(attention["layers"]) == {"blocks 9-12 of 12"}
    every = attention[attention["n_objects"] == "all"].set_index(["measure", "object"])
    assert every.loc[("attention share", "large"), "n_images"] == 6
    assert every.loc[("area share", "large"), "value"] > every.loc[("area share", "a small one"), "value"]
    assert "random initialisation" in (workdir / "results/paper_b/tables/attention.md").read_text()
    assert (workdir / "results/paper_b/figures/attention_by_size.pdf").stat().st_size > 1000


def test_workflow_embeddings_equal_open_clip_on_the_rendered_png(tiny_run):
    workdir, _ = tiny_run
    results = workdir / "results" / "toy"
    scenes = pq.read_table(results / "items.parquet").to_pylist()
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


def test_every_shard_has_a_manifest_of_its_files(tiny_run):
    from workflow_scripts.common.files import sha256_of

    images = tiny_run[0] / "results/toy/images"
    for shard in ("shard-000", "shard-001"):
        manifest = json.loads((images / f"{shard}.manifest.json").read_text())
        pngs = sorted((images / shard).glob("*.png"))
        assert sorted(manifest["files"]) == [png.name for png in pngs] and len(pngs) == 2 * manifest["items"]
        assert all(manifest["files"][png.name] == {"bytes": png.stat().st_size, "sha256": sha256_of(png)}
                   for png in pngs)


def test_finished_run_has_nothing_left_to_do(tiny_run):
    workdir, config = tiny_run
    run = snakemake("-n", "--cores", 1, "--directory", workdir, "--configfile", config)
    assert run.returncode == 0 and "Nothing to be done" in run.stdout + run.stderr


def test_finished_run_leaves_no_claim_and_no_partial_output(tiny_run):
    """Every script claims its outputs at start and publishes them through files.write_atomically, which
    withdraws the claim: a claim or temporary left behind means an output was written some other way."""
    workdir, _ = tiny_run
    left = [str(p.relative_to(workdir)) for p in (workdir / "results").rglob(".*")
            if ".tmp-" in p.name or p.name.endswith(".attempt")]
    assert left == []


# What a rerun may redo. Scene specs, renders and embeddings are the expensive part and depend on none of the
# analysis settings; everything else reads embeddings and takes seconds.
UPSTREAM_RULES = {"prefetch_weights", "mesh_geometry", "items", "render_shard", "embed_images", "embed_texts"}
ANALYSIS_RULES = {"probes", "labclip", "binding", "tor", "ior", "matching", "table", "figure", "brief", "all"}


def planned_after_change(tiny_run, folder: Path, key: str, value) -> dict[str, int]:
    """The jobs (rule -> count) a dry run with the default rerun triggers plans in the finished tiny run when
    the config's dotted `key` is set to `value`."""
    workdir, config_path = tiny_run
    config = yaml.safe_load(config_path.read_text())
    *parents, last = key.split(".")
    node = config
    for name in parents:
        node = node.setdefault(name, {})
    assert node.get(last) != value, key
    node[last] = value
    run = snakemake("-n", "--cores", 1, "--directory", workdir, "--configfile", write_config(folder, config))
    assert run.returncode == 0, run.stderr[-2000:]
    planned = {rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)$", run.stdout, re.MULTILINE)}
    planned.pop("total", None)
    return planned


@pytest.mark.parametrize("key, value, first", [
    ("paper_a.probes.sklearn.Cs", [0.1, 1.0], "probes"),
    ("paper_a.labclip.epochs", 4, "labclip"),
    ("paper_b.tor.captions_per_count", 10, "tor"),
])
def test_changed_analysis_setting_reruns_only_the_analysis(tiny_run, tmp_path, key, value, first):
    planned = planned_after_change(tiny_run, tmp_path, key, value)
    assert first in planned, planned
    assert not UPSTREAM_RULES & set(planned), planned
    assert set(planned) <= ANALYSIS_RULES, planned


def test_changed_render_setting_rerenders_every_shard(tiny_run, tmp_path):
    planned = planned_after_change(tiny_run, tmp_path, "render.samples", 8)
    # toy's two shards, and one each for shapes, objects and their references
    assert planned.get("render_shard") == 6, planned
    assert planned.get("embed_images") == 5, planned
    # Scene specs and captions do not depend on the sample count.
    assert not {"items", "embed_texts", "mesh_geometry"} & set(planned), planned


def test_a_speed_only_embedding_setting_reruns_nothing(tiny_run, tmp_path):
    assert planned_after_change(tiny_run, tmp_path, "embedding.num_workers", 2) == {}


def test_a_changed_embedding_batch_size_reembeds_and_keeps_the_scenes(tiny_run, tmp_path):
    planned = planned_after_change(tiny_run, tmp_path, "embedding.batch_size", 4)
    assert planned.get("embed_images") == 5 and "embed_texts" in planned, planned
    assert not {"items", "render_shard", "prefetch_weights"} & set(planned), planned


def test_one_output_can_be_built_alone(tiny_run, tmp_path):
    config = write_config(tmp_path, TINY)
    run = snakemake("results/toy/items.parquet", "--cores", 1, "--directory", tmp_path, "--configfile", config)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "results/toy/items.parquet").exists()
    assert not (tmp_path / "results/toy/images").exists()
    figure = snakemake("results/paper_a/figures/modality_gap.png", "-n", "--cores", 1, "--directory", tmp_path,
                       "--configfile", config)
    assert figure.returncode == 0 and "rule figure:" in figure.stdout
    assert "probe_accuracy" not in figure.stdout
    same = pq.read_table(tiny_run[0] / "results/toy/items.parquet")
    assert pq.read_table(tmp_path / "results/toy/items.parquet").equals(same)


def test_bad_config_stops_before_any_job(tmp_path):
    config = write_config(tmp_path, {**TINY, "render": {"sampels": 4}})
    run = snakemake("--cores", 1, "--directory", tmp_path, "--configfile", config)
    assert run.returncode != 0
    assert "render: unknown key 'sampels'; did you mean 'samples'?" in run.stderr
    assert not (tmp_path / "results").exists()


def test_full_config_builds_the_paper_scale_dag(tmp_path):
    run = snakemake("-n", "--cores", 1, "--directory", tmp_path, "--configfile", REPO / "config.yaml")
    assert run.returncode == 0, run.stderr[-2000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", run.stdout, re.MULTILINE))
    # Two CLEVR and two SIMCO datasets with two sets of references; the ComCO dataset has no meshes here.
    assert "dataset 'comco_large' skipped: its mesh folder" in run.stdout + run.stderr
    assert counts["items"] == "7"  # with the 90 COCO names for TOR
    assert counts["render_shard"] == str(230 + 40 + 20 + 2)
    assert counts["embed_images"] == "12" and counts["embed_texts"] == "10"
    assert counts["probes"] == "4"  # two CLEVR datasets, two models
    assert counts["binding"] == "2" and counts["labclip"] == "4"  # the two-object one only
    assert counts["ior"] == counts["matching"] == "4"  # two SIMCO datasets, two models
    assert counts["tor"] == "6"  # and the COCO names
    assert counts["slot_classification"] == "4"  # two SIMCO datasets, two models
    assert counts["attention"] == "2"  # the one-large SIMCO dataset, two models
    assert counts["generate_images"] == counts["prompt_order"] == "1"  # prompts from the COCO names
    assert counts["prefetch_hf_model"] == "2"  # Stable Diffusion and GroundingDINO (COCO and LAION are missing)
    assert counts["table"] == "8" and counts["figure"] == "11"


def test_comco_with_a_missing_category_stops_naming_the_file(tmp_path):
    write_meshes(tmp_path / "meshes")
    categories = ["cake", "clock", "dog", "vase", "bowl", "teddy bear"]
    datasets = {"objects": {**TINY["datasets"]["objects"], "categories": categories}}
    config = write_config(tmp_path, {**TINY, "datasets": datasets})
    run = snakemake("-n", "--cores", 1, "--directory", tmp_path, "--configfile", config)
    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert "datasets.objects.meshes: no mesh file for category 'dog'" in output and "meshes/dog.glb" in output


def test_comco_with_a_bad_mesh_stops_before_any_scene_naming_the_file(tmp_path):
    write_meshes(tmp_path / "meshes")
    (tmp_path / "meshes/vase.glb").write_bytes(b"not a mesh")
    config = write_config(tmp_path, {**TINY, "datasets": {"objects": TINY["datasets"]["objects"]}})
    run = snakemake("results/objects/items.parquet", "--cores", 1, "--directory", tmp_path, "--configfile", config)
    assert run.returncode != 0
    assert "vase.glb could not be imported" in run.stderr + (tmp_path / "results/logs/mesh_geometry/objects.log").read_text()
    assert not (tmp_path / "results/objects/meshes.json").exists()
    assert not (tmp_path / "results/objects/items.parquet").exists()


def test_lint_is_clean():
    run = snakemake("--lint")
    assert "Congratulations, your workflow is in a good condition" in run.stdout + run.stderr, run.stdout
