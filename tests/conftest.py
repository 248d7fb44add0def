import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def imported_names(source: str) -> list[str]:
    """Every module name a Python source imports, anywhere in it (functions included); for `from a import b`
    both `a` and `a.b`, since b may be a module that the import runs."""
    import ast

    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return names


def schema_defaults() -> dict:
    """A minimal config with every default of the schemas filled in: the one place defaults are written."""
    from workflow_scripts.config import validate_config

    return validate_config({"datasets": {"d": {"objects_per_scene": [2], "scenes_per_count": 10}},
                            "models": [{"id": "m", "name": "ViT-B-32", "pretrained": "none"}]})


DEFAULTS = schema_defaults()
PROBES = DEFAULTS["paper_a"]["probes"]  # the authors' SGD settings and the scikit-learn C grid
LABCLIP = {key: DEFAULTS["paper_a"]["labclip"][key] for key in ("lr", "epochs", "batch_size")}
# The tiny config that tiny_run renders, embeds and analyses end to end (several minutes on two cores).
TINY = {
    "seed": 5,
    "datasets": {
        "toy": {"objects_per_scene": [2, 3], "scenes_per_count": 10, "shards": 2},
        "shapes": {"kind": "simco", "objects_per_scene": [2, 3], "scenes_per_count": 3,
                   "analyses": ["tor", "ior", "matching", "attention"]},
        # Its mesh folder is written by the tiny_run fixture; where it does not exist, the dataset is skipped.
        "objects": {"kind": "comco", "meshes": "meshes", "objects_per_scene": [2, 3], "scenes_per_count": 2},
        "coco_names": {"kind": "names", "names": "coco"},
    },
    "render": {"resolution": [64, 64], "samples": 4},
    "models": [{"id": "rand", "name": "ViT-B-32", "pretrained": "none"}],
    "embedding": {"device": "cpu", "precision": "fp32", "batch_size": 8, "num_workers": 0},
    "paper_a": {"probes": {"solver": "sklearn"}, "labclip": {"epochs": 3, "batch_size": 8, "device": "cpu"},
                "probe_cosine": {"resamples": 2}},
    "paper_b": {"tor": {"objects_per_caption": [2, 3], "captions_per_count": 20}},
}


def snakemake(*args, cwd=REPO):
    return subprocess.run(
        [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), *map(str, args)],
        cwd=cwd, capture_output=True, text=True,
    )


def write_config(folder: Path, config: dict) -> Path:
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def write_meshes(folder: Path) -> None:
    """Six ComCO categories as boxes of different proportions, in the three accepted formats."""
    from test_comco import BOXES, write_box  # imports bpy: only where meshes are written

    folder.mkdir()
    for name, (dims, suffix) in BOXES.items():
        write_box(folder / f"{name}{suffix}", dims)


def prepare_tiny(workdir: Path) -> Path:
    """The tiny run's inputs in `workdir`: ComCO meshes, two published LABCLIP maps (one fits no model) and
    the config naming them. Returns the config's path."""
    from workflow_scripts.analyses.labclip import LabClip, export_authors_weights

    write_meshes(workdir / "meshes")
    maps = {"identity": LabClip(512), "too_small": LabClip(4)}  # the second fits no model: skipped
    for name, model in maps.items():
        export_authors_weights(model, workdir / f"{name}.pt")
    published = {name: str(workdir / f"{name}.pt") for name in maps}
    return write_config(workdir, {**TINY, "paper_a": {**TINY["paper_a"], "published_maps": published}})


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The tiny config run end to end, once per test session: (workdir, config path). Tests may read the
    workdir and run dry runs or reports in it, but must not change its results."""
    workdir = tmp_path_factory.mktemp("tiny")
    config = prepare_tiny(workdir)
    run = snakemake("--cores", 2, "--directory", workdir, "--configfile", config)
    assert run.returncode == 0, run.stderr[-3000:]
    return workdir, config


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny matrices: threads gain nothing (on a shared 2-core machine they wait on each other), and one thread keeps
    the runs bitwise reproducible. Modules ask for it with `pytestmark = pytest.mark.usefixtures(...)`."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
