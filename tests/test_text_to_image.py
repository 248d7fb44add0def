"""Paper B's prompt-order experiment: the prompts (known answers), generation with a tiny randomly initialised Stable
Diffusion pipeline saved to a folder (tiny_models.py, no download), both rules run by Snakemake on it with a tiny
GroundingDINO and a random CLIP, and the summary on planted rows."""
import json
import math

import numpy as np
import pytest
from PIL import Image

from tiny_models import save_tiny_grounding_dino, save_tiny_text_to_image
from workflow_scripts.analyses.prompt_order import most_prominent, prompt_order_rows, summary_rows
from workflow_scripts.common.parquet import read_provenance, read_table
from workflow_scripts.models.text_to_image import generate, load_pipeline, prompt_rows, verified_in_cache

NAMES = ["cat", "apple", "dog", "umbrella", "car", "bird"]


# --- prompts -------------------------------------------------------------------------------------------------------

def test_prompts_rotate_every_drawn_set():
    rows = prompt_rows(NAMES, [2, 3], 4, seed=1)
    assert len(rows) == 4 * 2 + 4 * 3
    sets = {}
    for row in rows:
        sets.setdefault(row["set_id"], []).append(row)
    assert len(sets) == 8 and len({frozenset(r[0]["objects"]) for r in sets.values()}) == 8
    for set_rows in sets.values():
        n = set_rows[0]["n_objects"]
        assert [row["rotation"] for row in set_rows] == list(range(n))
        assert sorted(row["objects"][0] for row in set_rows) == sorted(set_rows[0]["objects"])
        assert all(row["objects"] == set_rows[0]["objects"][r:] + set_rows[0]["objects"][:r]
                   for r, row in enumerate(set_rows))
        assert all(len(set(row["objects"])) == n and set(row["objects"]) <= set(NAMES) for row in set_rows)
    assert rows[0]["prompt_id"] == "n2-s0000-r0" and rows[-1]["prompt_id"] == "n3-s0003-r2"


def test_prompt_articles_and_template():
    rows = prompt_rows(["apple", "cat"], [2], 1, seed=0)
    assert {row["prompt"] for row in rows} == {"a photo of an apple and a cat", "a photo of a cat and an apple"}
    assert prompt_rows(["Owl"], [1], 1, 0, template="{objects}, studio light")[0]["prompt"] == "an Owl, studio light"


def test_prompts_are_seeded():
    assert prompt_rows(NAMES, [2, 3], 5, seed=3) == prompt_rows(NAMES, [2, 3], 5, seed=3)
    assert prompt_rows(NAMES, [2, 3], 5, seed=3) != prompt_rows(NAMES, [2, 3], 5, seed=4)
    # each count draws from its own generator: adding a count leaves the others' sets alone
    both = prompt_rows(NAMES, [2, 3], 5, seed=3)
    assert prompt_rows(NAMES, [3], 5, seed=3) == [row for row in both if row["n_objects"] == 3]


def test_prompt_errors_name_the_value():
    with pytest.raises(ValueError, match="objects_per_prompt 7"):
        prompt_rows(NAMES, [2, 7], 1, seed=0)
    with pytest.raises(ValueError, match="prompts_per_count 16: only 15 distinct sets"):
        prompt_rows(NAMES, [2], 16, seed=0)
    with pytest.raises(ValueError, match="no {objects} placeholder"):
        prompt_rows(NAMES, [2], 1, seed=0, template="a photo")


# --- generation ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pipeline_folder(tmp_path_factory):
    return save_tiny_text_to_image(tmp_path_factory.mktemp("tiny_sd"))


def pixels(image) -> np.ndarray:
    return np.asarray(image)


def test_images_do_not_depend_on_batching(pipeline_folder):
    pipeline, record = load_pipeline(str(pipeline_folder), "cpu", "fp32", offline=True)
    assert record["precision"] == "fp32" and record["safety_checker"] == "the pipeline has no safety checker"
    assert f"{pipeline_folder.resolve()}/unet: diffusion_pytorch_model.safetensors sha256" in record["weights"]
    rows = prompt_rows(["cat", "apple"], [2], 1, seed=0)
    settings = dict(steps=2, guidance_scale=7.5, height=32, width=32, device="cpu", progress=False)
    together = list(generate(pipeline, rows, [0, 1], batch_size=4, **settings))
    alone = list(generate(pipeline, rows, [0, 1], batch_size=1, **settings))
    assert [(row["prompt_id"], seed) for row, seed, _ in together] == [
        ("n2-s0000-r0", 0), ("n2-s0000-r1", 0), ("n2-s0000-r0", 1), ("n2-s0000-r1", 1)]
    assert all(image.size == (32, 32) for _, _, image in together)
    for (_, _, first), (_, _, second) in zip(together, alone):
        assert np.array_equal(pixels(first), pixels(second))
    assert not np.array_equal(pixels(together[0][2]), pixels(together[2][2]))  # another seed
    assert not np.array_equal(pixels(together[0][2]), pixels(together[1][2]))  # another prompt


def test_a_safety_checker_is_turned_off(tmp_path):
    folder = save_tiny_text_to_image(tmp_path / "with_checker", safety_checker=True)
    pipeline, record = load_pipeline(str(folder), "cpu", "fp16", offline=True)
    assert pipeline.safety_checker is None and "safety checker was turned off" in record["safety_checker"]
    assert record["precision"] == "fp32"  # the CPU computes in fp32 whatever is configured


def test_a_cached_hub_pipeline_loads_by_name_offline(pipeline_folder, tmp_path):
    """The real checkpoints' path: a hub id resolved in the Hugging Face cache (its layout written here, with the
    tiny pipeline as the snapshot), fetched and verified by the prefetch and loaded with the hub offline, in a
    process whose HF_HUB_CACHE is that cache."""
    from tiny_models import FAKE_REVISION, run_with_cached_hub_model

    code = ("from workflow_scripts.models.hf_models import prefetch_hf\n"
            "from workflow_scripts.models.text_to_image import describe_pipeline_weights, load_pipeline\n"
            "record = prefetch_hf('someone/tiny-sd', lambda n, off: load_pipeline(n, 'cpu', 'fp32', off),\n"
            "                     describe_pipeline_weights)\n"
            "_, loaded = load_pipeline('someone/tiny-sd', 'cpu', 'fp32', offline=True)\n"
            "print(record['source'], '|', loaded['pipeline'], '|', loaded['weights'])")
    printed = run_with_cached_hub_model(pipeline_folder, "someone/tiny-sd", code, tmp_path)
    assert printed.endswith(
        f"hf_cache | StableDiffusionPipeline | Hugging Face hub someone/tiny-sd, revision {FAKE_REVISION}")


def test_an_uncached_hub_model_fails_offline_naming_it():
    with pytest.raises(RuntimeError, match="no-such-owner/no-such-pipeline: not in the Hugging Face cache.*prefetch"):
        load_pipeline("no-such-owner/no-such-pipeline", "cpu", "fp32", offline=True)


def test_a_prefetch_record_says_whether_to_read_the_cache_only(tmp_path):
    cached, local = tmp_path / "cached.json", tmp_path / "local.json"
    cached.write_text(json.dumps({"source": "hf_cache"}))
    local.write_text(json.dumps({"source": "local_folder"}))
    assert verified_in_cache(str(cached)) and verified_in_cache([str(cached)])
    assert not verified_in_cache(str(local)) and not verified_in_cache([]) and not verified_in_cache(None)


# --- both rules end to end, from the config to the table and figure ----------------------------------------------

SETTINGS = {"seeds": 2, "steps": 2, "guidance_scale": 7.5, "resolution": [32, 32], "batch_size": 3, "device": "cpu",
            "precision": "fp16", "objects_per_prompt": [2], "prompts_per_count": 1}


def test_the_workflow_generates_and_measures_images_to_the_table(pipeline_folder, tmp_path):
    """Snakemake runs generate_images with the tiny pipeline (a local folder, verified by prefetch_hf_model) on a
    three-name dataset, 1 set x 2 rotations x 2 seeds, then prompt_order with a tiny GroundingDINO and a random CLIP,
    then the table and the figure."""
    import pandas as pd
    from conftest import TINY, snakemake, write_config

    detector = save_tiny_grounding_dino(tmp_path / "grounding_dino", ["cat", "apple", "dog"])
    config = write_config(tmp_path, {
        **TINY, "datasets": {"three": {"kind": "names", "objects": ["cat", "apple", "dog"],
                                       "analyses": ["prompt_order"]}},
        "paper_b": {**TINY["paper_b"],
                    "text_to_image": {**SETTINGS, "model": str(pipeline_folder)},
                    "mention_order": {"device": "cpu", "detector": {"model": str(detector), "resize": [64, 64],
                                                                    "box_threshold": 0.0, "text_threshold": 0.0}}}})
    targets = ["results/paper_b/tables/prompt_order.csv", "results/paper_b/figures/prompt_order.png"]
    run = snakemake(*targets, "--cores", 2, "--directory", tmp_path, "--configfile", config)
    assert run.returncode == 0, run.stderr[-3000:]

    generated = tmp_path / "results/three/prompt_order"
    table = read_table(generated / "images.parquet").to_pylist()
    assert [(row["prompt_id"], row["seed"]) for row in table] == [
        ("n2-s0000-r0", 0), ("n2-s0000-r1", 0), ("n2-s0000-r0", 1), ("n2-s0000-r1", 1)]
    assert table[0]["objects"] == table[1]["objects"][::-1] and set(table[0]["objects"]) <= {"cat", "apple", "dog"}
    assert sorted(path.name for path in (generated / "images").glob("*.png")) == sorted(row["image"] for row in table)
    with Image.open(generated / "images" / table[0]["image"]) as image:
        assert image.size == (32, 32)
    provenance = read_provenance(generated / "images.parquet")
    assert provenance["model"] == str(pipeline_folder) and "sha256" in provenance["weights"]
    assert provenance["precision"] == "fp32" and provenance["device"] == "cpu"  # fp16 configured, the CPU's fp32

    rows = read_table(generated / "prompt_order.parquet").to_pylist()
    assert [row["measure"] for row in rows] == ["detector"] * 4 + ["clip"] * 4
    for row in rows:
        assert len(row["scores"]) == 2 and row["first_named"] == row["objects"][0]
        if row["most_prominent"] is None:  # the random detector can give both objects the same box
            assert row["scores"][0] == row["scores"][1] and row["first_is_most_prominent"] is None
            continue
        index = row["position_of_most_prominent"] - 1
        assert row["most_prominent"] == row["objects"][index] and row["first_is_most_prominent"] == (index == 0)
        assert row["scores"][index] == max(row["scores"]) > row["scores"][1 - index]
    assert all(row["n_appearing"] == 2 and all(0 < area <= 1 for area in row["scores"]) for row in rows[:4])
    assert all(row["n_appearing"] is None and sum(row["scores"]) == pytest.approx(1) for row in rows[4:])
    measured = read_provenance(generated / "prompt_order.parquet")
    assert measured["weights"] == provenance["weights"] and measured["dataset"] == "three"
    assert measured["clip_weights"] == "random initialisation, torch seed 5"
    assert str(detector.resolve()) in measured["detector_weights"]

    summary = pd.read_csv(tmp_path / targets[0], dtype={"n_objects": str})
    assert [(row.measure, row.n_objects) for row in summary.itertuples()] == [
        ("detector", "2"), ("detector", "all"), ("clip", "2"), ("clip", "all")]
    assert ((summary["n_images"] + summary["n_undecided"]) == 4).all() and (summary["chance"] == 0.5).all()
    assert (summary["share"] == summary["share_position_1"]).all()
    assert (summary["share_low95"] <= summary["share"]).all() and (summary["share"] <= summary["share_high95"]).all()
    assert set(summary["precision"]) == {"text-to-image fp32, measures fp32"}


# --- the measures' rule and the summary on planted numbers ---------------------------------------------------------

def test_most_prominent():
    assert most_prominent([0.1, None, 0.3]) == 2
    assert most_prominent([None, None]) is None
    assert most_prominent([0.2, 0.2, 0.1]) is None  # shared largest
    assert most_prominent([0.2, 0.1, 0.1]) == 0


def image_row(n: int, index: int) -> dict:
    objects = ["cat", "apple", "dog", "car", "bird"][:n]
    return {"prompt_id": f"n{n}-s{index:04d}-r0", "set_id": f"n{n}-s{index:04d}", "n_objects": n, "rotation": 0,
            "objects": objects, "seed": 0, "image": f"n{n}-s{index:04d}-r0-seed0.png"}


def test_prompt_order_rows_known_answer():
    images = [image_row(2, 0), image_row(3, 1)]
    scores = {"detector": [[None, None], [0.1, None, 0.4]], "clip": [[0.7, 0.3], [0.2, 0.5, 0.3]]}
    rows = prompt_order_rows(images, scores)
    decided = [(row["measure"], row["most_prominent"], row["position_of_most_prominent"],
                row["first_is_most_prominent"], row["n_appearing"]) for row in rows]
    assert decided == [("detector", None, None, None, 0), ("detector", "dog", 3, False, 2),
                       ("clip", "cat", 1, True, None), ("clip", "apple", 2, False, None)]
    with pytest.raises(ValueError, match="3 clip scores for objects"):
        prompt_order_rows(images[:1], {"clip": [[0.2, 0.5, 0.3]]})


def test_summary_known_answer():
    two = [image_row(2, i) for i in range(11)]
    four = [image_row(4, i) for i in range(4)]
    # n = 2: 8 of 10 decided images have their first-named object largest, one image is undecided (no boxes)
    scores = [[0.5, 0.1]] * 8 + [[0.1, 0.5]] * 2 + [[None, None]]
    # n = 4: once first, three times third
    scores += [[0.9, 0.1, 0.1, 0.1]] + [[0.1, 0.1, 0.9, 0.1]] * 3
    summary = {row["n_objects"]: row for row in summary_rows(prompt_order_rows(two + four, {"detector": scores}))}
    assert list(summary) == ["2", "4", "all"]
    pair = summary["2"]
    assert (pair["n_images"], pair["n_undecided"], pair["share"], pair["chance"]) == (10, 1, 0.8, 0.5)
    assert (pair["share_low95"], pair["share_high95"]) == pytest.approx((0.490, 0.943), abs=5e-4)
    assert (pair["share_position_1"], pair["share_position_2"]) == (0.8, pytest.approx(0.2))
    assert all(math.isnan(pair[f"share_position_{p}"]) for p in (3, 4, 5))
    assert (summary["4"]["share"], summary["4"]["share_position_3"], summary["4"]["chance"]) == (0.25, 0.75, 0.25)
    everything = summary["all"]
    assert (everything["n_images"], everything["n_undecided"]) == (14, 1)
    assert everything["share"] == pytest.approx(9 / 14) and everything["chance"] == pytest.approx(6 / 14)
    assert everything["share_position_3"] == pytest.approx(3 / 14) and everything["share_position_5"] == 0
