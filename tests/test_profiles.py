"""The profiles: the SLURM profile's dry run on the tiny config, and a real run through the cluster code path.

The cluster run keeps the SLURM profile's resources but swaps the executor for cluster-generic, whose submit
command is a script written here that runs each job script in the background (a stand-in for sbatch) and
logs what it was given. So the jobs really are submitted, tracked by job id and polled, as on a cluster.
"""
import json
import re
import shlex
from collections import Counter
from types import SimpleNamespace

import pytest
import yaml

from conftest import REPO
from test_workflow import TINY, snakemake, write_config

SLURM = REPO / "profiles" / "slurm"
LOCAL = REPO / "profiles" / "local"
# Rules that ask SLURM for a GPU (matching has jobs only where the config lists SIMCO or ComCO data;
# render_shard_gpu only where it says render.device GPU).
GPU_RULES = {"train_clip", "embed_images", "embed_texts", "labclip", "tor", "caption_tor", "matching", "attention",
             "object_areas", "caption_objects_llm", "generate_images", "prompt_order", "render_shard_gpu"}
# Some rules the tiny config runs: ones submitted to the cluster, and ones marked `localrule: True`.
SUBMITTED = {"render_shard", "embed_images", "embed_texts", "probes", "labclip", "binding", "tor"}
KNOWN_LOCAL = {"items", "table", "figure", "all"}

SUBMIT = """#!/usr/bin/env bash
# Stand-in for sbatch: logs the job script, runs it in the background, prints a job id.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
jobscript="${@: -1}"
job="$(mktemp -d "$here/jobs/job.XXXXXX")"
id="$(basename "$job")"
properties="$(sed -n 's/^# properties = //p' "$jobscript" | head -n 1)"
printf '%s\\t%s\\t%s\\n' "$id" "$jobscript" "$properties" >> "$here/submitted.tsv"
nohup bash -c 'bash "$1" > "$2/out" 2>&1; echo $? > "$2/rc.tmp"; mv "$2/rc.tmp" "$2/rc"' _ "$jobscript" "$job" \\
    < /dev/null > /dev/null 2>&1 &
echo "$id"
"""
STATUS = """#!/usr/bin/env bash
# Stand-in for sacct: running until the job wrote its exit code, then success or failed.
job="$(cd "$(dirname "$0")" && pwd)/jobs/$1"
if [ ! -d "$job" ]; then echo failed
elif [ ! -f "$job/rc" ]; then echo running
elif [ "$(cat "$job/rc")" = 0 ]; then echo success
else echo failed
fi
"""


def declared_local_rules() -> set[str]:
    """Rules the workflow runs where Snakemake runs: marked `localrule: True`, or with nothing to run (`all`)."""
    local = set()
    for source in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]:
        rules = re.finditer(r"^(?:rule|checkpoint) (\w+):\n((?:[ \t].*\n|\n)*)", source.read_text(), re.MULTILINE)
        for match in rules:
            body = match.group(2)
            if re.search(r"^\s+localrule: True", body, re.MULTILINE) or not re.search(
                    r"^\s+(?:script|shell|run|notebook|wrapper):", body, re.MULTILINE):
                local.add(match.group(1))
    return local


def job_blocks(output: str) -> list[dict]:
    """Each job Snakemake announced: rule, whether it said `localrule`, threads, wildcards and resources."""
    jobs = []
    for match in re.finditer(r"^(local)?rule (\w+):\n((?:    .*\n)*)", output, re.MULTILINE):
        fields = dict(re.findall(r"^    (\w+): (.*)$", match.group(3), re.MULTILINE))
        resources = dict(item.split("=", 1) for item in fields.get("resources", "").split(", ") if "=" in item)
        jobs.append({"rule": match.group(2), "local": bool(match.group(1)),
                     "threads": int(fields.get("threads", 1)), "wildcards": fields.get("wildcards", ""),
                     "resources": resources})
    return jobs


def test_slurm_profile_sets_each_value_once():
    profile = yaml.safe_load((SLURM / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    defaults, per_rule = profile["default-resources"], profile["set-resources"]
    for key in ["slurm_account", "slurm_partition", "runtime", "mem_mb", "cpus_per_task"]:
        assert key in defaults, key
    assert defaults["cpus_per_task"] == "threads"
    # One GPU partition, written once (a YAML anchor) and reused by every GPU rule.
    assert (SLURM / "config.yaml").read_text().count("CHANGE-ME-gpu-partition") == 1
    gpu_partitions = {per_rule[rule]["slurm_partition"] for rule in GPU_RULES}
    assert len(gpu_partitions) == 1 and gpu_partitions != {defaults["slurm_partition"]}
    for rule in GPU_RULES:
        assert per_rule[rule].get("gpu") == 1 and "gres" not in per_rule[rule], rule
    for rule, resources in per_rule.items():
        if rule not in GPU_RULES:
            assert "gpu" not in resources and "gres" not in resources and "slurm_partition" not in resources, rule
    assert profile["set-threads"]["render_shard"] == 8
    assert per_rule["render_shard_gpu"]["slurm_partition"] == gpu_partitions.pop()
    assert KNOWN_LOCAL <= declared_local_rules()
    assert not set(per_rule) & declared_local_rules()


@pytest.fixture(scope="module")
def slurm_dry_run(tmp_path_factory):
    """The jobs a dry run with the SLURM profile plans for the tiny config, as Snakemake printed them."""
    workdir = tmp_path_factory.mktemp("slurm_dry_run")
    config = write_config(workdir, TINY)
    # A dry run caps threads at --cores (1 unless given); 64 lets every job show the size it would ask for.
    run = snakemake("-n", "--profile", SLURM, "--cores", 64, "--directory", workdir, "--configfile", config)
    assert run.returncode == 0, run.stderr[-3000:]
    output = run.stdout + run.stderr
    assert f"Using profiles {SLURM} and workflow specific profile" in output
    assert "profiles/default for setting default command line arguments" in output
    return job_blocks(output)


def test_slurm_profile_dry_run_plans_gpu_and_cpu_jobs(slurm_dry_run):
    jobs = slurm_dry_run
    profile = yaml.safe_load((SLURM / "config.yaml").read_text())
    account = profile["default-resources"]["slurm_account"]
    cpu_partition = profile["default-resources"]["slurm_partition"]
    gpu_partition = profile["set-resources"]["embed_images"]["slurm_partition"]

    planned = {job["rule"] for job in jobs}
    assert SUBMITTED | KNOWN_LOCAL <= planned, (SUBMITTED | KNOWN_LOCAL) - planned
    for job in jobs:
        resources, rule = job["resources"], job["rule"]
        assert resources["slurm_account"] == account, rule
        assert int(resources["runtime"]) > 0 and int(resources["mem_mb"]) > 0, rule
        assert int(resources["cpus_per_task"]) == job["threads"], rule
        if rule in GPU_RULES:
            assert resources.get("gpu") == "1" and resources["slurm_partition"] == gpu_partition, rule
        else:
            assert "gpu" not in resources and "gres" not in resources, rule
            assert resources["slurm_partition"] == cpu_partition, rule
    render = [job for job in jobs if job["rule"] == "render_shard"]
    assert sum("dataset=toy" in job["wildcards"] for job in render) == TINY["datasets"]["toy"]["shards"]
    assert all(job["threads"] == 8 and job["resources"]["cpus_per_task"] == "8" for job in render)
    assert {job["resources"]["mem_mb"] for job in jobs if job["rule"] == "embed_images"} == {"32000"}


class _Resources(dict):
    __getattr__ = dict.__getitem__


def test_gpu_renders_go_to_the_gpu_partition_without_editing_the_profile(tmp_path, slurm_dry_run):
    """With render.device GPU the render jobs are render_shard_gpu, which the SLURM profile submits to the GPU
    partition with one GPU; with the default CPU device they are render_shard, on the CPU partition."""
    profile = yaml.safe_load((SLURM / "config.yaml").read_text())
    gpu_partition = profile["set-resources"]["embed_images"]["slurm_partition"]
    config = write_config(tmp_path, {**TINY, "render": {**TINY["render"], "device": "GPU", "gpu_backend": "OPTIX"}})
    run = snakemake("-n", "--profile", SLURM, "--cores", 64, "--directory", tmp_path, "--configfile", config)
    assert run.returncode == 0, run.stderr[-3000:]
    jobs = job_blocks(run.stdout + run.stderr)
    render = [job for job in jobs if job["rule"].startswith("render_shard")]
    assert {job["rule"] for job in render} == {"render_shard_gpu"}
    assert len(render) == sum(job["rule"] == "render_shard" for job in slurm_dry_run) > 0  # the CPU run's shards
    for job in render:
        assert job["resources"]["gpu"] == "1" and job["resources"]["slurm_partition"] == gpu_partition, job


def test_slurm_plugin_turns_the_planned_resources_into_sbatch_options(slurm_dry_run):
    """The sbatch line the installed SLURM plugin builds from each planned job's resources (partition and
    account are checked against the cluster at submission, so they are passed in as the plugin would)."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    def sbatch(job):
        resources = _Resources({k: int(v) if v.isdigit() else v for k, v in job["resources"].items()})
        params = {"run_uuid": "test", "slurm_logfile": "log", "comment_str": job["rule"], "workdir": ".",
                  "account": f"-A {resources.slurm_account}", "partition": f"-p {resources.slurm_partition}"}
        fake = SimpleNamespace(resources=resources, threads=job["threads"])
        return (get_submit_command(fake, params) + set_gres_string(fake)).split()  # as the plugin's run_job does

    by_rule = {job["rule"]: sbatch(job) for job in slurm_dry_run}  # the last job of each rule
    embed = by_rule["embed_images"]
    assert "--gpus=1" in embed and "--cpus-per-task=8" in embed
    assert embed[embed.index("--mem") + 1] == "32000" and embed[embed.index("-t") + 1] == "120"
    assert embed[embed.index("-p") + 1] == "CHANGE-ME-gpu-partition"
    render = by_rule["render_shard"]
    assert not any(option.startswith(("--gpus", "--gres")) for option in render)
    assert "--cpus-per-task=8" in render and render[render.index("-p") + 1] == "CHANGE-ME-cpu-partition"
    for rule in GPU_RULES & set(by_rule):
        assert "--gpus=1" in by_rule[rule], rule


def test_local_profile_dry_run(tmp_path):
    config = write_config(tmp_path, TINY)
    run = snakemake("-n", "--profile", LOCAL, "--directory", tmp_path, "--configfile", config)
    assert run.returncode == 0, run.stderr[-3000:]
    jobs = job_blocks(run.stdout + run.stderr)
    assert SUBMITTED | KNOWN_LOCAL <= {job["rule"] for job in jobs}
    assert not any("gpu" in job["resources"] or "slurm_partition" in job["resources"] for job in jobs)
    # profiles/default is loaded into every run, cluster ones too: only settings right for every way of running
    assert set(yaml.safe_load((REPO / "profiles/default/config.yaml").read_text())) == {
        "rerun-triggers", "show-failed-logs", "rerun-incomplete"}


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cluster")
    # The CLEVR-style dataset only, with TOR over its three shapes as well: the submission path is the point
    # here, and test_workflow runs the rest.
    toy = {**TINY["datasets"]["toy"], "analyses": ["probes", "labclip", "binding", "tor"]}
    config = write_config(workdir, {**TINY, "datasets": {"toy": toy}})
    cluster = workdir / "cluster"
    (cluster / "jobs").mkdir(parents=True)
    (cluster / "submitted.tsv").touch()
    for name, text in {"submit.sh": SUBMIT, "status.sh": STATUS}.items():
        (cluster / name).write_text(text)
        (cluster / name).chmod(0o755)
    run = snakemake(
        "--profile", SLURM, "--executor", "cluster-generic",
        "--cluster-generic-submit-cmd", shlex.quote(str(cluster / "submit.sh")),
        "--cluster-generic-status-cmd", shlex.quote(str(cluster / "status.sh")),
        # Two jobs of two threads at a time suit a 2-core machine; no retries, so each job is submitted once.
        "--jobs", 2, "--local-cores", 1, "--max-threads", 2, "--retries", 0, "--latency-wait", 5,
        "--seconds-between-status-checks", 2,
        "--directory", workdir, "--configfile", config,
    )
    lines = (cluster / "submitted.tsv").read_text().splitlines()
    submitted = [dict(zip(["id", "jobscript", "properties"], line.split("\t"))) for line in lines]
    return workdir, run, submitted


def test_cluster_run_builds_the_outputs(cluster_run):
    workdir, run, _ = cluster_run
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    results = workdir / "results"
    for path in ["toy/items.parquet", "toy/embeddings/rand/images.parquet", "toy/embeddings/rand/texts.parquet",
                 "toy/binding/rand/binding.parquet", "paper_a/tables/binding.csv", "paper_a/tables/probes.csv",
                 "paper_a/figures/binding_accuracy.png", "toy/tor/rand/tor.parquet", "paper_b/tables/tor.csv",
                 "paper_b/figures/tor_position_bias.pdf"]:
        assert (results / path).stat().st_size > 0, path
    assert len(list((results / "toy/images").rglob("*.png"))) == 40  # 20 images, each with its object masks


def test_cluster_run_submits_every_non_local_job_through_the_submit_command(cluster_run):
    workdir, run, submitted = cluster_run
    output = run.stdout + run.stderr
    jobs = job_blocks(output)
    announced_remote = Counter(job["rule"] for job in jobs if not job["local"])
    announced_local = {job["rule"] for job in jobs if job["local"]}
    properties = [json.loads(job["properties"]) for job in submitted]

    assert len(submitted) == sum(announced_remote.values()) > 0
    assert Counter(p["rule"] for p in properties) == announced_remote
    assert SUBMITTED <= set(announced_remote), SUBMITTED - set(announced_remote)
    # Snakemake said `localrule` exactly for the rules the workflow marks local, and submitted none of them.
    assert KNOWN_LOCAL <= announced_local
    assert announced_local == {job["rule"] for job in jobs} & declared_local_rules()
    assert not announced_local & set(announced_remote)
    assert not any(p["local"] for p in properties)
    # Snakemake tracked each job by the id the submit command printed, and every job exited 0.
    for job in submitted:
        assert f"with external jobid '{job['id']}'" in output
        assert (workdir / "cluster/jobs" / job["id"] / "rc").read_text().strip() == "0", job["id"]


def test_cluster_run_passes_the_profile_resources_to_each_job(cluster_run):
    _, _, submitted = cluster_run
    profile = yaml.safe_load((SLURM / "config.yaml").read_text())
    assert submitted
    for job in submitted:
        properties = json.loads(job["properties"])
        rule, resources = properties["rule"], properties["resources"]
        assert resources["slurm_account"] == profile["default-resources"]["slurm_account"], rule
        assert resources["cpus_per_task"] == properties["threads"], rule
        if rule in GPU_RULES:
            assert resources["gpu"] == 1, rule
            assert resources["slurm_partition"] == profile["set-resources"]["embed_images"]["slurm_partition"], rule
        else:
            assert "gpu" not in resources, rule
            assert resources["slurm_partition"] == profile["default-resources"]["slurm_partition"], rule
        expected = profile["set-resources"].get(rule, {})
        for key in ["runtime", "mem_mb"]:
            assert resources[key] == expected.get(key, profile["default-resources"][key]), (rule, key)
