import re
import sys

from snakemake.exceptions import WorkflowError

sys.path.insert(0, workflow.basedir)

from workflow_scripts.config_check import ConfigError, validate_config
from workflow_scripts.paths import shard_dir

try:
    validate_config(config)
except ConfigError as error:
    raise WorkflowError(str(error)) from None

DATASETS = sorted(config["datasets"])
MODELS = {model["id"]: model for model in config["models"]}
PAPER_A_FIGURES = [
    "probe_accuracy",
    "probes_vs_objects",
    "binding_accuracy",
    "caption_cosines",
    "modality_gap",
]
PAPER_B_FIGURES = ["tor_position_bias"]


wildcard_constraints:
    dataset="|".join(DATASETS),
    model="|".join(map(re.escape, MODELS)),
    shard=r"\d{3}",
    mode="SB|HNB",


def shard_dirs(wildcards):
    """Every render shard folder of a dataset."""
    return [
        f"results/{wildcards.dataset}/{shard_dir(shard)}"
        for shard in range(config["datasets"][wildcards.dataset]["shards"])
    ]


def all_targets():
    return [
        *expand(
            "results/{dataset}/embeddings/{model}/{kind}.parquet",
            dataset=DATASETS,
            model=MODELS,
            kind=["images", "texts"],
        ),
        *expand(
            "results/paper_a/tables/{table}.{ext}",
            table=["probes", "binding"],
            ext=["csv", "md"],
        ),
        *expand(
            "results/paper_a/figures/{figure}.{ext}",
            figure=PAPER_A_FIGURES,
            ext=["png", "pdf"],
        ),
        *expand("results/paper_b/tables/tor.{ext}", ext=["csv", "md"]),
        *expand(
            "results/paper_b/figures/{figure}.{ext}",
            figure=PAPER_B_FIGURES,
            ext=["png", "pdf"],
        ),
    ]
