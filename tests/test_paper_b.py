"""Paper B's TOR pipeline with a text encoder whose first-mention bias is planted, through table and figure."""
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from workflow_scripts.analyses.ior import ior_rows
from workflow_scripts.analyses.matching import authors_matching_rows, authors_scenarios, matching_rows, matching_variants
from workflow_scripts.analyses.tor import tor_rows
from workflow_scripts.datasets.simco import SHAPES as SIMCO_SHAPES
from workflow_scripts.datasets.items import Vocabulary
from workflow_scripts.datasets.simco import VOCABULARY, generate_simco_scenes
from workflow_scripts.summary import reference
from workflow_scripts.summary.figures import draw
from workflow_scripts.summary.tables import (
    ior_markdown,
    ior_table,
    matching_markdown,
    matching_table,
    tor_markdown,
    tor_table,
)

POSITION_WEIGHTS = (0.4, 0.3, 0.2, 0.1, 0.05)
TOR = {"protocols": ["authors", "clean"], "objects_per_caption": [2, 4], "captions_per_count": 400,
       "templates": ["short", "long"], "aggregations": ["authors_sum", "max"]}


def biased_encoder(weights=POSITION_WEIGHTS, dim=64, noise=0.01):
    """Encodes a text as the position-weighted sum of the vectors of the object names it mentions."""
    vectors = dict(zip(SIMCO_SHAPES, np.linalg.qr(np.random.default_rng(0).standard_normal((dim, dim)))[0].T))

    def encode(texts):
        out = []
        for text in texts:
            names = [w for w in re.findall(r"[a-z]+", text) if w in vectors]
            jitter = np.random.default_rng(abs(hash(text)) % 2**32).standard_normal(dim)
            out.append(sum(w * vectors[n] for w, n in zip(weights, names)) + noise * jitter)
        return np.array(out)

    return encode


@pytest.fixture(scope="module")
def rows():
    return pd.DataFrame(tor_rows(biased_encoder(), SIMCO_SHAPES, TOR, seed=0))


def test_rows_cover_every_protocol_template_count_and_method(rows):
    assert len(rows) == 2 * 2 * (3 + 1)  # protocols x counts x (short: caption + 2 splits; long: caption)
    assert set(rows["method"]) == {"caption", "split-authors_sum", "split-max"}
    counts = rows.groupby(["protocol", "n_objects"])["n_captions"].unique().to_dict()
    assert counts == {("authors", 2): [153], ("authors", 4): [400], ("clean", 2): [306], ("clean", 4): [400]}
    assert rows[rows["n_objects"] == 2]["first_retrieved_share_3"].isna().all()


@pytest.mark.parametrize("protocol", ["authors", "clean"])
@pytest.mark.parametrize("template", ["short", "long"])
def test_planted_first_mention_bias_is_measured(rows, protocol, template):
    four = rows[(rows["n_objects"] == 4) & (rows["template"] == template) & (rows["protocol"] == protocol)]
    caption = four.set_index("method").loc["caption"]
    assert caption["first_retrieved_share_1"] > 0.95
    assert caption["first_retrieved_share_4"] < 0.02


def test_the_split_removes_the_bias_on_balanced_orders(rows):
    four = rows[(rows["n_objects"] == 4) & (rows["protocol"] == "clean")].set_index("method")
    for method in ("split-authors_sum", "split-max"):
        for position in range(1, 5):
            assert four.loc[method, f"first_retrieved_share_{position}"] == pytest.approx(0.25, abs=0.08)
    assert four.loc["split-authors_sum", "top_n_accuracy"] > 0.95


def test_unbiased_encoder_shows_no_position_preference_on_balanced_orders():
    rows = pd.DataFrame(tor_rows(biased_encoder(weights=(0.25,) * 5), SIMCO_SHAPES,
                                 {**TOR, "templates": ["short"], "protocols": ["clean"]}, seed=0))
    caption = rows[(rows["n_objects"] == 4) & (rows["method"] == "caption")].iloc[0]
    for position in range(1, 5):
        assert caption[f"first_retrieved_share_{position}"] == pytest.approx(0.25, abs=0.08)


def test_table_marks_the_rows_the_paper_reports_and_the_figure_draws(rows, tmp_path):
    """The paper's numbers stand beside the enumerated authors' row with 4 names (every one of C(18, 4) = 3,060
    captions), not beside the sampled rows of the fixture."""
    enumerated = pd.DataFrame(tor_rows(biased_encoder(), SIMCO_SHAPES, {
        **TOR, "protocols": ["authors"], "objects_per_caption": [4], "captions_per_count": None}, seed=0))
    labelled = pd.concat([rows, enumerated]).assign(dataset="simco", model_id="syn",
                                                    weights="random initialisation, torch seed 0")
    table = tor_table(labelled)
    reported = table.dropna(subset=["reference_first_retrieved_share_1"])
    assert list(zip(reported["protocol"], reported["template"], reported["n_objects"], reported["method"])) == [
        ("authors", "short", 4, "caption")]
    assert reported["reference_first_retrieved_share_4"].iloc[0] == reference.TOR_FIRST_RETRIEVED_SHARE[4]
    assert "| simco | syn |" in tor_markdown(table)
    draw("tor_position_bias", {"tor": table}, tmp_path / "t.png", tmp_path / "t.pdf")
    with Image.open(tmp_path / "t.png") as png:
        assert png.size[0] > 300


# ---------------------------------------------------------------- IOR and matching on SIMCO scene tables

def simco_scenes(layout="one_large", counts=(2, 3, 4, 5), per_count=20):
    spec = {"objects_per_scene": list(counts), "scenes_per_count": per_count, "shards": 1, "layout": layout,
            "splits": {"train": 0.0, "val": 0.0, "test": 1.0}}
    return generate_simco_scenes("paper_b_test", spec, 224, 224, seed=3).to_pylist()


SHAPE_VECTORS = dict(zip(SIMCO_SHAPES, np.eye(32)[:len(SIMCO_SHAPES)]))


def image_embeddings(scenes, weigh, noise=0.01):
    """Each image: the sum of its objects' vectors, object i of n weighted by weigh(object, i)."""
    rng = np.random.default_rng(1)
    return np.array([sum(weigh(o, i) * SHAPE_VECTORS[o["object"]] for i, o in enumerate(s["objects"]))
                     + noise * rng.standard_normal(32) for s in scenes])


def test_ior_reports_a_planted_large_object_bias_at_every_caption_position():
    scenes = simco_scenes()
    images = image_embeddings(scenes, lambda o, i: 1.0 if o["size"] == "large" else 0.1)
    rows = pd.DataFrame(ior_rows(scenes, images, list(SIMCO_SHAPES), np.stack(list(SHAPE_VECTORS.values()))))
    assert (rows["large_first_share"] == 1.0).all()  # ranked either way: the nearest reference is the large object
    rows = rows[rows["ranked_among"] == "all_references"]
    small = rows[[c for c in rows.columns if c.startswith("small_first_share_")]]
    assert np.nansum(small.to_numpy()) == 0
    four = rows[rows["n_objects"] == 4].set_index("large_position")
    assert list(four.index) == ["all", "1", "2", "3", "4"]
    assert list(four["n_images"]) == [20, 5, 5, 5, 5]
    # The large object is named at each position equally often, so each position is retrieved first as often.
    assert [four.loc["all", f"first_retrieved_share_{p}"] for p in range(1, 5)] == [0.25] * 4
    assert four.loc["all", "top_n_accuracy"] == 1.0


def test_ior_tells_caption_position_from_size_when_images_favour_the_first_object():
    scenes = simco_scenes()
    images = image_embeddings(scenes, lambda o, i: 1.0 if i == 0 else 0.1)
    rows = pd.DataFrame(ior_rows(scenes, images, list(SIMCO_SHAPES), np.stack(list(SHAPE_VECTORS.values()))))
    rows = rows[rows["ranked_among"] == "all_references"]
    four = rows[rows["n_objects"] == 4].set_index("large_position")
    assert four.loc["1", "large_first_share"] == 1.0
    assert four.loc[["2", "3", "4"], "large_first_share"].tolist() == [0.0] * 3
    assert four.loc["all", "first_retrieved_share_1"] == 1.0


def test_ior_ranked_among_own_objects_ignores_an_absent_object_that_wins():
    """An image nearest to an absent object's reference: the global count credits none of its objects; the
    authors' count, among its own objects, credits the large one, and its shares sum to 1."""
    scenes = [s for s in simco_scenes(counts=(2,), per_count=4)]
    absent = [next(n for n in SIMCO_SHAPES if n not in {o["object"] for o in s["objects"]}) for s in scenes]
    images = image_embeddings(scenes, lambda o, i: 0.5 if o["size"] == "large" else 0.1, noise=0.0)
    images = images + np.stack([SHAPE_VECTORS[a] for a in absent])  # the absent object dominates every image
    rows = pd.DataFrame(ior_rows(scenes, images, list(SIMCO_SHAPES), np.stack(list(SHAPE_VECTORS.values()))))
    rows = rows[rows["large_position"] == "all"].set_index("ranked_among")
    assert rows.loc["all_references", "large_first_share"] == 0.0
    assert rows.loc["all_references", ["first_retrieved_share_1", "first_retrieved_share_2"]].sum() == 0.0
    assert rows.loc["own_objects", "large_first_share"] == 1.0
    assert rows.loc["own_objects", ["first_retrieved_share_1", "first_retrieved_share_2"]].sum() == 1.0
    assert rows.loc["own_objects", "n_large_images"] == 4


def first_object_encoder(texts):
    """A text encoder that sees only the first object a caption names."""
    return np.array([SHAPE_VECTORS[text.split(" and ")[0]] for text in texts])


def with_large_object_distractor(scene):
    """The scene with a distractor that replaces its large object by an absent shape."""
    names = [o["object"] for o in scene["objects"]]
    large = next(i for i, o in enumerate(scene["objects"]) if o["size"] == "large")
    names[large] = next(s for s in SIMCO_SHAPES if s not in names)
    return {**scene, "negative_captions": [" and ".join(names)]}


def test_matching_measures_both_planted_biases_and_the_split_removes_the_order_effect():
    scenes = [with_large_object_distractor(s) for s in simco_scenes(counts=(3,), per_count=12)]
    images = image_embeddings(scenes, lambda o, i: 1.0 if o["size"] == "large" else 0.0, noise=0.0)
    rows = pd.DataFrame(matching_rows(scenes, images, first_object_encoder, VOCABULARY, ["authors_sum"]))
    caption = rows[rows["method"] == "caption"].set_index("condition")["accuracy"]
    # Caption and distractor differ only in the large object: a first-object text encoder tells them apart
    # only when the large object is named first, and ties (0.5) otherwise.
    assert caption["large to first"] == 1.0
    assert caption["large to last"] == 0.5
    assert caption["small to first"] == 0.5
    assert caption["large named 1"] == 1.0
    assert caption["large named 2"] == caption["large named 3"] == 0.5
    assert caption["original"] == pytest.approx((1.0 + 0.5 + 0.5) / 3)
    split = rows[rows["method"] == "split-authors_sum"]
    assert (split["accuracy"] == 1.0).all()
    assert set(split["condition"]) == set(caption.index)
    assert rows.set_index(["method", "condition"]).loc[("caption", "large to first"), "n_pairs"] == 8  # 12 - 4 first


def test_authors_scenarios_swap_the_large_object_and_replace_one_slot_per_absent_object():
    scene = {"n_objects": 3, "objects": [{"object": "cube", "size": "small"}, {"object": "cone", "size": "large"},
                                         {"object": "star", "size": "small"}]}
    names = Vocabulary(objects=("cube", "cone", "star", "moon", "leaf"))
    assert authors_scenarios(scene, names) == [
        ("authors 1: large first", ("cone", "cube", "star"), ("moon", "cube", "star")),
        ("authors 2: large last", ("cube", "star", "cone"), ("cone", "cube", "moon")),
        ("authors 1: large first", ("cone", "cube", "star"), ("leaf", "cube", "star")),
        ("authors 2: large last", ("cube", "star", "cone"), ("cone", "cube", "leaf")),
    ]
    assert authors_scenarios({**scene, "objects": [dict(o, size="small") for o in scene["objects"]]}, names) == []


@pytest.mark.parametrize("moon_weight, expected", [(1.1, 0.5), (1.0, 0.5), (0.9, 1.0)])
def test_authors_matching_counts_an_absent_object_that_wins_and_a_tie_as_wrong(moon_weight, expected):
    """A 3-object image with two absent objects: with the first-object encoder, scenario 1 compares the large
    object's vector with each absent one's. The image leans towards the moon by `moon_weight`: above 1 the moon's
    distractor wins (1 of 2 correct), at 1 it ties, which the authors count as wrong, below 1 both are correct."""
    scene = {"item_id": "i", "n_objects": 3, "objects": [
        {"object": "cube", "size": "small"}, {"object": "cone", "size": "large"}, {"object": "star", "size": "small"}]}
    names = Vocabulary(objects=("cube", "cone", "star", "moon", "leaf"))
    image = SHAPE_VECTORS["cone"] + moon_weight * SHAPE_VECTORS["moon"]
    rows = pd.DataFrame(authors_matching_rows([scene], image[None, :], first_object_encoder, names))
    first = rows[rows["condition"] == "authors 1: large first"].iloc[0]
    assert first["protocol"] == "authors" and first["n_pairs"] == 2
    assert first["accuracy"] == expected


def test_matching_counts_every_move_that_changes_the_caption():
    scene = simco_scenes(counts=(4,), per_count=1)[0]
    conditions = [c for c, _, _ in matching_variants(scene, VOCABULARY)]
    assert conditions.count("original") == 1
    assert sum(c.endswith("to first") for c in conditions) == 3
    assert sum(c.endswith("to last") for c in conditions) == 3
    assert conditions[-1] == "large named 1"
    for condition, order, distractor in matching_variants(scene, VOCABULARY):
        assert sum(a != b for a, b in zip(order, distractor)) == 1, condition


def test_ior_and_matching_tables_and_figures(tmp_path):
    scenes = simco_scenes(counts=(2, 4), per_count=8)
    images = image_embeddings(scenes, lambda o, i: 1.0 if o["size"] == "large" else 0.2)
    ior = pd.DataFrame(ior_rows(scenes, images, list(SIMCO_SHAPES), np.stack(list(SHAPE_VECTORS.values()))))
    matching = pd.DataFrame(matching_rows(scenes, images, first_object_encoder, VOCABULARY, ["authors_sum", "max"]))
    labels = {"dataset": "simco", "model_id": "syn", "weights": "random initialisation, torch seed 0"}
    ior_t = ior_table(ior.assign(**labels))
    reported = ior_t.dropna(subset=["reference_large_first_share"])
    assert list(zip(reported["ranked_among"], reported["n_objects"], reported["large_position"])) == [
        ("own_objects", 4, "all")]
    assert reported["reference_small_first_share_3"].iloc[0] == reference.IOR_SMALL_FIRST_SHARE[2]
    assert "| simco | syn |" in ior_markdown(ior_t)
    assert "large named 2" in matching_markdown(matching_table(matching.assign(**labels)))
    for name, table in (("ior_large_object", {"ior": ior_t}), ("matching_conditions", {"matching": matching_table(matching.assign(**labels))})):
        draw(name, table, tmp_path / f"{name}.png", tmp_path / f"{name}.pdf")
        with Image.open(tmp_path / f"{name}.png") as png:
            assert png.size[0] > 300


def test_a_checkpoint_given_by_path_runs_every_paper_b_analysis(tmp_path):
    """A fine-tuned CLIP given by its checkpoint file (NegCLIP's way) is a model like any other: the DAG runs each
    per-model paper B analysis for it beside the tag's, and the tables gather both (dry run: the file is a stand-in)."""
    import re

    from conftest import TINY, snakemake, write_config
    from test_mention_order import write_coco_with_instances

    checkpoint = tmp_path / "negclip.pth"
    checkpoint.write_bytes(b"a stand-in: a dry run reads no weights")
    models = [{"id": "rand", "name": "ViT-B-32", "pretrained": "none"},
              {"id": "negclip", "name": "ViT-B-32-quickgelu", "pretrained": str(checkpoint)}]
    analyses = ["tor", "ior", "matching", "slot_classification", "attention"]
    datasets = {"shapes": {"kind": "simco", "objects_per_scene": [2, 3], "scenes_per_count": 10, "analyses": analyses,
                           "splits": {"train": 0.6, "val": 0.2, "test": 0.2}},
                "coco": {**write_coco_with_instances(tmp_path / "coco"), "analyses": ["caption_tor"]}}
    config = write_config(tmp_path, {**TINY, "datasets": datasets, "models": models})
    run = snakemake("-n", "--cores", 1, "--directory", tmp_path, "--configfile", config)
    assert run.returncode == 0, run.stderr[-2000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", run.stdout, re.MULTILINE))
    for analysis in [*analyses, "caption_tor"]:
        assert counts[analysis] == "2", analysis  # one dataset, both models
        folder = "shapes" if analysis != "caption_tor" else "coco"
        assert f"results/{folder}/{analysis}/negclip/" in run.stdout, analysis


def test_a_dataset_is_studied_only_with_the_models_it_names(tmp_path):
    """datasets.<name>.models (ids or patterns) restricts the embeddings and analyses of that dataset and of its
    references to those models; a pattern matching no model is named at parse time."""
    import re

    from conftest import TINY, snakemake, write_config

    models = [{"id": f"{name}-{i}", "name": "ViT-B-32", "pretrained": "none"} for name in ("order", "other")
              for i in (0, 1)]
    datasets = {"shapes": {"kind": "simco", "objects_per_scene": [2], "scenes_per_count": 10, "analyses": ["tor", "ior"],
                           "models": ["order-*"]},
                "clevr": {"objects_per_scene": [2], "scenes_per_count": 20, "models": ["other-1"]}}
    config = write_config(tmp_path, {**TINY, "datasets": datasets, "models": models})
    run = snakemake("-n", "--cores", 1, "--directory", tmp_path, "--configfile", config)
    assert run.returncode == 0, run.stderr[-2000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", run.stdout, re.MULTILINE))
    assert counts["tor"] == counts["ior"] == "2" and counts["probes"] == counts["binding"] == "1"
    planned = set(re.findall(r"results/(\S+?)/embeddings/([\w.-]+)/images.parquet", run.stdout))
    assert planned == {("shapes", "order-0"), ("shapes", "order-1"), ("shapes-references", "order-0"),
                       ("shapes-references", "order-1"), ("clevr", "other-1")}
    datasets["clevr"]["models"] = ["nothing-*"]
    run = snakemake("-n", "--cores", 1, "--directory", tmp_path, "--configfile", write_config(tmp_path, {
        **TINY, "datasets": datasets, "models": models}))
    assert run.returncode != 0 and "datasets.clevr.models: 'nothing-*' matches no model id" in run.stdout + run.stderr
