# Reproduces "CLIP Behaves like a Bag-of-Words Model Cross-modally but not Uni-modally" (arXiv 2502.03566)
# and "CLIP Under the Microscope" (arXiv 2502.19842). The chain, one rules/*.smk per stage: datasets (item tables)
# -> render (Blender) -> models (CLIP embeddings) -> analyses -> summary (tables, figures).
from snakemake.utils import min_version

min_version("9.0")


report: "report/workflow.rst"


# A config given with --configfile replaces config.yaml rather than being merged into it, so that a
# user's datasets and models are exactly the ones they list.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/datasets.smk"
include: "rules/render.smk"
include: "rules/models.smk"
include: "rules/analyses.smk"
include: "rules/summary.smk"


# Reruns follow the content of the code, not its timestamps (README, "When rules rerun").
follow_the_code()


rule all:
    default_target: True
    input:
        all_targets(),
