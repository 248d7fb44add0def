"""Models are checked when the workflow is parsed (models/catalogue.py): open_clip's own lists of architectures
and tags, read without importing torch where it can be avoided, and checkpoint paths."""
import json
import subprocess
import sys

import open_clip
import pytest

from conftest import REPO, snakemake, write_config
from workflow_scripts.config import ConfigError, validate_config
from workflow_scripts.models import catalogue


def test_architectures_read_from_files_are_open_clips_list():
    assert sorted(catalogue.installed_architectures()) == sorted(open_clip.list_models())


def test_tags_are_open_clips_and_come_from_the_cache_the_second_time(tmp_path):
    tags = catalogue.installed_tags(tmp_path)
    assert tags == {name: open_clip.list_pretrained_tags_by_model(name) for name in open_clip.list_models()}
    assert "openai" in tags["ViT-B-32"]
    (cache,) = tmp_path.glob("open_clip-tags-*.json")
    cache.write_text(json.dumps({"ViT-B-32": ["from_the_cache"]}))
    assert catalogue.installed_tags(tmp_path) == {"ViT-B-32": ["from_the_cache"]}


def test_parse_time_checks_import_neither_torch_nor_open_clip_once_tags_are_cached(tmp_path):
    catalogue.installed_tags(tmp_path)
    script = (f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
              "from workflow_scripts.models.catalogue import model_errors\n"
              f"print(model_errors([{{'id': 'a', 'name': 'ViT-B-32', 'pretrained': 'openai'}}], {str(tmp_path)!r}))\n"
              "print(sorted(m for m in ('torch', 'open_clip') if m in sys.modules))\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout.split("\n")[:2] == ["[]", "[]"]


@pytest.mark.parametrize("name, pretrained, error, words", [
    ("ViT-B-33", "none", ValueError, "model name 'ViT-B-33' is not an open_clip architecture (open_clip 3.3.0; "
                                     "see open_clip.list_models()); did you mean 'ViT-B-32'"),
    ("ViT-B-32", "opena", ValueError, "'opena' is not an open_clip tag of 'ViT-B-32'; its tags are ['openai', "),
    ("ViT-B-32", "opena", ValueError, "did you mean 'openai'?"),
    ("ViT-B-32", "/nowhere/clip.pt", FileNotFoundError, "checkpoint for model 'ViT-B-32' not found: /nowhere/clip.pt"),
])
def test_problems_are_named_with_the_way_out(tmp_path, name, pretrained, error, words):
    problem = catalogue.weights_problem(name, pretrained, catalogue.installed_architectures(),
                                        catalogue.installed_tags(tmp_path))
    assert problem[0] is error and words in problem[1]


@pytest.mark.parametrize("pretrained", ["none", "random", "openai", "laion2b_s34b_b79k"])
def test_buildable_models_pass(tmp_path, pretrained):
    assert catalogue.weights_problem("ViT-B-32", pretrained, catalogue.installed_architectures(),
                                     catalogue.installed_tags(tmp_path)) is None


def test_an_existing_checkpoint_passes(tmp_path):
    checkpoint = tmp_path / "mine.safetensors"
    checkpoint.write_bytes(b"weights")
    assert catalogue.weights_problem("ViT-B-32", str(checkpoint), [], None) is not None  # unknown architecture
    assert catalogue.weights_problem("ViT-B-32", str(checkpoint), ["ViT-B-32"], None) is None


BAD_MODELS = [{"id": "typo", "name": "ViT-B-33", "pretrained": "none"},
              {"id": "tag", "name": "ViT-B-32", "pretrained": "opena"},
              {"id": "ckpt", "name": "ViT-B-32", "pretrained": "/nowhere/clip.pt"}]


def test_config_check_lists_every_unbuildable_model_by_entry(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as raised:
        validate_config({"datasets": {"toy": {"objects_per_scene": [2], "scenes_per_count": 10}},
                         "models": BAD_MODELS})
    message = str(raised.value)
    for entry in ("models[0] (id 'typo'): model name 'ViT-B-33'", "models[1] (id 'tag'): 'opena'",
                  "models[2] (id 'ckpt'): checkpoint for model 'ViT-B-32' not found"):
        assert entry in message


def test_snakemake_stops_at_parse_time_naming_the_models(tmp_path):
    config = write_config(tmp_path, {"datasets": {"toy": {"objects_per_scene": [2], "scenes_per_count": 10}},
                                     "models": BAD_MODELS})
    run = snakemake("--cores", 1, "--directory", tmp_path, "--configfile", config)
    assert run.returncode != 0
    assert "models[0] (id 'typo')" in run.stderr and "models[2] (id 'ckpt')" in run.stderr, run.stderr[-3000:]
    assert not (tmp_path / "results").exists()
