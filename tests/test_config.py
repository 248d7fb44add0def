"""Config validation: defaults filled in, every bad key named before any job runs."""
import copy

import pytest
import yaml

from conftest import REPO
from workflow_scripts.config import ConfigError, validate_config

MINIMAL = {
    "datasets": {"toy": {"objects_per_scene": [2], "scenes_per_count": 10}},
    "models": [{"id": "rand", "name": "ViT-B-32", "pretrained": "none"}],
}


def invalid(changes) -> str:
    config = copy.deepcopy(MINIMAL)
    changes(config)
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    return str(error.value)


@pytest.mark.parametrize("paths", [["config.yaml"], ["configs/demo.yaml"], ["configs/data_order.yaml"],
                                   ["configs/lab.yaml"], ["configs/lab.yaml", "configs/lab-gpu.yaml"]])
def test_shipped_configs_are_valid(paths):
    from snakemake.utils import update_config

    config = {}
    for path in paths:  # stacked as `--configfile a b` stacks them
        update_config(config, yaml.safe_load((REPO / path).read_text()))
    config = validate_config(config)
    if "configs/lab-gpu.yaml" in paths:  # the overlay moves the work to the GPU and changes nothing else
        assert config["render"]["device"] == "GPU" and config["render"]["resolution"] == [64, 64]
        assert config["embedding"] == {**config["embedding"], "device": "cuda", "precision": "bf16", "batch_size": 128}


def test_defaults_are_filled_in():
    config = validate_config(copy.deepcopy(MINIMAL))
    assert config["seed"] == 0
    assert config["render"] == {
        "resolution": [320, 240], "samples": 8, "denoise": True, "device": "CPU", "gpu_backend": "CUDA",
        "light_paths": {"max_bounces": 4, "diffuse_bounces": 2, "glossy_bounces": 2},
    }
    assert config["datasets"]["toy"]["splits"] == {"train": 0.8, "val": 0.1, "test": 0.1}
    assert config["datasets"]["toy"]["shards"] == 1
    assert config["embedding"]["precision"] == "fp16"


def test_a_misspelt_key_gets_did_you_mean():
    assert "render: unknown key 'sampels'; did you mean 'samples'?" in invalid(
        lambda c: c.update(render={"sampels": 8}))


def test_an_unknown_key_far_from_any_known_one_gets_the_known_keys():
    assert "render: unknown key 'quality'; known keys: denoise, device," in invalid(
        lambda c: c.update(render={"quality": 8}))


def test_wrong_type_names_the_key():
    message = invalid(lambda c: c["datasets"]["toy"].update(scenes_per_count="many"))
    assert "datasets.toy.scenes_per_count" in message and "'many' is not of type 'integer'" in message


def test_wrong_value_names_the_key():
    message = invalid(lambda c: c.update(render={"device": "TPU"}))
    assert "render.device" in message and "TPU" in message


def test_missing_required_key():
    message = invalid(lambda c: c["models"][0].pop("pretrained"))
    assert "models.0" in message and "'pretrained' is a required property" in message


def test_every_problem_is_listed():
    def two_problems(config):
        config["render"] = {"samples": 0}
        config["embedding"] = {"batch_size": -1}

    message = invalid(two_problems)
    assert "render.samples" in message and "embedding.batch_size" in message


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda c: c["datasets"]["toy"].update(shards=11), "datasets.toy.shards"),
        (lambda c: c["datasets"]["toy"].update(negatives_per_scene=2), "datasets.toy.negatives_per_scene"),
        (lambda c: c["datasets"]["toy"].update(splits={"train": 0.8, "val": 0.1, "test": 0.2}), "sum to 1"),
        (lambda c: c["models"].append(dict(c["models"][0])), "'rand' is used more than once"),
    ],
)
def test_inconsistent_values(change, expected):
    assert expected in invalid(change)


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda c: c["datasets"]["toy"].update(scenes_per_count=6.0), "datasets.toy.scenes_per_count: 6.0 is not of type 'integer'"),
        (lambda c: c.update(seed=1.0), "seed: 1.0 is not of type 'integer'"),
        (lambda c: c["datasets"]["toy"].update(shards=True), "datasets.toy.shards: True is not of type 'integer'"),
        (lambda c: c["models"][0].update(id=".."), "models.0.id: '..' does not match"),
        (lambda c: c["models"][0].update(id="."), "models.0.id: '.' does not match"),
        (lambda c: c["models"][0].update(id="a/b"), "models.0.id: 'a/b' does not match"),
    ],
)
def test_integers_are_integers_and_model_ids_are_folder_names(change, expected):
    assert expected in invalid(change)


@pytest.mark.parametrize("key, value, maximum", [("scenes_per_count", 10**9, 1000000), ("shards", 10**6, 10000)])
def test_sizes_past_any_study_are_refused_before_planning(key, value, maximum):
    """A typo such as a million shards kept the dry run building its job graph for minutes."""
    assert f"datasets.toy.{key}: {value} is greater than the maximum of {maximum}" in invalid(
        lambda c: c["datasets"]["toy"].update({key: value}))


@pytest.mark.parametrize("dataset, expected", [
    ({"kind": "cc3m"}, "datasets.toy.kind: unknown kind 'cc3m'; known kinds: aro, clevr, coco, colorswap, comco, laion, names, pug, simco, spar, sugarcrepe, sugarcrepe_pp, winoground"),
    ({"analyses": ["probes", "speed"]}, "datasets.toy.analyses: unknown analysis 'speed'"),
    ({"analyses": ["binding"]}, "datasets.toy.analyses: binding needs probes, which is not listed"),
    ({"analyses": ["ior"]}, "datasets.toy.analyses: ior needs single-object references, which kind clevr does not"),
])
def test_kinds_and_analyses_are_checked_against_their_registries(dataset, expected):
    assert expected in invalid(lambda c: c["datasets"]["toy"].update(dataset))


@pytest.mark.parametrize("dataset, expected", [
    ({"names": "coco", "analyses": ["tor", "matching"]},
     "datasets.toy.analyses: matching needs images, which this names dataset does not have"),
    ({}, "datasets.toy: give names (coco or simco) or an objects list"),
    ({"names": "coco", "objects": ["cat", "dog"]}, "datasets.toy: give either names or objects, not both"),
    ({"objects": ["cat", "dog", "cat"]}, "datasets.toy.objects: names repeat"),
    ({"objects": ["cat", "dog"], "sizes": {"cow": "large"}}, "datasets.toy.sizes: ['cow'] are not among the dataset's"),
    ({"objects": ["cat", "dog"], "sizes": {"cat": "huge"}}, "datasets.toy.sizes.cat: 'huge' is not one of"),
])
def test_a_names_dataset_is_checked(dataset, expected):
    assert expected in invalid(lambda c: c["datasets"].update(toy={"kind": "names", **dataset}))


def test_attention_needs_a_rendered_dataset():
    message = invalid(lambda c: c["datasets"].update(toy={"kind": "colorswap", "root": "x", "analyses": ["attention"]}))
    assert "datasets.toy.analyses: attention needs the renderer's object masks, which kind colorswap does not render" \
        in message


def test_a_kind_module_that_declares_no_kind_is_named(tmp_path):
    module = tmp_path / "nothing.py"
    module.write_text("X = 1\n")
    message = invalid(lambda c: c.update(kind_modules=[str(module)]))
    assert f"kind_modules: {module} declares no KIND" in message


def test_simco_and_comco_datasets_get_their_own_defaults():
    config = copy.deepcopy(MINIMAL)
    config["datasets"]["shapes"] = {"kind": "simco", "objects_per_scene": [2, 5], "scenes_per_count": 4}
    config["datasets"]["objects"] = {"kind": "comco", "meshes": "m", "objects_per_scene": [3], "scenes_per_count": 4}
    datasets = validate_config(config)["datasets"]
    for name in ("shapes", "objects"):
        assert datasets[name]["layout"] == "one_large"
        assert datasets[name]["splits"] == {"train": 0.0, "val": 0.0, "test": 1.0}
        assert "negatives_per_scene" not in datasets[name]
    assert datasets["toy"]["negatives_per_scene"] == 1 and "layout" not in datasets["toy"]


@pytest.mark.parametrize("dataset, expected", [
    ({"kind": "simco", "negatives_per_scene": 1}, "datasets.toy: unknown key 'negatives_per_scene'; known keys: "
                                                  "analyses, kind, labclip, layout,"),
    ({"layout": "mixed"}, "datasets.toy: unknown key 'layout'; known keys: analyses, focal_length_mm, kind,"),
    ({"kind": "simco", "meshes": "m"}, "datasets.toy: unknown key 'meshes'; known keys: analyses, kind, labclip,"),
    ({"kind": "simco", "objects_per_scene": [2, 6]}, "datasets.toy.objects_per_scene.1: 6 is greater than the maximum of 5"),
    ({"kind": "comco"}, "datasets.toy: 'meshes' is a required property"),
    ({"kind": "simco", "layout": "diagonal"}, "datasets.toy.layout: 'diagonal' is not one of"),
])
def test_kind_specific_keys_are_checked(dataset, expected):
    assert expected in invalid(lambda c: c["datasets"]["toy"].update(dataset))


def test_six_two_object_scenes_are_refused_with_the_counts_each_analysis_needs():
    message = invalid(lambda c: c["datasets"]["toy"].update(scenes_per_count=6))
    assert ("datasets.toy: analysis probes needs at least 1 test 2-object item; 6 2-object items x test fraction "
            "0.1 give about 0.6: plan at least 10 2-object items or raise the test fraction") in message
    assert ("datasets.toy: analysis labclip needs at least 1 val item; 6 items x val fraction 0.1 give about "
            "0.6") in message
    assert "datasets.toy: analysis binding needs at least 1 test item" in message


def test_split_needs_follow_the_analyses_and_object_counts():
    # probes alone need each object count's splits; binding and labclip, with none listed, need nothing
    message = invalid(lambda c: c["datasets"]["toy"].update(objects_per_scene=[2, 3], scenes_per_count=4,
                                                          analyses=["probes"]))
    assert ("analysis probes needs at least 1 val 3-object item; 4 3-object items x val fraction 0.1 give about "
            "0.4") in message
    assert "labclip" not in message and "binding" not in message
    config = copy.deepcopy(MINIMAL)
    config["datasets"]["toy"].update(objects_per_scene=[2, 3], scenes_per_count=4, analyses=["probes"],
                                     splits={"train": 0.5, "val": 0.25, "test": 0.25})
    validate_config(config)  # 1 val and 1 test of each count
    message = invalid(lambda c: c["datasets"]["toy"].update(splits={"train": 1.0, "val": 0.0, "test": 0.0}))
    assert "raise the val fraction above 0" in message
    config = copy.deepcopy(MINIMAL)
    config["datasets"]["toy"].update(scenes_per_count=2, analyses=["tor"])  # tor uses no split
    validate_config(config)


def test_a_key_written_twice_in_a_config_file_is_refused_naming_file_key_and_lines(tmp_path):
    from workflow_scripts.config import check_config_file

    path = tmp_path / "config.yaml"
    path.write_text("seed: 1\nrender:\n  samples: 4\n  samples: 8\n")
    with pytest.raises(ConfigError, match=r"config.yaml: key 'samples' appears twice in one mapping \(lines 3 and 4\)"):
        check_config_file(path)
    path.write_text("seed: 1\nrender:\n  samples: 4\nmodels: []\n")
    check_config_file(path)
    # overriding a key merged in from an anchor is no repeat; repeating one of the mapping's own keys still is
    path.write_text("a: &base\n  samples: 4\nb:\n  <<: *base\n  samples: 8\n")
    check_config_file(path)
    path.write_text("a: &base\n  samples: 4\nb:\n  <<: *base\n  seed: 1\n  seed: 2\n")
    with pytest.raises(ConfigError, match=r"key 'seed' appears twice in one mapping \(lines 5 and 6\)"):
        check_config_file(path)


def test_a_pug_dataset_gets_paper_a_splits_and_its_keys_are_checked():
    config = copy.deepcopy(MINIMAL)
    config["datasets"]["spar"] = {"kind": "pug", "variant": "spar", "root": "nowhere"}
    assert validate_config(config)["datasets"]["spar"]["splits"] == {"train": 0.8, "val": 0.1, "test": 0.1}
    message = invalid(lambda c: c["datasets"].update(spar={"kind": "pug", "variant": "spur", "root": "r"}))
    assert "datasets.spar.variant: 'spur' is not one of ['spar', 'spare']" in message
    assert "datasets.spar: 'root' is a required property" in invalid(
        lambda c: c["datasets"].update(spar={"kind": "pug", "variant": "spar"}))


def test_a_dataset_s_labclip_settings_override_paper_a_s_and_pug_kinds_default_to_the_authors_batch(tmp_path):
    from workflow_scripts.datasets import pug
    from workflow_scripts.datasets.registry import dataset_kinds, plan_datasets

    for name in pug.LABEL_FILES.values():
        (tmp_path / name).write_text(",".join(pug.COLUMNS) + "\n")
    config = copy.deepcopy(MINIMAL)
    config["datasets"]["spar"] = {"kind": "pug", "variant": "spar", "root": str(tmp_path)}
    config["datasets"]["spare"] = {"kind": "pug", "variant": "spare", "root": str(tmp_path), "labclip": {"epochs": 5}}
    config["datasets"]["own_spare"] = {"kind": "spar", "style": "spare", "scenes_per_count": 10}
    config["paper_a"] = {"labclip": {"lr": 0.02}}
    config = validate_config(config)
    planned, _ = plan_datasets(config, dataset_kinds())
    settings = {name: planned[name].labclip_settings(config["paper_a"]["labclip"]) for name in planned}
    assert {k: settings["toy"][k] for k in ("lr", "epochs", "batch_size")} == {"lr": 0.02, "epochs": 50, "batch_size": 128}
    assert {k: settings["spar"][k] for k in ("lr", "epochs", "batch_size")} == {"lr": 0.02, "epochs": 50, "batch_size": 512}
    assert settings["spare"]["epochs"] == 5 and settings["spare"]["batch_size"] == 128  # its own block replaces pug's
    assert {k: settings["own_spare"][k] for k in ("lr", "epochs", "batch_size")} == {"lr": 0.02, "epochs": 50,
                                                                                   "batch_size": 512}
    assert [planned[name].kind.setting(name, planned[name].spec) for name in ("spar", "spare", "own_spare")] == [
        "PUG:SPAR", "PUG:SPARE", "PUG:SPARE"]


def test_labclip_transfer_names_configured_datasets_that_train_labclip():
    from workflow_scripts.config import transfer_errors
    from workflow_scripts.datasets.registry import BUILTIN_KINDS

    config = {"datasets": {"coco": {"kind": "coco", "root": "x"}, "wino": {"kind": "winoground", "root": "y"}},
              "paper_a": {"labclip_transfer": ["coco", "wino", "laion"]}}
    assert transfer_errors(config, BUILTIN_KINDS) == [
        "paper_a.labclip_transfer: dataset 'wino' does not run labclip, so it has no map to apply",
        "paper_a.labclip_transfer: 'laion' is not a dataset of this config (datasets: coco, wino)"]


def test_a_missing_local_model_folder_of_the_caption_statistics_is_named(tmp_path):
    message = invalid(lambda c: c.update(paper_b={"mention_order": {"detector": {"model": str(tmp_path / "gd")},
                                                                   "methods": ["llm"], "llm": {"model": "./llm"}}}))
    assert f"paper_b.mention_order.detector.model: {tmp_path / 'gd'}: no such model folder" in message
    assert "paper_b.mention_order.llm.model: " in message and "llm: no such model folder" in message
