"""Weights prefetch: random weights, local checkpoints and open_clip tags are fetched, verified offline and recorded;
an uncached tag without a hub fails at once with the fix. Tags are served from a Hugging Face cache that the tests
build in open_clip's layout, with a randomly initialised model's weights (no network here)."""
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import huggingface_hub.constants as hub
import open_clip
import pytest
import torch
import yaml
from safetensors.torch import save_file

from conftest import REPO
from workflow_scripts.common.files import LOCK_NAME
from workflow_scripts.models import hub as hub_access, loading, prefetch
from workflow_scripts.common.parquet import read_provenance

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
# The smallest architecture with an open_clip tag that is not behind a gated download (70 M parameters, 0.28 GB);
# its tag resolves like ViT-B-32/openai: hf_hub "timm/<repo>/", file open_clip_model.safetensors.
TAGGED = ("PE-Core-T-16-384", "meta")
REVISION = "0123456789abcdef0123456789abcdef01234567"


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tagged_model():
    torch.manual_seed(11)
    model, _, _ = open_clip.create_model_and_transforms(TAGGED[0], pretrained=None)
    return model


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory, tagged_model):
    """An HF_HOME whose hub cache holds TAGGED's weights where open_clip looks for them."""
    home = tmp_path_factory.mktemp("hf_home")
    repo = open_clip.get_pretrained_cfg(*TAGGED)["hf_hub"].strip("/")
    assert repo == "timm/PE-Core-T-16-384"
    entry = home / "hub" / f"models--{repo.replace('/', '--')}"
    (entry / "refs").mkdir(parents=True)
    (entry / "refs" / "main").write_text(REVISION)
    snapshot = entry / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in tagged_model.state_dict().items()}, snapshot / "open_clip_model.safetensors")
    return home


@pytest.fixture
def no_hub(monkeypatch, tmp_path):
    """The hub unreachable, HF_HUB_OFFLINE unset and an empty cache: point HF_HUB_CACHE elsewhere to fill it."""
    monkeypatch.setattr(hub_access, "hub_reachable", lambda *a, **k: False)
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "HF_HOME", str(tmp_path))
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return monkeypatch


def use_cache(monkeypatch, home: Path):
    monkeypatch.setattr(hub, "HF_HOME", str(home))
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(home / "hub"))


def test_random_weights_need_nothing(no_hub):
    record = prefetch.prefetch("ViT-B-32", "none", seed=3)
    assert record["model"] == "ViT-B-32" and record["pretrained"] == "none"
    assert record["weights"] == "random initialisation, torch seed 3"
    assert record["source"] == "random" and record["files"] == []
    assert record["hf_hub_cache"] == hub.HF_HUB_CACHE


def test_local_checkpoint_is_recorded_with_its_sha256(no_hub, tagged_model, tmp_path):
    checkpoint = tmp_path / "my_clip.pt"
    torch.save(tagged_model.state_dict(), checkpoint)
    record = prefetch.prefetch(TAGGED[0], str(checkpoint))
    digest = sha256(checkpoint)
    assert record["source"] == "local_checkpoint"
    assert record["files"] == [{"path": str(checkpoint), "bytes": checkpoint.stat().st_size, "sha256": digest}]
    assert record["weights"] == f"local checkpoint sha256 {digest}"
    with pytest.raises(FileNotFoundError, match="checkpoint for model 'ViT-B-32' not found: /nowhere/clip.pt"):
        prefetch.prefetch("ViT-B-32", "/nowhere/clip.pt")


def test_uncached_tag_without_hub_fails_at_once_with_the_fix(no_hub):
    started = time.monotonic()
    with pytest.raises(RuntimeError) as raised:
        prefetch.prefetch("ViT-B-32", "openai")
    elapsed = time.monotonic() - started
    message = str(raised.value)
    assert f"weights ViT-B-32/openai are not in the local cache ({hub.HF_HUB_CACHE}) and huggingface.co cannot be " \
           "reached" in message
    assert "snakemake prefetch --cores 1" in message and "local checkpoint path" in message
    assert elapsed < 10, f"took {elapsed:.1f} s"
    no_hub.setattr(hub, "HF_HUB_OFFLINE", True)
    with pytest.raises(RuntimeError, match="are not in the local cache .* and HF_HUB_OFFLINE is set"):
        prefetch.prefetch("ViT-B-32", "openai")
    assert hub.HF_HUB_OFFLINE is True  # the setting it found is left as it was


def test_cached_tag_is_verified_offline_and_recorded(no_hub, hf_home, tagged_model):
    use_cache(no_hub, hf_home)
    record = prefetch.prefetch(*TAGGED)
    cached = hf_home / "hub/models--timm--PE-Core-T-16-384/snapshots" / REVISION / "open_clip_model.safetensors"
    assert record["source"] == "hf_cache" and record["hf_hub_repo"] == "timm/PE-Core-T-16-384/"
    assert record["weights"] == "open_clip pretrained tag PE-Core-T-16-384/meta"
    assert record["files"] == [{"path": str(cached), "bytes": cached.stat().st_size, "sha256": sha256(cached)}]
    assert record["hf_home"] == str(hf_home) and record["hf_hub_cache"] == str(hf_home / "hub")
    assert hub.HF_HUB_OFFLINE is False  # verification forced the hub offline only for itself


def test_reachable_hub_downloads_then_verifies_offline(no_hub, hf_home):
    """Where the hub answers, open_clip may download first; the verification then reads the cache alone."""
    use_cache(no_hub, hf_home)
    no_hub.setattr(hub_access, "hub_reachable", lambda *a, **k: True)
    calls = []

    def load_model(name, tag, seed=0, offline=None):
        calls.append((offline, hub.HF_HUB_OFFLINE))
        return loading.load_model(name, tag, seed=seed, offline=True)  # no network here: the "download" finds the cache

    no_hub.setattr(prefetch, "load_model", load_model)
    assert prefetch.prefetch(*TAGGED)["source"] == "hf_cache"
    assert calls == [(False, False), ("the verification reads the cache only", False)]


def test_offline_load_reads_the_cached_weights_without_asking_the_hub(no_hub, hf_home, tagged_model):
    use_cache(no_hub, hf_home)

    def must_not_probe(*args, **kwargs):
        raise AssertionError("the hub was probed")

    no_hub.setattr(hub_access, "hub_reachable", must_not_probe)
    model, _, tokenizer, provenance = loading.load_model(*TAGGED, offline="prefetched")
    expected = tagged_model.state_dict()
    assert all(torch.equal(value, expected[key]) for key, value in model.state_dict().items())
    assert tokenizer(["a red cube"]).shape[0] == 1


def test_offline_only_for_records_of_cached_tags(no_hub, tmp_path):
    cache = tmp_path / "hub"
    paths = {}
    for source in ["hf_cache", "local_checkpoint", "random"]:
        paths[source] = tmp_path / f"{source}.json"
        paths[source].write_text(json.dumps({"source": source, "hf_hub_cache": str(cache)}))
    assert loading.offline_from_record(paths["hf_cache"]) == (
        f"the prefetch record {paths['hf_cache']} says they were verified in {cache}")
    assert loading.offline_from_record(paths["local_checkpoint"]) is None
    assert loading.offline_from_record(paths["random"]) is None
    assert loading.offline_from_record(None) is None


def test_a_broken_cached_file_is_not_reported_as_missing(no_hub, tmp_path):
    entry = tmp_path / "hub/models--timm--PE-Core-T-16-384"
    (entry / "refs").mkdir(parents=True)
    (entry / "refs/main").write_text(REVISION)
    (entry / "snapshots" / REVISION).mkdir(parents=True)
    (entry / "snapshots" / REVISION / "open_clip_model.safetensors").write_bytes(b"truncated download")
    with pytest.raises(Exception) as raised:
        prefetch.prefetch(*TAGGED)
    assert "not in the local cache" not in str(raised.value)


def test_workflow_prefetches_every_model_and_nothing_else(hf_home, tagged_model, tmp_path):
    checkpoint = tmp_path / "ckpt.pt"
    torch.save(tagged_model.state_dict(), checkpoint)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "seed": 5,
        "datasets": {"toy": {"objects_per_scene": [2], "scenes_per_count": 10, "shards": 1}},
        "models": [
            {"id": "ckpt", "name": TAGGED[0], "pretrained": str(checkpoint)},
            {"id": "tagged", "name": TAGGED[0], "pretrained": TAGGED[1]},
            {"id": "uncached", "name": "ViT-B-32", "pretrained": "openai"},
        ],
        "embedding": {"device": "cpu", "precision": "fp32"},
    }))
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}  # the machine has no hub anyway

    def snakemake(*args):
        return subprocess.run(
            [SNAKEMAKE, "--snakefile", REPO / "Snakefile", *args, "--directory", tmp_path, "--configfile", config],
            cwd=REPO, env=env, capture_output=True, text=True,
        )

    run = snakemake("prefetch", "--cores", "2", "--keep-going")
    assert run.returncode != 0 and "Error in rule prefetch_weights" in run.stderr, run.stderr[-3000:]
    weights = tmp_path / "results/weights"
    published = sorted(p.name for p in weights.iterdir() if p.name != LOCK_NAME)
    assert published == ["ckpt.json", "tagged.json"], run.stderr[-3000:]
    records = {m: json.loads((weights / f"{m}.json").read_text()) for m in ["ckpt", "tagged"]}
    assert records["ckpt"]["model_id"] == "ckpt" and records["ckpt"]["source"] == "local_checkpoint"
    assert records["ckpt"]["files"][0]["sha256"] == sha256(checkpoint)
    assert records["tagged"]["source"] == "hf_cache" and records["tagged"]["hf_home"] == str(hf_home)
    assert records["tagged"]["files"][0]["sha256"] == sha256(
        hf_home / "hub/models--timm--PE-Core-T-16-384/snapshots" / REVISION / "open_clip_model.safetensors")
    log = (tmp_path / "results/logs/prefetch_weights/uncached.log").read_text()
    assert "ViT-B-32/openai are not in the local cache" in log and "HF_HUB_OFFLINE is set" in log
    assert "ViT-B-32/openai are not in the local cache" in run.stderr  # profiles/default: failed logs on the console
    for model in records:
        assert "sha256" in (tmp_path / f"results/logs/prefetch_weights/{model}.log").read_text()
        assert (tmp_path / f"results/benchmarks/prefetch_weights/{model}.tsv").exists()
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["benchmarks", "logs", "weights"]

    # An embedding job (a compute node's) learns from the record that it may read the cache with the hub offline.
    env.pop("HF_HUB_OFFLINE")
    texts = "results/toy/embeddings/tagged/texts.parquet"
    embedded = snakemake(texts, "--cores", "2")
    assert embedded.returncode == 0, embedded.stderr[-3000:]
    log = (tmp_path / "results/logs/embed_texts/toy/tagged.log").read_text()
    assert "open_clip pretrained tag PE-Core-T-16-384/meta (read from the prefetched cache, hub offline)" in log
    assert read_provenance(tmp_path / texts)["weights"] == "open_clip pretrained tag PE-Core-T-16-384/meta"
    # A rewritten record does not make the embeddings stale.
    os.utime(weights / "tagged.json")
    again = snakemake(texts, "-n", "--cores", "1")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr, again.stdout

    # The default target is still `all`; its embeddings wait for the one record that is missing.
    plan = snakemake("-n", "--cores", "1")
    assert plan.returncode == 0, plan.stderr[-2000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", plan.stdout, re.MULTILINE))
    assert counts["prefetch_weights"] == "1" and "prefetch" not in counts
    assert counts["embed_images"] == "3" and counts["embed_texts"] == "2"  # one texts file is there
