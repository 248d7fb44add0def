"""The CLIP trained inside the workflow (models/training.py): the loss, a tiny real training run, its
checkpoints as open_clip loads them, and the caption-order option of the data-order experiment."""
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from workflow_scripts.datasets.items import Vocabulary
from workflow_scripts.models import training
from workflow_scripts.models.losses import clip_loss, hnb_loss

TINY_ARCHITECTURE = {"image_size": 16, "patch_size": 8, "vision_width": 32, "vision_layers": 1, "text_width": 32,
                     "text_layers": 1, "head_width": 16, "embed_dim": 16, "context_length": 16}
SETTINGS = {"architecture": TINY_ARCHITECTURE, "steps": 60, "batch_size": 8, "lr": 2e-3, "warmup_steps": 5,
            "weight_decay": 0.0, "checkpoints": [0.5, 1.0], "seed": 3, "heldout_batch_size": 8}
COLOURS = {"red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1), "yellow": (1, 1, 0), "cyan": (0, 1, 1),
           "purple": (1, 0, 1), "gray": (0.5, 0.5, 0.5), "black": (0, 0, 0)}


def test_loss_on_hand_made_features():
    s = 2.0
    identity = torch.eye(2)
    # matching pairs on the diagonal: each of the 4 rows' cross-entropy is log(1 + e^-s)
    assert float(clip_loss(identity, identity, torch.tensor(s))) == pytest.approx(math.log1p(math.exp(-s)))
    # both captions the same: image->text rows give log 2 each; text->image rows log(1 + e^-s) and log(1 + e^s)
    same = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    expected = (math.log(2) + (math.log1p(math.exp(-s)) + math.log1p(math.exp(s))) / 2) / 2
    assert float(clip_loss(identity, same, torch.tensor(s))) == pytest.approx(expected)


def colour_data(copies=4, seed=0):
    """Images of one colour each (with noise) and the colour's name as caption: a task a CLIP learns fast."""
    rng = np.random.default_rng(seed)
    images, captions = [], []
    for name, rgb in COLOURS.items():
        for _ in range(copies):
            image = np.asarray(rgb, np.float32)[:, None, None] + rng.normal(0, 0.1, (3, 16, 16)).astype(np.float32)
            images.append(torch.from_numpy(image))
            captions.append(f"a {name} square")
    return torch.stack(images), captions


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    images, captions = colour_data()
    model, losses = training.train_clip(images, captions, SETTINGS, folder, {"run": "colours"},
                                        heldout=colour_data(copies=2, seed=1))
    return folder, model, losses, images, captions


def test_the_heldout_measures_are_recorded_at_every_checkpoint_and_improve(trained):
    folder = trained[0]
    heldout = json.loads((folder / "step-000060" / "training.json").read_text())["heldout"]
    assert [h["step"] for h in heldout] == [0, 30, 60]
    assert heldout[-1]["items"] == 16 and heldout[-1]["batches"] == 2 and heldout[-1]["batch_size"] == 8
    assert heldout[-1]["loss"] < 0.5 * heldout[0]["loss"]
    assert heldout[-1]["image_to_text_r1"] == 1.0 and heldout[-1]["text_to_image_r1"] == 1.0


class PlantedClip(torch.nn.Module):
    """Returns the given image and text features whatever its inputs (one call: all items at once)."""

    def __init__(self, image_features, text_features):
        super().__init__()
        self.image_features, self.text_features = image_features, text_features

    def forward(self, images, tokens):
        return self.image_features[: len(images)], self.text_features[: len(tokens)], torch.tensor(10.0)


def test_heldout_retrieval_counts_a_caption_shared_by_two_scenes_as_found():
    # items 0 and 1 share a caption and item 0's image is nearest item 1's text: still a hit; item 2's image is
    # nearest item 3's text, another caption: a miss in image-to-text; text-to-image: item 3's text finds item 2
    text = torch.eye(4)
    image = torch.tensor([[0.0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1]])
    captions = ["red cube", "red cube", "blue sphere", "gray cylinder"]
    metrics = training.heldout_metrics(PlantedClip(image, text), torch.zeros(4, 3, 2, 2), torch.zeros(4, 2),
                                       captions, batch_size=4)
    assert metrics["image_to_text_r1"] == 3 / 4
    # text 0 -> image 0 or 1 (ties: the first, image 0), text 1 -> image 0 (same caption), text 2 -> image 0
    # (every image scores 0 against it: the first), text 3 -> image 2 (another caption)
    assert metrics["text_to_image_r1"] == 2 / 4
    assert metrics["loss"] == pytest.approx(float(clip_loss(image, text, torch.tensor(10.0))))
    assert training.heldout_metrics(PlantedClip(image, text), torch.zeros(4, 3, 2, 2), torch.zeros(4, 2),
                                    captions, batch_size=3)["batches"] == 1


def test_the_loss_falls(trained):
    _, _, losses, _, _ = trained
    assert len(losses) == SETTINGS["steps"]
    assert np.mean(losses[-10:]) < 0.5 * losses[0], losses


def test_checkpoints_are_written_at_the_initialisation_and_each_fraction(trained):
    folder = trained[0]
    assert sorted(p.name for p in folder.iterdir()) == ["step-000000", "step-000030", "step-000060"]
    record = json.loads((folder / "step-000030/training.json").read_text())
    assert record["run"] == "colours" and record["step"] == 30 and record["items_seen"] == 30 * 8
    assert record["loss"] == trained[2][:30]


def test_open_clip_loads_the_final_checkpoint_and_embeds_identically(trained):
    folder, model, _, images, captions = trained
    loaded, preprocess, tokenizer = training.load_checkpoint(folder / "step-000060")
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_image(images), model.encode_image(images), rtol=0, atol=0)
        torch.testing.assert_close(loaded.encode_text(tokenizer(captions)),
                                   model.encode_text(tokenizer(captions)), rtol=0, atol=0)
    from PIL import Image

    assert preprocess(Image.new("RGB", (40, 30))).shape == (3, 16, 16)  # the architecture's image size


def test_the_weights_record_hashes_the_file_open_clip_loads(trained, tmp_path):
    """With a second weights file in the folder, sorted before open_clip's own, the record names and hashes the
    one open_clip loads (open_clip_model.safetensors)."""
    import shutil

    from workflow_scripts.common.files import sha256_of
    from workflow_scripts.models.loading import local_dir_weights

    folder = tmp_path / "checkpoint"
    shutil.copytree(trained[0] / "step-000060", folder)
    (folder / "training.json").unlink()  # the fixture trains outside the workflow: no dataset in its record
    shutil.copy(trained[0] / "step-000000/open_clip_model.safetensors", folder / "a_copy.safetensors")
    record = local_dir_weights(folder)
    assert f"open_clip_model.safetensors sha256 {sha256_of(folder / 'open_clip_model.safetensors')}" in record
    assert "a_copy" not in record
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(FileNotFoundError, match="no weights file"):
        local_dir_weights(folder)


def test_the_initial_checkpoint_differs_from_the_trained_one(trained):
    folder, model, _, images, _ = trained
    initial, _, _ = training.load_checkpoint(folder / "step-000000")
    with torch.no_grad():
        assert not torch.allclose(initial.encode_image(images), model.encode_image(images))


def test_same_seed_same_run(tmp_path):
    images, captions = colour_data()
    settings = {**SETTINGS, "steps": 6, "checkpoints": [1.0]}
    first = training.train_clip(images, captions, settings, tmp_path / "a", {})[1]
    second = training.train_clip(images, captions, settings, tmp_path / "b", {})[1]
    third = training.train_clip(images, captions, {**settings, "seed": 4}, tmp_path / "c", {})[1]
    assert first == second and first != third


def test_bad_architectures_and_too_few_items_are_named(tmp_path):
    with pytest.raises(ValueError, match="vision_width 30 is not a multiple of head_width 16"):
        training.model_config({**TINY_ARCHITECTURE, "vision_width": 30})
    images, captions = colour_data(copies=1)
    with pytest.raises(ValueError, match="8 training items, fewer than one batch of 16"):
        training.train_clip(images, captions, {**SETTINGS, "batch_size": 16}, tmp_path, {})


def test_fine_tuning_starts_from_the_given_clip_and_uses_its_hard_negatives(trained, tmp_path):
    """CLIP-FT: the run's initial checkpoint is the given model's weights; its loss is LABCLIP-HNB's over the
    captions and their negatives, so other negatives give another loss from the first step on."""

    folder, _, _, images, captions = trained
    settings = {**SETTINGS, "steps": 3, "checkpoints": [1.0], "lr": 1e-4}

    def start():
        model, _, tokenizer = training.load_checkpoint(folder / "step-000060")
        return model, json.loads((folder / "step-000060/open_clip_config.json").read_text()), tokenizer

    swapped = [c.replace("square", "circle") for c in captions]
    _, losses = training.train_clip(images, captions, settings, tmp_path / "ft", {}, negatives=swapped, start=start())
    _, other = training.train_clip(images, captions, settings, tmp_path / "ft2", {}, negatives=captions, start=start())
    assert losses[0] != other[0]
    init = training.load_checkpoint(tmp_path / "ft/step-000000")[0]
    given, _, tokenizer = start()
    with torch.no_grad():
        torch.testing.assert_close(init.encode_image(images), given.encode_image(images), rtol=0, atol=0)
        # the first step's loss, recomputed by hand on its batch (the run's first random order, seed 3)
        index = torch.randperm(len(images), generator=torch.Generator().manual_seed(3))[:SETTINGS["batch_size"]]
        image = given.encode_image(images[index], normalize=True)
        positive = given.encode_text(tokenizer([captions[i] for i in index]), normalize=True)
        negative = given.encode_text(tokenizer([swapped[i] for i in index]), normalize=True)
    assert losses[0] == pytest.approx(float(hnb_loss(image, positive, negative, given.logit_scale.detach())), rel=1e-5)


def test_a_fine_tuned_registered_architecture_is_saved_with_its_quick_gelu(tmp_path):
    import open_clip

    model = open_clip.create_model("ViT-S-32", force_quick_gelu=True).eval()
    config = training.open_clip_config_of("ViT-S-32", model)
    assert config["model_cfg"]["quick_gelu"] is True and config["preprocess_cfg"]["size"] in (224, (224, 224))
    training.save_checkpoint(model, config, tmp_path / "ck", {})
    loaded = training.load_checkpoint(tmp_path / "ck")[0]
    image = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_image(image), model.encode_image(image), rtol=0, atol=0)


def test_items_without_a_negative_caption_are_named():
    with pytest.raises(ValueError, match="item b has no negative caption"):
        training.hard_negative_captions([{"item_id": "a", "negative_captions": ["x"]},
                                         {"item_id": "b", "negative_captions": []}])


def test_a_caption_longer_than_the_context_is_named():
    import open_clip

    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=8)
    assert training.text_tokens(tokenizer, ["red cube and blue sphere"], 8).shape == (1, 8)
    with pytest.raises(ValueError, match="longer than the context of 8 tokens: raise architecture.context_length"):
        training.text_tokens(tokenizer, ["red cube and blue sphere and green cone"], 8)


SHAPES = Vocabulary(objects=("cube", "sphere", "cone", "torus"))


def scene(item_id, objects, sizes):
    rows = [{"object": o, "attribute": None, "size": s} for o, s in zip(objects, sizes)]
    return {"item_id": item_id, "objects": rows, "caption": SHAPES.caption(objects)}


ROWS = [scene("a", ["cube", "sphere", "cone"], ["small", "large", "small"]),
        scene("b", ["torus", "cube"], ["small", "large"]),
        scene("c", ["cone", "sphere", "cube", "torus"], ["large", "small", "small", "small"])]


def test_large_first_names_the_large_object_first_and_keeps_the_rest_in_order():
    captions = training.training_captions(ROWS, SHAPES, "large_first", seed=0)
    assert captions == ["sphere and cube and cone", "cube and torus", "cone and sphere and cube and torus"]


def test_large_last_names_the_large_object_last_and_keeps_the_rest_in_order():
    captions = training.training_captions(ROWS, SHAPES, "large_last", seed=0)
    assert captions == ["cube and cone and sphere", "torus and cube", "sphere and cube and torus and cone"]


def test_caption_orders_change_only_the_order():
    for order in training.CAPTION_ORDERS:
        captions = training.training_captions(ROWS, SHAPES, order, seed=1)
        for row, caption in zip(ROWS, captions):
            assert sorted(SHAPES.parse(caption)) == sorted(SHAPES.parse(row["caption"]))
            assert sorted(caption.split()) == sorted(row["caption"].split())  # the same words, only reordered
    assert training.training_captions(ROWS, SHAPES, "as_generated", seed=1) == [r["caption"] for r in ROWS]
    randomised = [training.training_captions(ROWS * 10, SHAPES, "random", seed=s) for s in (1, 2)]
    assert randomised[0] != randomised[1]  # seeded, and the seed matters
    assert randomised[0] == training.training_captions(ROWS * 10, SHAPES, "random", seed=1)
    firsts = {caption.split(" and ")[0] for caption in randomised[0][::3]}
    assert len(firsts) > 1  # item a's caption starts with different objects across copies


def test_a_caption_not_in_object_order_cannot_be_reordered():
    row = {**ROWS[0], "caption": "sphere and cube and cone"}
    with pytest.raises(ValueError, match="item a: caption 'sphere and cube and cone' does not name its objects"):
        training.training_captions([row], SHAPES, "random", seed=0)
    assert training.training_captions([row], SHAPES, "as_generated", seed=0) == ["sphere and cube and cone"]


# --- in the workflow: rule train_clip and models with `trained:` ---
WORKFLOW_CONFIG = {
    "seed": 2,
    "datasets": {"toy": {"objects_per_scene": [2], "scenes_per_count": 40, "shards": 1}},
    "render": {"resolution": [16, 16], "samples": 1},
    "clip_training": {"tiny": {"dataset": "toy", "architecture": TINY_ARCHITECTURE, "steps": 4, "batch_size": 8,
                               "checkpoints": [0.5, 1.0]}},
    "models": [{"id": "scenes", "trained": "tiny"}, {"id": "scenes-init", "trained": "tiny", "checkpoint": 0}],
    "embedding": {"device": "cpu", "precision": "fp32", "num_workers": 0},
}
TUNED = {"clip_training": {**WORKFLOW_CONFIG["clip_training"], "tuned": {
    "dataset": "toy", "init": "scenes", "hard_negatives": True, "steps": 2, "batch_size": 8, "checkpoints": [1.0]}},
    "models": [*WORKFLOW_CONFIG["models"], {"id": "tuned", "trained": "tuned"}]}


def test_config_resolves_trained_models_to_their_checkpoint_folders():
    from workflow_scripts.config import validate_config
    from workflow_scripts.models.catalogue import configured_models

    import copy

    config = validate_config(copy.deepcopy(WORKFLOW_CONFIG))
    models = configured_models(config)
    assert models["scenes"]["name"] == "local-dir:results/clip_training/tiny/step-000004"
    assert models["scenes-init"]["name"] == "local-dir:results/clip_training/tiny/step-000000"
    assert models["scenes"]["training"]["seed"] == 2 and models["scenes"]["training"]["lr"] == 3e-4


@pytest.mark.parametrize("change, words", [
    (lambda c: c["models"].append({"id": "x", "trained": "nope"}), "models[3] (id 'x'): trained 'nope' is not a run"),
    (lambda c: c["models"][1].update(checkpoint=0.3), "checkpoint 0.3 is not one of run 'tiny''s checkpoints"),
    (lambda c: c["clip_training"]["tiny"].update(dataset="names"), "clip_training.tiny.dataset: 'names' is not a "
                                                                   "rendered dataset of this config (rendered: toy)"),
    (lambda c: c["clip_training"]["tiny"].update(dataset=["toy", "names"]), "clip_training.tiny.dataset: 'names' "
                                                                            "is not a rendered dataset"),
    (lambda c: c["clip_training"]["tiny"].update(batch_size=64), "clip_training.tiny: a batch of 64 needs at least"),
    (lambda c: c["clip_training"]["tiny"]["architecture"].update(patch_size=5), "image_size 16 is not a multiple"),
    (lambda c: c["models"][0].update(name="ViT-B-32"), "models[0] (id 'scenes'): a trained model takes no name"),
    (lambda c: c["models"][0].update(name="ViT-B-32", pretrained="none"), "models.0: matches more than one of its "
                                                                          "forms (either {id, name, pretrained}"),
    (lambda c: c["clip_training"]["tuned"].update(init="nope"), "clip_training.tuned.init: 'nope' is not a model id"),
    (lambda c: c["clip_training"]["tiny"].update(init="tuned"), "clip_training.tiny.init: model 'tuned' is trained "
                                                                "from run 'tiny' itself"),
    (lambda c: c["clip_training"]["tuned"].update(caption_order="random"), "clip_training.tuned: hard_negatives "
                                                                           "pairs each caption with its dataset's"),
    (lambda c: c.update(clip_selection={"candidates": ["tiny", "nope"]}), "clip_selection.candidates: 'nope' not a "
                                                                          "run of clip_training (runs: tiny, tuned)"),
    (lambda c: c.update(clip_selection={"candidates": ["tiny", "tuned"]}) or c["clip_training"]["tuned"].update(
        heldout_batch_size=4), "held-out measures compare only between runs with the same heldout_batch_size; got "
                               "tiny: 128, tuned: 4"),
    (lambda c: c.update(clip_selection={"candidates": ["tiny"]}), "clip_selection.candidates: ['tiny'] is too short"),
])
def test_bad_training_configs_are_named(change, words):
    import copy

    from workflow_scripts.config import ConfigError, validate_config

    config = copy.deepcopy({**WORKFLOW_CONFIG, **TUNED})
    config["datasets"]["names"] = {"kind": "names", "names": "coco"}
    change(config)
    with pytest.raises(ConfigError) as raised:
        validate_config(config)
    assert words in str(raised.value)


def test_workflow_trains_a_clip_and_embeds_with_its_checkpoints(tmp_path):
    from PIL import Image

    from conftest import snakemake, write_config
    from workflow_scripts.common.parquet import embedding_matrix, read_provenance, read_table

    names = {"datasets": {**WORKFLOW_CONFIG["datasets"], "names": {"kind": "names", "names": "coco"},
                          "toy2": {"objects_per_scene": [2], "scenes_per_count": 20, "shards": 1, "analyses": []}},
             "paper_b": {"tor": {"objects_per_caption": [2], "captions_per_count": 12, "templates": ["short"],
                                 "aggregations": []}}}
    two_datasets = {"clip_training": {**TUNED["clip_training"], "tuned": {**TUNED["clip_training"]["tuned"],
                                                                          "dataset": ["toy", "toy2"]}}}
    first = {**WORKFLOW_CONFIG, **TUNED, **names, **two_datasets}  # run tuned trains on two datasets
    config = write_config(tmp_path, first)
    targets = [f"results/toy/embeddings/{m}/{k}.parquet" for m in ("scenes", "scenes-init", "tuned")
               for k in ("images", "texts")]
    targets.append("results/clip_training/figures/training_curve.png")
    progression = ["results/clip_training/tables/training_progression.csv",
                   "results/clip_training/figures/training_progression.png"]
    run = snakemake("--cores", 2, "--directory", tmp_path, *targets, *progression, "--configfile", config)
    assert run.returncode == 0, run.stderr[-3000:]
    folder = tmp_path / "results/clip_training/tiny"
    assert sorted(p.name for p in folder.glob("step-*")) == ["step-000000", "step-000002", "step-000004"]
    record = json.loads((folder / "step-000004/training.json").read_text())
    assert record["train_items"] == len(record["item_ids"]) == len(record["captions"]) and len(record["loss"]) == 4
    # the val split (4 of toy's 40 scenes) measured at every checkpoint, in one batch of all 4
    assert [h["step"] for h in record["heldout"]] == [0, 2, 4] and record["heldout_items"] == 4
    assert {(h["items"], h["batch_size"], h["batches"]) for h in record["heldout"]} == {(4, 4, 1)}
    from workflow_scripts.summary.figures import read_training_curves

    curve = read_training_curves([folder])
    assert curve["loss"].tolist() == record["loss"] and curve["step"].tolist() == [1, 2, 3, 4]
    assert curve["checkpoint"].tolist() == [False, True, False, True]
    assert (tmp_path / "results/clip_training/figures/training_curve.pdf").exists()
    # run tiny's two checkpoints (models scenes-init and scenes) make a progression; one caption order, no comparison
    table = pd.read_csv(tmp_path / progression[0])
    assert sorted(set(zip(table["model_id"], table["step"]))) == [("scenes", 4), ("scenes-init", 0), ("tuned", 2)]
    assert set(table["measure"]) == {"TOR first-named share (clean)", "TOR first-named share (authors)"}
    assert (table["dataset"] == "names").all() and (table["n"] > 0).all()
    assert set(table["training"]) <= {"converged", "diverged"}  # each run's flag, read from its loss curve
    assert table["final_loss"].notna().all()
    # and from its held-out loss at its last checkpoint against ln(held-out batch size): tiny's batch is its 4 val items
    assert table["heldout"].isin(["below chance", "not below chance"]).all()
    tiny = table[table["run"] == "tiny"]
    assert np.allclose(tiny["heldout_chance"], math.log(4))
    assert np.allclose(tiny["heldout_loss"], record["heldout"][-1]["loss"])
    assert not (tmp_path / "results/clip_training/tables/caption_order.csv").exists()

    images = tmp_path / "results/toy/embeddings/scenes/images.parquet"
    weights = read_provenance(images)["weights"]
    assert read_provenance(images)["activation"] == "GELU"  # every embedding file says what the model ran
    assert read_provenance(images)["preprocessing"].startswith("Resize(size=16,")
    assert weights.startswith("CLIP trained in this workflow on synthetic scenes (run tiny: dataset toy, ")
    assert "step 4 of 4" in weights and "step 0 of 4" in read_provenance(
        tmp_path / "results/toy/embeddings/scenes-init/images.parquet")["weights"]
    tuned = json.loads((tmp_path / "results/clip_training/tuned/step-000002/training.json").read_text())
    assert tuned["init"] == "scenes" and tuned["hard_negatives"] and tuned["init_weights"] == weights
    assert tuned["heldout_items"] == 4 + 2 and len(tuned["heldout"]) == 2  # toy's and toy2's val items; steps 0, 2
    assert len(tuned["negative_captions"]) == tuned["train_items"] and tuned["negative_captions"] != tuned["captions"]
    trains = {name: [r["item_id"] for r in read_table(tmp_path / f"results/{name}/items.parquet").to_pylist()
                     if r["split"] == "train"] for name in ("toy", "toy2")}
    assert tuned["train_items_per_dataset"] == {name: len(ids) for name, ids in trains.items()}
    assert tuned["item_ids"] == trains["toy"] + trains["toy2"]
    assert "(run tuned: dataset toy+toy2, " in read_provenance(
        tmp_path / "results/toy/embeddings/tuned/texts.parquet")["weights"]
    assert ", fine-tuned from model scenes with hard negatives; step 2 of 2)" in read_provenance(
        tmp_path / "results/toy/embeddings/tuned/texts.parquet")["weights"]
    initial = training.load_checkpoint(tmp_path / "results/clip_training/tuned/step-000000")[0].state_dict()
    given = training.load_checkpoint(folder / "step-000004")[0].state_dict()
    assert all(torch.equal(initial[key], given[key]) for key in given)  # fine-tuning starts from model scenes

    # The embedding the workflow wrote is the checkpoint's, as open_clip loads it, of the rendered PNG.
    model, preprocess, tokenizer = training.load_checkpoint(folder / "step-000004")
    items = read_table(tmp_path / "results/toy/items.parquet").to_pylist()
    table = read_table(images)
    row = table.column("item_id").to_pylist().index(items[0]["item_id"])
    with torch.no_grad():
        expected = model.encode_image(preprocess(Image.open(tmp_path / "results/toy" / items[0]["image"]))[None])
    np.testing.assert_allclose(embedding_matrix(table.column("embedding"))[row], expected[0].numpy(), atol=1e-5)

    # A changed training setting retrains and re-embeds; nothing else.
    changed = write_config(tmp_path, {**first, "clip_training": {
        **first["clip_training"], "tiny": {**WORKFLOW_CONFIG["clip_training"]["tiny"], "lr": 1e-3}}})
    dry = snakemake("-n", "--cores", 1, "--directory", tmp_path, *targets, "--configfile", changed)
    planned = dry.stdout + dry.stderr
    assert "rule train_clip" in planned and "rule embed_images" in planned and "rule render_shard" not in planned
    assert planned.count("rule train_clip:") == 2  # the fine-tuned run starts from the retrained CLIP


def test_two_processes_train_identical_weights_from_identical_inputs(tmp_path):
    """Determinism across processes (as two runs of the workflow are), not only within one."""
    import subprocess
    import sys

    from conftest import REPO
    from workflow_scripts.common.files import sha256_of

    script = (f"import sys; sys.path[:0] = [{str(REPO)!r}, {str(REPO / 'tests')!r}]\n"
              "from test_training import SETTINGS, colour_data\n"
              "from workflow_scripts.models.training import train_clip\n"
              "images, captions = colour_data()\n"
              "train_clip(images, captions, {**SETTINGS, 'steps': 8, 'checkpoints': [1.0]}, sys.argv[1], {})\n")
    for name in ("a", "b"):
        subprocess.run([sys.executable, "-c", script, str(tmp_path / name)], check=True, capture_output=True)
    weights = [sha256_of(tmp_path / name / "step-000008/open_clip_model.safetensors") for name in ("a", "b")]
    assert weights[0] == weights[1]
