rule render_shard:
    input:
        scenes="results/{dataset}/scenes.parquet",
    output:
        images=directory("results/{dataset}/images/shard-{shard}"),
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
        "../workflow_scripts/render.py"
