import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

sys.path.insert(0, workflow.basedir)

from workflow_scripts.comco import mesh_files
from workflow_scripts.config_check import ConfigError, validate_config
from workflow_scripts.paths import shard_dir

try:
    validate_config(config)
except ConfigError as error:
    raise WorkflowError(str(error)) from None

MODELS = {model["id"]: model for model in config["models"]}
CLEVR_DATASETS = []  # paper A's
PAPER_B_DATASETS = []  # SIMCO and ComCO, each with its "<name>-references" single-object renders
MESHES = {}  # ComCO dataset -> {category: mesh file}
for name, spec in sorted(config["datasets"].items()):
    if spec["kind"] == "clevr":
        CLEVR_DATASETS.append(name)
        continue
    if spec["kind"] == "comco":
        folder = Path(spec["meshes"]).expanduser()
        if not folder.is_dir():
            logger.warning(
                f"ComCO dataset {name!r} skipped: its mesh folder {folder} (datasets.{name}.meshes) does not "
                "exist, so none of its targets are requested. Put one .glb/.obj/.blend file per COCO category there."
            )
            continue
        try:
            MESHES[name] = mesh_files(folder, spec.get("categories"))
        except (OSError, ValueError) as error:
            raise WorkflowError(f"datasets.{name}.meshes: {error}") from None
        needed = max(spec["objects_per_scene"]) + 1  # distinct objects and a distractor
        if len(MESHES[name]) < needed:
            raise WorkflowError(
                f"datasets.{name}.meshes: {folder} has {len(MESHES[name])} categories "
                f"({', '.join(MESHES[name])}); scenes of {needed - 1} objects and a distractor need {needed}"
            )
    PAPER_B_DATASETS.append(name)
REFERENCES = {f"{name}-references": name for name in PAPER_B_DATASETS}
SCENE_SETS = CLEVR_DATASETS + PAPER_B_DATASETS + list(REFERENCES)  # everything rendered and embedded
PAPER_A_FIGURES = [
    "probe_accuracy",
    "probes_vs_objects",
    "binding_accuracy",
    "caption_cosines",
    "modality_gap",
]
PAPER_B_TABLES = ["tor"] + (["ior", "matching"] if PAPER_B_DATASETS else [])
PAPER_B_FIGURES = {"tor_position_bias": "tor", "ior_large_object": "ior", "matching_conditions": "matching"}


wildcard_constraints:
    dataset="|".join(map(re.escape, SCENE_SETS)),
    model="|".join(map(re.escape, MODELS)),
    shard=r"\d{3}",
    mode="SB|HNB",


def scene_spec(dataset: str) -> dict:
    """What scene_specs generates for a dataset: its config entry, or for "<name>-references" the single-object
    references of dataset <name>."""
    if dataset in REFERENCES:
        of = REFERENCES[dataset]
        return {"kind": "references", "of": of, "of_kind": config["datasets"][of]["kind"], "shards": 1}
    return config["datasets"][dataset]


def shard_dirs(wildcards):
    """Every render shard folder of a dataset."""
    return [
        f"results/{wildcards.dataset}/{shard_dir(shard)}"
        for shard in range(scene_spec(wildcards.dataset)["shards"])
    ]


def mesh_table(wildcards):
    """The measured meshes of a ComCO dataset (or of its references); nothing for other datasets."""
    dataset = REFERENCES.get(wildcards.dataset, wildcards.dataset)
    return [f"results/{dataset}/meshes.json"] if dataset in MESHES else []


def paper_b_results(wildcards):
    """The per-model (TOR) or per-dataset-and-model (IOR, matching) results a paper B table gathers."""
    if wildcards.table == "tor":
        return expand("results/paper_b/{model}/tor.parquet", model=MODELS)
    return expand(f"results/paper_b/{{dataset}}/{{model}}/{wildcards.table}.parquet",
                  dataset=PAPER_B_DATASETS, model=MODELS)


def all_targets():
    return [
        *expand(
            "results/{dataset}/embeddings/{model}/{kind}.parquet",
            dataset=CLEVR_DATASETS + PAPER_B_DATASETS,
            model=MODELS,
            kind=["images", "texts"],
        ),
        *(paper_a_targets() if CLEVR_DATASETS else []),
        *expand("results/paper_b/tables/{table}.{ext}", table=PAPER_B_TABLES, ext=["csv", "md"]),
        *expand(
            "results/paper_b/figures/{figure}.{ext}",
            figure=[f for f, table in PAPER_B_FIGURES.items() if table in PAPER_B_TABLES],
            ext=["png", "pdf"],
        ),
    ]


def paper_a_targets():
    return [
        *expand("results/paper_a/tables/{table}.{ext}", table=["probes", "binding"], ext=["csv", "md"]),
        *expand("results/paper_a/figures/{figure}.{ext}", figure=PAPER_A_FIGURES, ext=["png", "pdf"]),
    ]
