# Renders: one bpy process per shard of a rendered dataset's items.
# Not marked `cache: True` for between-workflow caching: Snakemake (9.x) refuses that on a rule with a
# benchmark: directive, and every rule here keeps its benchmark. Reruns within a workflow are already
# limited to what a changed input, param or script invalidates (see the tests in test_workflow.py).


rule render_shard:
    input:
        item_table=ITEMS,
    output:
        images=directory("results/{dataset}/images/shard-{shard}"),
        manifest="results/{dataset}/images/shard-{shard}.manifest.json",  # written last (render/shard.py, manifest_of)
    params:
        render=config["render"],
    threads: 8
    log:
        "results/logs/render_shard/{dataset}/shard-{shard}.log",
    benchmark:
        "results/benchmarks/render_shard/{dataset}/shard-{shard}.tsv"
    conda:
        "../envs/render.yaml"
    script:
        "../workflow_scripts/render/shard.py"


# The same rule under a second name, chosen when render.device is GPU, so that a cluster profile can send GPU
# renders to GPU nodes by the rule's name (profiles/slurm does): a profile cannot read the config.
use rule render_shard as render_shard_gpu


if config["render"]["device"] == "GPU":

    ruleorder: render_shard_gpu > render_shard

else:

    ruleorder: render_shard > render_shard_gpu
