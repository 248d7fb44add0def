"""COCO 2014 (kind `coco`) on files written in COCO's captions format and Karpathy's dataset_coco.json, malformed
ones named; Recall@K (rule `recall`) on a planted similarity matrix whose ranks are counted by hand."""
import json

import numpy as np
import pytest
from PIL import Image

from workflow_scripts.analyses.recall import image_groups, recall_ranks, recall_rows
from workflow_scripts.config import dataset_errors
from workflow_scripts.datasets import coco
from workflow_scripts.datasets.build import build_items
from workflow_scripts.datasets.kind import ItemContext
from workflow_scripts.datasets.registry import BUILTIN_KINDS

CAPTIONS = ["A large brown dog sleeps on a red couch.", "A dog on a couch.", "Brown dog resting.",
            "A small white cat sits next to a green bottle.", "A cat and a bottle."]


def coco_file(folder, split, ids):
    """annotations/captions_<split>2014.json for images `ids` (each with its captions) and their JPEGs."""
    images = [{"id": i, "file_name": f"COCO_{split}2014_{i:012d}.jpg", "width": 40, "height": 30} for i in ids]
    annotations = [{"image_id": i, "id": 100 * i + k, "caption": caption}
                   for i in ids for k, caption in enumerate(CAPTIONS[(i % 2) * 3:(i % 2) * 3 + 3])]
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    (folder / "annotations" / f"captions_{split}2014.json").write_text(
        json.dumps({"info": {}, "images": images, "annotations": annotations}))
    (folder / f"{split}2014").mkdir(exist_ok=True)
    for image in images:
        Image.new("RGB", (40, 30), (image["id"] * 20 % 255, 80, 160)).save(folder / f"{split}2014" / image["file_name"])


def write_coco(folder):
    coco_file(folder, "train", [1, 2, 3])
    coco_file(folder, "val", [10, 11, 12, 13])
    return {"kind": "coco", "root": str(folder), "test_images": 2, "val_images": 1}


def write_karpathy(folder):
    spec = write_coco(folder)
    rows = [("train2014", 1, "train"), ("train2014", 2, "restval"), ("val2014", 10, "val"), ("val2014", 11, "test")]
    images = [{"filepath": path, "filename": f"COCO_{path}_{i:012d}.jpg", "cocoid": i, "split": split,
               "sentences": [{"raw": c, "tokens": c.lower().split()} for c in CAPTIONS[:2]]}
              for path, i, split in rows]
    (folder / "dataset_coco.json").write_text(json.dumps({"images": images, "dataset": "coco"}))
    return {**spec, "karpathy": str(folder / "dataset_coco.json")}


def build(spec, seed=0):
    spec = dict(spec)
    assert dataset_errors({"datasets": {"coco": spec}}, BUILTIN_KINDS) == []  # fills the schema's defaults
    return build_items("coco", spec, coco.KIND, ItemContext(seed, (224, 224), coco.inputs("coco", spec)))[0].to_pylist()


def test_official_files_give_train2014_and_seeded_val2014_test_and_val_images(tmp_path):
    items = build({**write_coco(tmp_path), "captions_per_image": 2})
    by_split = {split: sorted({i["image_group"] for i in items if i["split"] == split}) for split in ("train", "val", "test")}
    assert by_split["train"] == ["1", "2", "3"]
    assert len(by_split["test"]) == 2 and len(by_split["val"]) == 1
    assert set(by_split["test"] + by_split["val"]) < {"10", "11", "12", "13"}
    assert len(items) == 2 * (3 + 3)  # two captions of each of six images
    dog = next(i for i in items if i["item_id"] == "coco-2-0")
    assert dog["caption"] == CAPTIONS[0] and dog["image"] == str(tmp_path / "train2014/COCO_train2014_000000000002.jpg")
    negative = dog["negative_captions"][0]
    assert sorted(negative.replace(".", " .").split()) == sorted(CAPTIONS[0].replace(".", " .").split())
    assert build({**write_coco(tmp_path / "again"), "captions_per_image": 2})[0]["negative_captions"] == \
        items[0]["negative_captions"]


def test_shuffled_negatives_differ_and_captions_are_cut(tmp_path):
    items = build({**write_coco(tmp_path), "max_words": 5})
    assert all(len(i["caption"].split()) <= 5 for i in items)
    long = [i for i in items if i["caption"].startswith("A large brown dog")]
    assert long and all(i["caption"] == "A large brown dog sleeps" for i in long)
    changed = [i["negative_captions"][0] != i["caption"] for i in build(write_coco(tmp_path / "whole"))]
    assert sum(changed) >= len(changed) / 2  # a caption with a single noun and adjective cannot change


def test_karpathy_splits_put_restval_in_train(tmp_path):
    items = build(write_karpathy(tmp_path))
    splits = {i["image_group"]: i["split"] for i in items}
    assert splits == {"1": "train", "2": "train", "10": "val", "11": "test"}
    assert build({**write_karpathy(tmp_path / "k"), "max_train_images": 1}) and \
        {i["image_group"] for i in build({**write_karpathy(tmp_path / "m"), "max_train_images": 1})
         if i["split"] == "train"} == {"1"}


def test_malformed_coco_files_are_named(tmp_path):
    spec = write_coco(tmp_path)
    path = tmp_path / "annotations/captions_val2014.json"
    data = json.loads(path.read_text())
    data["annotations"][2]["image_id"] = 999
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"captions_val2014.json: annotations\[2\] names image_id 999"):
        build(spec)
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="expected COCO's captions format"):
        build(spec)
    path.unlink()
    assert dataset_errors({"datasets": {"coco": dict(spec)}}, BUILTIN_KINDS) == [
        f"datasets.coco.root: {path} does not exist"]
    karpathy = write_karpathy(tmp_path / "k")
    data = json.loads((tmp_path / "k/dataset_coco.json").read_text())
    data["images"][1]["split"] = "holdout"
    (tmp_path / "k/dataset_coco.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"images\[1\] has split 'holdout'"):
        build(karpathy)
    (tmp_path / "k/val2014/COCO_val2014_000000000011.jpg").unlink()
    data["images"][1]["split"] = "restval"
    (tmp_path / "k/dataset_coco.json").write_text(json.dumps(data))
    with pytest.raises(FileNotFoundError, match="1 of the 4 images its captions name are missing"):
        build(karpathy)


def test_more_test_and_val_images_than_val2014_has_is_refused(tmp_path):
    with pytest.raises(ValueError, match="test_images \\+ val_images = 5, but .* has 4 images"):
        build({**write_coco(tmp_path), "test_images": 4})


# Six captions of three images (two each), unit rows, so each cosine is the planted number.
PLANTED = np.array([[0.8, 0.6, 0.0],   # caption 0, image 0: its image first        -> rank 0
                    [0.6, 0.8, 0.0],   # caption 1, image 0: image 1 above it         -> rank 1
                    [0.6, 0.0, 0.8],   # caption 2, image 1: both others above        -> rank 2
                    [0.0, 0.8, 0.6],   # caption 3, image 1                           -> rank 0
                    [0.8, 0.0, 0.6],   # caption 4, image 2: image 0 above            -> rank 1
                    [0.6, 0.8, 0.0]])  # caption 5, image 2: both above               -> rank 2
IMAGE_OF_CAPTION = np.array([0, 0, 1, 1, 2, 2])


def test_recall_at_k_on_a_planted_similarity_matrix():
    """Text-to-image ranks 0,1,2,0,1,2. Image-to-text: image 0's best caption (0.8, caption 0) has none above it;
    image 1's (0.8, caption 3) neither; image 2's best is 0.6 (caption 4), below caption 2's 0.8: rank 1."""
    images = np.eye(3)
    caption_rank, image_rank = recall_ranks(PLANTED, images, IMAGE_OF_CAPTION, chunk=4)  # chunks cut the queries
    assert caption_rank.tolist() == [0, 1, 2, 0, 1, 2] and image_rank.tolist() == [0, 0, 1]
    rows = {(r["direction"], r["k"]): (r["recall"], r["n_queries"])
            for r in recall_rows(PLANTED, images, IMAGE_OF_CAPTION, ks=(1, 2, 3))}
    assert rows[("text-to-image", 1)] == (2 / 6, 6) and rows[("text-to-image", 2)] == (4 / 6, 6)
    assert rows[("text-to-image", 3)] == (1.0, 6)
    assert rows[("image-to-text", 1)] == (2 / 3, 3) and rows[("image-to-text", 2)] == (1.0, 3)


def test_items_sharing_an_image_group_are_one_image():
    items = [{"item_id": "a", "image_group": "7"}, {"item_id": "b", "image_group": "9"},
             {"item_id": "c", "image_group": "7"}, {"item_id": "d"}]
    first, of_item = image_groups(items)
    assert first.tolist() == [0, 1, 3] and of_item.tolist() == [0, 1, 0, 2]


def test_the_workflow_runs_coco_and_aro_from_their_files_to_the_tables(tmp_path):
    """Snakemake builds COCO (Karpathy's file), ARO VG-Relation and COCO-Order items from fixture files, embeds
    them with a randomly initialised ViT-B-32, trains LABCLIP on COCO's train captions with the authors' COCO
    settings, and writes Recall@K and the compositional table with ARO's scorings and paper A's numbers."""
    import pandas as pd
    from conftest import TINY, snakemake, write_config
    from test_aro import write_order, write_vg

    datasets = {"coco": write_karpathy(tmp_path / "coco"), "vgr": write_vg(tmp_path / "aro"),
                "order": write_order(tmp_path / "order")}
    models = [{**TINY["models"][0], "paper_model": "NegCLIP"}]  # its CLIP rows stand beside paper A's NegCLIP
    config = write_config(tmp_path, {**TINY, "datasets": datasets, "models": models,
                                     "paper_a": {**TINY["paper_a"], "labclip_transfer": ["coco"]}})
    targets = ["results/paper_a/tables/recall.csv", "results/paper_a/tables/compositional.csv",
               "results/paper_a/tables/real_world.csv"]
    run = snakemake(*targets, "--cores", 2, "--directory", tmp_path, "--configfile", config)
    assert run.returncode == 0, run.stderr[-3000:]
    recall = pd.read_csv(tmp_path / targets[0])
    assert set(recall["variant"]) == {"CLIP", "LABCLIP-SB", "LABCLIP-HNB"} and (recall["dataset"] == "coco").all()
    assert set(recall["selection"]) == {"none", "last_epoch", "best_val"}
    one = recall[(recall["variant"] == "CLIP") & (recall["k"] == 1)].set_index("direction")
    assert one.loc["text-to-image", "n_queries"] == 2 and one.loc["image-to-text", "n_queries"] == 1
    assert one.loc["text-to-image", "reference_recall"] == 0.30 and recall["weights"].str.startswith("random").all()
    history = pd.read_parquet(tmp_path / "results/coco/labclip/rand/HNB_history.parquet")
    # the authors' COCO epochs, the kind's default, in the run on every negative as drawn (one of the 4 training
    # captions shuffles to itself, so HNB's clean map comes from a second run without it)
    assert (history["negatives"] == "as drawn").sum() == 10 and set(history["negatives"]) == {"as drawn",
                                                                                            "distinct only"}
    table = pd.read_csv(tmp_path / targets[1])
    assert set(table["scoring"]) == {"aro_relation", "aro_order"}
    assert set(table["variant"]) == {"CLIP", "LABCLIP-SB (coco)", "LABCLIP-HNB (coco)"}  # COCO's maps transferred
    assert set(table["selection"]) == {"none", "last_epoch", "best_val"}
    macro = table[(table["subset"] == "macro (ARO)") & (table["protocol"] == "authors")
                  & (table["variant"] == "CLIP")].iloc[0]
    assert (macro["n_items"], macro["n_subsets"], macro["reference_accuracy"]) == (2, 2, 0.63)  # 'next to' dropped
    assert macro["accuracy_low95"] <= macro["accuracy"] <= macro["accuracy_high95"]
    draws = table[(table["dataset"] == "order") & (table["protocol"] == "authors")
                  & (table["variant"] == "CLIP")].set_index("subset")
    assert draws.loc["mean over draws", "n_items"] == 3 and {"draw 0", "draw 1"} <= set(draws.index)
    items = pd.read_parquet(tmp_path / "results/order/items.parquet")
    assert items["negative_captions"].map(len).eq(4).all()  # the perturbed captions are saved
    markdown = (tmp_path / "results/paper_a/tables/compositional.md").read_text()
    assert "macro (ARO)" in markdown and "RANDOM weights" in markdown
    real = pd.read_csv(tmp_path / targets[2])
    assert set(real["benchmark"]) == {"ARO VG-Relation", "COCO text-to-image R@1"}  # no SugarCrepe, no VG-Attribution
    beside = real.set_index(["benchmark", "variant", "selection"])[["paper_model", "reference"]]
    assert tuple(beside.loc[("ARO VG-Relation", "CLIP", "none")]) == ("NegCLIP", 0.81)
    assert tuple(beside.loc[("ARO VG-Relation", "LABCLIP-HNB (coco)", "last_epoch")]) == ("LABCLIP", 0.82)
    assert tuple(beside.loc[("COCO text-to-image R@1", "LABCLIP-HNB", "last_epoch")]) == ("LABCLIP", 0.41)
    assert beside.loc[("COCO text-to-image R@1", "LABCLIP-SB", "last_epoch"), "paper_model"] != "LABCLIP"
    assert "Paper A's real-world table" in (tmp_path / "results/paper_a/tables/real_world.md").read_text()


def test_the_real_world_table_gathers_paper_as_benchmarks_beside_its_numbers():
    """From compositional and recall rows: ARO's macro rows, SugarCrepe's two subsets and COCO's text-to-image R@1,
    authors' protocol only; CLIP rows beside paper A's CLIP (or the entry's paper_model), our HNB map at its last
    epoch beside its LABCLIP, a best-validation map beside nothing."""
    import pandas as pd

    from workflow_scripts.summary.tables import real_world_table

    base = {"dataset": "d", "weights": "w", "precision": "fp32", "activation": "QuickGELU", "measure": "image-to-text",
            "n_items": 10, "accuracy_low95": 0.1, "accuracy_high95": 0.9}
    compositional = pd.DataFrame([
        {**base, "model_id": "b32", "variant": "CLIP", "selection": "none", "protocol": "authors",
         "scoring": "aro_relation", "subset": "macro (ARO)", "accuracy": 0.6},
        {**base, "model_id": "b32", "variant": "CLIP", "selection": "none", "protocol": "clean",
         "scoring": "aro_relation", "subset": "macro (ARO)", "accuracy": 0.7},  # not the authors': left out
        {**base, "model_id": "b32", "variant": "LABCLIP-HNB (coco)", "selection": "last_epoch", "protocol": "authors",
         "scoring": "sugarcrepe", "subset": "swap_att", "accuracy": 0.7},
        {**base, "model_id": "b32", "variant": "LABCLIP-HNB (coco)", "selection": "best_val", "protocol": "authors",
         "scoring": "sugarcrepe", "subset": "swap_att", "accuracy": 0.72},
        {**base, "model_id": "neg", "variant": "CLIP", "selection": "none", "protocol": "authors",
         "scoring": "sugarcrepe", "subset": "add_att", "accuracy": 0.9},  # not in paper A's table
    ])
    recall = pd.DataFrame([{"dataset": "coco", "model_id": "neg", "weights": "w", "variant": "CLIP", "selection": "none",
                            "direction": "text-to-image", "k": k, "recall": {1: 0.41, 5: 0.6}[k], "n_queries": 25,
                            "recall_low95": 0.3, "recall_high95": 0.5} for k in (1, 5)])
    table = real_world_table({"compositional": compositional, "recall": recall}, {"b32": "CLIP", "neg": "NegCLIP"})
    got = {(r.benchmark, r.model_id, r.selection): (r.share, r.n, r.paper_model, r.reference)
           for r in table.itertuples()}
    assert got.pop(("ARO VG-Relation", "b32", "none")) == (0.6, 10, "CLIP", 0.63)
    assert got.pop(("SugarCrepe swap-att", "b32", "last_epoch")) == (0.7, 10, "LABCLIP", 0.74)
    share, n, paper, ref = got.pop(("SugarCrepe swap-att", "b32", "best_val"))
    assert (share, paper) == (0.72, "") and np.isnan(ref)
    assert got.pop(("COCO text-to-image R@1", "neg", "none")) == (0.41, 25, "NegCLIP", 0.41)
    assert not got
    assert real_world_table({}, {}).empty
