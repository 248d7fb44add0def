# Reproduces "CLIP Behaves like a Bag-of-Words Model Cross-modally but not Uni-modally" (arXiv 2502.03566)
# and "CLIP Under the Microscope" (arXiv 2502.19842): scene specs -> Blender renders -> CLIP embeddings.
from snakemake.utils import min_version

min_version("9.0")


report: "report/workflow.rst"


# A config given with --configfile replaces config.yaml rather than being merged into it, so that a
# user's datasets and models are exactly the ones they list.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/weights.smk"
include: "rules/scenes.smk"
include: "rules/render.smk"
include: "rules/embed.smk"
include: "rules/paper_a.smk"
include: "rules/paper_b.smk"


rule all:
    default_target: True
    input:
        all_targets(),
