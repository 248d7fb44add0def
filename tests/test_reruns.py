"""Reruns follow the code's content (README, "When rules rerun"): an edit of a module a rule's script imports
plans that rule again; a touch of any file plans nothing."""
import shutil
from pathlib import Path

import pytest

from conftest import REPO, SNAKEMAKE, write_config
from workflow_scripts.common.sources import code_digest, imported_files

WORKFLOW_FILES = ["Snakefile", "rules", "workflow_scripts", "envs", "schemas", "profiles", "report", "config.yaml"]
CONFIG = {"datasets": {"toy": {"objects_per_scene": [2], "scenes_per_count": 12}},
          "models": [{"id": "rand", "name": "ViT-B-32", "pretrained": "none"}]}


def project_files(script: str) -> set[str]:
    return {str(path.relative_to(REPO)) for path in imported_files(REPO / script, REPO)}


@pytest.mark.parametrize("script, module", [
    ("workflow_scripts/analyses/tor.py", "workflow_scripts/models/embed.py"),
    ("workflow_scripts/analyses/binding.py", "workflow_scripts/analyses/probes.py"),
    ("workflow_scripts/render/shard.py", "workflow_scripts/common/camera.py"),
    ("workflow_scripts/summary/tables.py", "workflow_scripts/common/files.py"),
    ("workflow_scripts/datasets/build.py", "workflow_scripts/datasets/splits.py"),
])
def test_a_scripts_code_holds_the_modules_it_imports_transitively(script, module):
    files = project_files(script)
    assert script in files and module in files
    assert "workflow_scripts/__init__.py" in files  # a package's __init__ runs on import too


def test_the_code_of_the_item_builder_leaves_out_what_it_does_not_import():
    files = project_files("workflow_scripts/datasets/build.py")
    assert "workflow_scripts/analyses/probes.py" not in files and "workflow_scripts/render/blender.py" not in files


def test_digest_follows_content_not_timestamps(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helper.py").write_text("VALUE = 1\n")
    (package / "unused.py").write_text("")
    script = tmp_path / "script.py"
    script.write_text("from pkg.helper import VALUE\nfrom . import nothing_here\n")
    before = code_digest(script, tmp_path)
    for path in (script, package / "helper.py"):
        path.touch()
    assert code_digest(script, tmp_path) == before
    (package / "unused.py").write_text("X = 2\n")
    assert code_digest(script, tmp_path) == before
    (package / "helper.py").write_text("VALUE = 2\n")
    assert code_digest(script, tmp_path) != before
    kind = tmp_path / "my_kind.py"
    kind.write_text("KIND = None\n")
    assert code_digest(script, tmp_path, [kind]) != code_digest(script, tmp_path)


def planned(snakefile: Path, workdir: Path, config: Path, *args, target="results/toy/items.parquet") -> str:
    import subprocess

    run = subprocess.run([SNAKEMAKE, "--snakefile", str(snakefile), "--directory", str(workdir), "--configfile",
                          str(config), "--cores", "1", *args, target],
                         cwd=workdir, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout + run.stderr


def built(tmp_path, target: str):
    """A copy of the workflow (its code may be edited) that has built `target`: (Snakefile, workdir, config)."""
    repo, workdir = tmp_path / "repo", tmp_path / "work"
    repo.mkdir(), workdir.mkdir()
    for name in WORKFLOW_FILES:
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy)(REPO / name, repo / name)
    config = write_config(workdir, CONFIG)
    planned(repo / "Snakefile", workdir, config, target=target)
    assert (workdir / target).exists()
    return repo / "Snakefile", workdir, config


@pytest.fixture
def built_items(tmp_path):
    return built(tmp_path, "results/toy/items.parquet")


def test_touching_every_file_of_the_workflow_plans_no_rerun(built_items):
    snakefile, workdir, config = built_items
    for path in snakefile.parent.rglob("*"):
        path.touch()
    assert "Nothing to be done" in planned(snakefile, workdir, config, "-n")
    # the workflow profile holds beside a --profile too
    assert "Nothing to be done" in planned(snakefile, workdir, config, "-n", "--profile", REPO / "profiles/local")


def test_editing_an_imported_module_plans_the_rule_again_and_only_where_imported(built_items):
    snakefile, workdir, config = built_items
    with open(snakefile.parent / "workflow_scripts/analyses/probes.py", "a") as module:  # not imported by items
        module.write("\n# an edit\n")
    assert "Nothing to be done" in planned(snakefile, workdir, config, "-n")
    with open(snakefile.parent / "workflow_scripts/common/camera.py", "a") as module:  # imported through clevr.py
        module.write("\n# an edit\n")
    out = planned(snakefile, workdir, config, "-n")
    assert "rule items:" in out and "Params have changed" in out


def test_editing_the_model_loader_plans_the_prefetch_and_the_embeddings_in_one_run(tmp_path):
    """Both import models/loading.py. With the prefetch record as an ancient() input, Snakemake planned the
    prefetch alone and the embeddings only in the next run."""
    texts = "results/toy/embeddings/rand/texts.parquet"
    snakefile, workdir, config = built(tmp_path, texts)
    assert "Nothing to be done" in planned(snakefile, workdir, config, "-n", target=texts)
    with open(snakefile.parent / "workflow_scripts/models/loading.py", "a") as module:
        module.write("\n# an edit\n")
    out = planned(snakefile, workdir, config, "-n", target=texts)
    assert "rule prefetch_weights:" in out and "rule embed_texts:" in out, out[-3000:]


def test_a_shard_folder_made_by_hand_is_rendered_again(tmp_path):
    """A folder is not taken for a render: the rules that read the images wait for the shard's manifest, which
    only a finished render job writes."""
    snakefile, workdir, config = built(tmp_path, "results/toy/items.parquet")
    (workdir / "results/toy/images/shard-000").mkdir(parents=True)
    out = planned(snakefile, workdir, config, "-n", target="results/toy/embeddings/rand/images.parquet")
    assert "rule render_shard:" in out and "shard-000.manifest.json" in out, out[-3000:]
