# Not marked `cache: True`: see rules/render.smk (a cached rule may not have a benchmark: directive).
rule embed_images:
    input:
        scenes="results/{dataset}/scenes.parquet",
        shards=shard_dirs,
        weights=ancient(WEIGHTS_RECORD),
    output:
        "results/{dataset}/embeddings/{model}/images.parquet",
    params:
        kind="images",
        model=lambda wc: MODELS[wc.model],
        embedding=config["embedding"],
        seed=config["seed"],
    threads: 4
    log:
        "results/logs/embed_images/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/embed_images/{dataset}/{model}.tsv"
    conda:
        "../envs/embed.yaml"
    script:
        "../workflow_scripts/embed.py"


rule embed_texts:
    input:
        scenes="results/{dataset}/scenes.parquet",
        weights=ancient(WEIGHTS_RECORD),
    output:
        "results/{dataset}/embeddings/{model}/texts.parquet",
    params:
        kind="texts",
        model=lambda wc: MODELS[wc.model],
        embedding=config["embedding"],
        seed=config["seed"],
    threads: 4
    log:
        "results/logs/embed_texts/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/embed_texts/{dataset}/{model}.tsv"
    conda:
        "../envs/embed.yaml"
    script:
        "../workflow_scripts/embed.py"
