"""Config validation: defaults filled in, every bad key named before any job runs."""
import copy

import pytest
import yaml

from conftest import REPO
from workflow_scripts.config_check import ConfigError, validate_config

MINIMAL = {
    "datasets": {"toy": {"objects_per_scene": [2], "scenes_per_count": 4}},
    "models": [{"id": "rand", "name": "ViT-B-32", "pretrained": "none"}],
}


def invalid(changes) -> str:
    config = copy.deepcopy(MINIMAL)
    changes(config)
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    return str(error.value)


@pytest.mark.parametrize("path", ["config.yaml", "configs/demo.yaml"])
def test_shipped_configs_are_valid(path):
    validate_config(yaml.safe_load((REPO / path).read_text()))


def test_defaults_are_filled_in():
    config = validate_config(copy.deepcopy(MINIMAL))
    assert config["seed"] == 0
    assert config["render"] == {
        "resolution": [320, 240], "samples": 64, "denoise": True, "device": "CPU", "gpu_backend": "CUDA"
    }
    assert config["datasets"]["toy"]["splits"] == {"train": 0.8, "val": 0.1, "test": 0.1}
    assert config["datasets"]["toy"]["shards"] == 1
    assert config["embedding"]["precision"] == "bf16"


def test_unknown_key_is_named_with_the_known_ones():
    message = invalid(lambda c: c.update(render={"sampels": 8}))
    assert "render" in message and "'sampels' was unexpected" in message and "samples" in message


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
        (lambda c: c["datasets"]["toy"].update(shards=9), "datasets.toy.shards"),
        (lambda c: c["datasets"]["toy"].update(negatives_per_scene=2), "datasets.toy.negatives_per_scene"),
        (lambda c: c["datasets"]["toy"].update(splits={"train": 0.8, "val": 0.1, "test": 0.2}), "sum to 1"),
        (lambda c: c["models"].append(dict(c["models"][0])), "'rand' is used more than once"),
    ],
)
def test_inconsistent_values(change, expected):
    assert expected in invalid(change)


def test_tor_objects_default_to_the_simco_vocabulary():
    from workflow_scripts.scenes import SIMCO_SHAPES

    assert validate_config(copy.deepcopy(MINIMAL))["paper_b"]["tor"]["objects"] == list(SIMCO_SHAPES)


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
    ({"kind": "simco", "negatives_per_scene": 1}, "datasets.toy.negatives_per_scene: not a key of kind simco"),
    ({"layout": "mixed"}, "datasets.toy.layout: not a key of kind clevr"),
    ({"kind": "simco", "meshes": "m"}, "datasets.toy.meshes: not a key of kind simco"),
    ({"kind": "simco", "objects_per_scene": [2, 6]}, "datasets.toy.objects_per_scene: simco scenes hold 2..5"),
    ({"kind": "comco"}, "datasets.toy: 'meshes' is a required property"),
    ({"kind": "simco", "layout": "diagonal"}, "datasets.toy.layout: 'diagonal' is not one of"),
])
def test_kind_specific_keys_are_checked(dataset, expected):
    assert expected in invalid(lambda c: c["datasets"]["toy"].update(dataset))
