rule scene_specs:
    output:
        scenes="results/{dataset}/scenes.parquet",
    params:
        spec=lambda wc: config["datasets"][wc.dataset],
        resolution=config["render"]["resolution"],
        seed=config["seed"],
    log:
        "results/logs/scene_specs/{dataset}.log",
    benchmark:
        "results/benchmarks/scene_specs/{dataset}.tsv"
    localrule: True
    conda:
        "../envs/scenes.yaml"
    script:
        "../workflow_scripts/scenes.py"
