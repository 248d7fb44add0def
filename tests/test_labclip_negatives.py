"""LABCLIP's training negatives: the authors' map trains on every item's hard negative as drawn, some equal to their
caption (COCO captions whose noun and adjective shuffle drew the identity, CLEVR scenes with two equal colours);
the clean map (best_val) comes from a run without those items, and both maps say how many there were."""
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from synthetic import synthetic_embedded
from workflow_scripts.analyses import labclip
from workflow_scripts.analyses.embedded import Embedded
from workflow_scripts.analyses.labclip import (
    LabClip,
    load_labclip,
    map_files,
    map_metadata,
    save_labclip,
    text_maps,
    train_labclip,
    train_labclip_maps,
)
from workflow_scripts.datasets import coco
from workflow_scripts.datasets.clevr import generate_scenes
from workflow_scripts.models.losses import hnb_loss

SETTINGS = dict(lr=0.01, epochs=3, batch_size=64, seed=3)
N_TRAIN, PLANTED = 240, (0, 5, 17, 100, 101, 239)  # training items whose negative is their caption


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def free_text_set(n: int, same=(), dim: int = 16, seed: int = 0, split: str = "train") -> Embedded:
    """COCO-like items (free-text captions, coco.VOCABULARY) with random embeddings; the items of `same` have their
    caption as their negative, text and embedding, as an identity shuffle gives them."""
    rng = np.random.default_rng(seed)
    image, caption, negative = (rng.standard_normal((n, dim)).astype(np.float32) for _ in range(3))
    items = []
    for i in range(n):
        text = f"a {split} caption number {i}."
        items.append({"item_id": f"{split}-{i}", "split": split, "caption": text,
                      "negative_captions": [text if i in same else f"a {split} number caption {i}."]})
        if i in same:
            negative[i] = caption[i]
    return Embedded(items, image, caption, negative, "random test embeddings", coco.VOCABULARY)


@pytest.fixture(scope="module")
def sets():
    return free_text_set(N_TRAIN, PLANTED), free_text_set(60, seed=1, split="val")


def same_weights(a: LabClip, b: LabClip) -> bool:
    return torch.equal(a.linear.weight, b.linear.weight) and torch.equal(a.t, b.t)


def reference_last_map(train: Embedded, lr: float, epochs: int, batch_size: int, seed: int) -> torch.Tensor:
    """The authors' HNB training written out here: identity map, t = 0, Adam, one seeded permutation of EVERY
    training item per epoch, the last epoch's weight."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    weight = torch.eye(train.image.shape[1], requires_grad=True)
    t = torch.zeros((), requires_grad=True)
    optimiser = torch.optim.Adam([weight, t], lr=lr)
    image = F.normalize(torch.as_tensor(train.image), dim=-1)
    caption, negative = torch.as_tensor(train.caption), torch.as_tensor(train.negative)
    for _ in range(epochs):
        order = torch.randperm(len(image), generator=generator)
        for start in range(0, len(order), batch_size):
            batch = order[start: start + batch_size]
            loss = hnb_loss(image[batch], F.normalize(caption[batch] @ weight.T, dim=-1),
                            F.normalize(negative[batch] @ weight.T, dim=-1), t)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return weight.detach()


def test_clean_map_is_the_authors_path_without_the_planted_items(sets):
    """Known answer: the clean HNB map equals, bit for bit, the map the authors' path trains (same seed and
    settings) on the training set with the k planted items removed; the count is k of N."""
    train, val = sets
    maps, history, counts = train_labclip_maps(train, val, "HNB", **SETTINGS)
    assert counts == {"train_items": N_TRAIN, "train_same_negative": len(PLANTED)}
    kept = np.ones(N_TRAIN, bool)
    kept[list(PLANTED)] = False
    without, without_history = train_labclip(train.subset(kept), val, "HNB", **SETTINGS)
    assert same_weights(maps["best_val"], without["best_val"])
    # ... and not the best map of the run on every item, which today's code kept as best_val
    everything, _ = train_labclip(train, val, "HNB", **SETTINGS)
    assert not torch.equal(maps["best_val"].linear.weight, everything["best_val"].linear.weight)
    clean_rows = [row for row in history if row["negatives"] == "distinct only"]
    assert [{**row, "negatives": "as drawn"} for row in clean_rows] == without_history
    assert map_metadata("HNB", "best_val", counts) == {
        "train_items": N_TRAIN, "train_same_negative": 6, "train_negatives": f"distinct only (6 of {N_TRAIN} dropped)"}


def test_authors_last_epoch_map_trains_on_every_item_as_drawn(sets):
    """The authors' map is unchanged: the last epoch of the run on all N items, equal to today's single run and to
    the training loop written out in this test; its metadata counts the negatives that equal their caption."""
    train, val = sets
    maps, history, counts = train_labclip_maps(train, val, "HNB", **SETTINGS)
    single, single_history = train_labclip(train, val, "HNB", **SETTINGS)
    assert set(maps) == {"last_epoch", "best_val"}
    assert same_weights(maps["last_epoch"], single["last_epoch"])
    torch.testing.assert_close(maps["last_epoch"].linear.weight, reference_last_map(train, **SETTINGS),
                               rtol=1e-5, atol=1e-6)
    assert [row for row in history if row["negatives"] == "as drawn"] == [
        {**row, "best": False} for row in single_history]  # no map of the run as drawn is kept at its best epoch
    assert map_metadata("HNB", "last_epoch", counts)["train_negatives"] == \
        f"as drawn (6 of {N_TRAIN} equal their caption)"
    # the files: the last epoch of the run as drawn, the best epoch of the run without the planted items
    best = next(row for row in history if row["best"])
    assert best["negatives"] == "distinct only" and sum(row["best"] for row in history) == 1
    assert [(selection, epoch) for selection, _, epoch in map_files(maps, history)] == [
        ("last_epoch", 3), ("best_val", best["epoch"])]


def count_runs(monkeypatch) -> list[str]:
    runs = []
    original = labclip.train_labclip

    def counted(*args, **kwargs):
        runs.append(kwargs.get("negatives", "as drawn"))
        return original(*args, **kwargs)

    monkeypatch.setattr(labclip, "train_labclip", counted)
    return runs


def test_sb_trains_once_for_both_maps(sets, monkeypatch):
    """SB never uses the negatives: one run on every item gives both maps, and neither claims to drop any."""
    train, val = sets
    runs = count_runs(monkeypatch)
    maps, history, counts = train_labclip_maps(train, val, "SB", **SETTINGS)
    assert runs == ["as drawn"]
    single, single_history = train_labclip(train, val, "SB", **SETTINGS)  # the original, not counted
    assert history == single_history and {row["negatives"] for row in history} == {"as drawn"}
    for selection in ("last_epoch", "best_val"):
        assert same_weights(maps[selection], single[selection])
        assert map_metadata("SB", selection, counts) == {"train_items": N_TRAIN, "train_same_negative": 6,
                                                         "train_negatives": "unused (SB)"}


def test_hnb_without_equal_negatives_trains_once(sets, monkeypatch):
    _, val = sets
    train = free_text_set(N_TRAIN)
    runs = count_runs(monkeypatch)
    maps, history, counts = train_labclip_maps(train, val, "HNB", **SETTINGS)
    assert runs == ["as drawn"] and len(history) == 3 and counts["train_same_negative"] == 0
    assert map_metadata("HNB", "best_val", counts)["train_negatives"] == f"distinct only (0 of {N_TRAIN} dropped)"


def test_early_stopping_keeps_the_authors_run_as_early_stopped(sets):
    train, val = sets
    maps, history, _ = train_labclip_maps(train, val, "HNB", **{**SETTINGS, "epochs": 8}, patience=1)
    assert set(maps) == {"early_stopped", "best_val"}
    drawn = [row["epoch"] for row in history if row["negatives"] == "as drawn"]
    assert map_files(maps, history)[0][0] == "early_stopped" and map_files(maps, history)[0][2] == drawn[-1]


def test_clevr_scenes_with_two_equal_colours_are_counted_and_dropped():
    """With the authors' sampler some CLEVR scenes have two equal colours: their attribute swap is the caption.
    The count is those scenes (read off their objects), and the clean map is the run without them."""
    spec = dict(sampling="authors", objects_per_scene=[2], scenes_per_count=250, negatives_per_scene=1, shards=1,
                splits=dict(train=0.8, val=0.2, test=0.0))
    data = synthetic_embedded(generate_scenes("syn", spec, 320, 240, 0).to_pylist())
    train, val = (data.subset(data.split == split) for split in ("train", "val"))
    equal_colours = np.array([len({o["attribute"] for o in s["objects"]}) == 1 for s in train.items])
    assert 0 < equal_colours.sum() < len(train.items)
    maps, _, counts = train_labclip_maps(train, val, "HNB", **SETTINGS)
    assert counts == {"train_items": len(train.items), "train_same_negative": int(equal_colours.sum())}
    without, _ = train_labclip(train.subset(~equal_colours), val, "HNB", **SETTINGS)
    assert same_weights(maps["best_val"], without["best_val"])


def test_training_negatives_travel_with_the_map_file(tmp_path):
    counts = {"train_items": 10, "train_same_negative": 1}
    paths = {}
    for selection in ("last_epoch", "best_val"):
        paths[selection] = tmp_path / f"{selection}.safetensors"
        save_labclip(LabClip(4), paths[selection], {"mode": "HNB", "selection": selection, "epoch": 2,
                                                    **map_metadata("HNB", selection, counts)})
    old = tmp_path / "old.safetensors"
    save_labclip(LabClip(4), old, {"mode": "SB", "selection": "last_epoch", "epoch": 2})  # written before counting
    maps = text_maps({paths["last_epoch"]: "", paths["best_val"]: " (coco)", old: ""}, {}, 4, "m", None)
    assert [(name, selection, negatives) for name, selection, _, negatives, _ in maps] == [
        ("LABCLIP-HNB", "last_epoch", "as drawn (1 of 10 equal their caption)"),
        ("LABCLIP-HNB (coco)", "best_val", "distinct only (1 of 10 dropped)"),
        ("LABCLIP-SB", "last_epoch", "not recorded")]
    assert load_labclip(paths["best_val"])[1]["train_same_negative"] == 1


@pytest.mark.parametrize("caption, tokens", [
    ("Brown dog resting.", [("Brown", "JJ"), ("dog", "NN"), ("resting", "VBG"), (".", ".")]),  # one noun, one adjective
    ("A dog and a dog.", [("A", "DT"), ("dog", "NN"), ("and", "CC"), ("a", "DT"), ("dog", "NN"), (".", ".")]),
])
def test_a_coco_negative_that_shuffles_nothing_is_its_caption(caption, tokens):
    """ARO's shuffler joins tokens with spaces ('resting .'), so an identity shuffle used to differ from its
    caption in spacing only; the negative is now the caption itself, which has_distinct_negative sees."""
    from workflow_scripts.analyses.similarity import has_distinct_negative

    negative = coco.hard_negative(caption, tokens, np.random.default_rng(0))
    assert negative == caption
    assert not has_distinct_negative([{"caption": caption, "negative_captions": [negative]}], coco.VOCABULARY).any()


def test_a_coco_negative_that_shuffles_is_aros():
    tokens = [("A", "DT"), ("dog", "NN"), ("on", "IN"), ("a", "DT"), ("couch", "NN"), (".", ".")]
    negatives = {coco.hard_negative("A dog on a couch.", tokens, np.random.default_rng(seed)) for seed in range(20)}
    assert negatives == {"A dog on a couch.", "A couch on a dog ."}  # ARO's text where the nouns moved


def test_recall_and_real_world_tables_show_the_training_negatives():
    from workflow_scripts.summary.tables import real_world_table, recall_markdown, recall_table

    recall = pd.DataFrame([{"dataset": "coco", "model_id": "b32", "weights": "w", "variant": variant,
                            "selection": selection, "train_negatives": negatives, "direction": "text-to-image",
                            "k": 1, "recall": 0.4, "n_queries": 25}
                           for variant, selection, negatives in [
                               ("CLIP", "none", None),
                               ("LABCLIP-HNB", "last_epoch", "as drawn (3 of 100 equal their caption)"),
                               ("LABCLIP-HNB", "best_val", "distinct only (3 of 100 dropped)")]])
    table = recall_table(recall)
    markdown = recall_markdown(table)
    assert "| selection | train_negatives | direction |" in markdown
    assert "as drawn (3 of 100 equal their caption)" in markdown and "distinct only (3 of 100 dropped)" in markdown
    real = real_world_table({"recall": table}, {"b32": "CLIP"})
    assert list(real["train_negatives"]) == ["", "as drawn (3 of 100 equal their caption)",
                                             "distinct only (3 of 100 dropped)"]
