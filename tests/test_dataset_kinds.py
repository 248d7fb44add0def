"""The registry of dataset kinds: a kind defined in tests/ (tests/toy_kind.py, files on disk rather than renders)
runs through the unchanged workflow to embeddings and binding accuracy, named only in the config."""
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import REPO, TINY, snakemake, write_config
from PIL import Image, ImageDraw

from workflow_scripts.common.parquet import read_provenance
from workflow_scripts.config import validate_config
from workflow_scripts.datasets.items import read_items
from workflow_scripts.datasets.registry import BUILTIN_KINDS, dataset_kinds, plan_datasets

TOY_KIND = REPO / "tests" / "toy_kind.py"
COLOURS = {"red": (200, 30, 30), "green": (30, 160, 30), "blue": (40, 60, 210)}
OBJECTS = ("square", "circle", "triangle")


def draw(path, pairs) -> None:
    """Two objects side by side on gray: each a shape in a colour."""
    image = Image.new("RGB", (64, 64), (120, 120, 120))
    pen = ImageDraw.Draw(image)
    for (colour, shape), x in zip(pairs, (6, 36)):
        box, fill = (x, 20, x + 22, 42), COLOURS[colour]
        if shape == "square":
            pen.rectangle(box, fill=fill)
        elif shape == "circle":
            pen.ellipse(box, fill=fill)
        else:
            pen.polygon([(x, 42), (x + 22, 42), (x + 11, 20)], fill=fill)
    image.save(path)


def write_toy_files(folder, count=60, seed=0) -> dict:
    """PNGs and their annotations file; the splits by position: 70% train, 15% val, 15% test."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    items = []
    for i in range(count):
        shapes = [str(s) for s in rng.choice(OBJECTS, 2, replace=False)]
        colours = [str(c) for c in rng.choice(list(COLOURS), 2, replace=False)]
        draw(folder / "images" / f"{i:03d}.png", list(zip(colours, shapes)))
        split = "train" if i < 0.7 * count else "val" if i < 0.85 * count else "test"
        items.append({"image": f"images/{i:03d}.png", "split": split, "objects": list(map(list, zip(colours, shapes))),
                      "caption": f"{colours[0]} {shapes[0]} and {colours[1]} {shapes[1]}",
                      "negative": f"{colours[1]} {shapes[0]} and {colours[0]} {shapes[1]}"})
    annotations = {"objects": list(OBJECTS), "attributes": list(COLOURS), "items": items}
    (folder / "annotations.json").write_text(json.dumps(annotations))
    return annotations


def toy_config(folder) -> dict:
    datasets = {"files": {"kind": "toy_files", "annotations": str(folder / "annotations.json")}}
    return {**TINY, "datasets": datasets, "kind_modules": [str(TOY_KIND)]}


def test_the_toy_kind_is_not_registered_in_the_workflow():
    assert "toy_files" not in BUILTIN_KINDS
    assert "toy_files" in dataset_kinds([TOY_KIND])


def test_a_kind_module_brings_its_own_config_schema_and_checks(tmp_path):
    write_toy_files(tmp_path / "toy", count=4)
    config = validate_config(toy_config(tmp_path / "toy"))
    assert config["datasets"]["files"]["splits"] == {"train": 0.7, "val": 0.15, "test": 0.15}  # its default
    assert "shards" not in config["datasets"]["files"]  # not rendered
    planned, skipped = plan_datasets(config, dataset_kinds(config["kind_modules"]))
    assert list(planned) == ["files"] and not skipped
    assert planned["files"].analyses == ("probes", "labclip", "binding")
    bad = toy_config(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="datasets.files.annotations: .*nowhere/annotations.json does not exist"):
        validate_config(bad)
    bad["datasets"]["files"]["shards"] = 2
    with pytest.raises(ValueError, match=r"datasets.files: unknown key 'shards'; known keys: "):
        validate_config(bad)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("toy_kind")
    annotations = write_toy_files(workdir / "toy")
    config = write_config(workdir, toy_config(workdir / "toy"))
    run = snakemake("--cores", 2, "--directory", workdir, "--configfile", config)
    assert run.returncode == 0, run.stderr[-3000:]
    return workdir, annotations, run


def test_a_kind_from_tests_runs_to_embeddings_and_binding_accuracy(toy_run):
    workdir, annotations, run = toy_run
    results = workdir / "results"
    items, vocabulary = read_items(results / "files/items.parquet")
    assert [i["caption"] for i in items] == [a["caption"] for a in annotations["items"]]
    assert vocabulary.objects == OBJECTS and vocabulary.attributes == tuple(COLOURS)
    assert not (results / "files/images").exists()  # read from disk, not rendered
    images = pq.read_table(results / "files/embeddings/rand/images.parquet")
    assert images.column("item_id").to_pylist() == [i["item_id"] for i in items]
    assert read_provenance(results / "files/embeddings/rand/images.parquet")["weights"].startswith("random")
    binding = pd.read_csv(results / "paper_a/tables/binding.csv")
    assert set(binding["dataset"]) == {"files"} and set(binding["dataset_kind"]) == {"toy_files"}
    clip = binding[(binding["variant"] == "CLIP") & (binding["protocol"] == "clean")].iloc[0]
    assert clip["n_test"] == sum(a["split"] == "test" for a in annotations["items"])
    assert clip["image_to_text_accuracy"] >= 0 and clip["n_twin_pairs"] >= 0
    # not a CLEVR kind: the authors' rule is cosine with ties wrong, nothing left out
    authors = binding[(binding["variant"] == "CLIP") & (binding["protocol"] == "authors")].iloc[0]
    assert (authors["similarity"], authors["n_scored"]) == ("cosine", authors["n_test"])
    binding = binding.set_index("variant")
    assert {"LABCLIP-SB", "LABCLIP-HNB"} <= set(binding.index)
    probes = pd.read_csv(results / "paper_a/tables/probes.csv")
    assert set(probes["object"]) == set(OBJECTS) | {"mean"}
    assert "render_shard" not in run.stdout + run.stderr  # nothing to render


def test_toy_images_are_embedded_from_their_files(toy_run):
    """The embedding of an item is open_clip's of the PNG the annotations name."""
    import torch

    from workflow_scripts.common.parquet import embedding_matrix
    from workflow_scripts.models.loading import load_model

    workdir, annotations, _ = toy_run
    stored = embedding_matrix(pq.read_table(workdir / "results/files/embeddings/rand/images.parquet").column("embedding"))
    model, preprocess, _, _ = load_model("ViT-B-32", "none", seed=TINY["seed"])
    with torch.no_grad(), Image.open(workdir / "toy" / annotations["items"][5]["image"]) as png:
        expected = model.encode_image(preprocess(png.convert("RGB")).unsqueeze(0))[0].numpy()
    np.testing.assert_allclose(stored[5], expected, atol=1e-4, rtol=1e-4)


def test_drawn_splits_too_small_for_an_analysis_stop_the_item_rule_with_the_counts():
    import pyarrow as pa

    from workflow_scripts.datasets.build import check_split_sizes

    table = pa.table({"split": ["train"] * 5 + ["val"], "n_objects": [2] * 6})  # 6 scenes drawn in groups
    with pytest.raises(ValueError) as error:
        check_split_sizes("toy", table, ("probes", "labclip", "binding"))
    message = str(error.value)
    assert "probes needs at least 1 test item(s) of 2 objects and has 0" in message
    assert "binding needs at least 1 test item(s) and has 0" in message
    assert "2 objects: {'train': 5, 'val': 1}" in message and "labclip" not in message
    check_split_sizes("toy", table, ("tor", "ior"))
