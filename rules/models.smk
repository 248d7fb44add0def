# Models: weights fetched where there is internet, then CLIP image and text embeddings of every dataset's items.
#
# prefetch_weights is a localrule, so on a cluster it runs on the login node, and the compute nodes then read the
# Hugging Face cache (HF_HOME) with the hub offline. `snakemake prefetch --cores 1` fetches and verifies every
# configured model's weights ahead of a run.
#
# A model's prefetch record. Every rule that loads a model's weights takes it as input (`weights=WEIGHTS_RECORD`):
# the rule waits for the prefetch and learns from the record that it may read the cache offline. Not ancient():
# Snakemake skips its own checks of the jobs below one it reruns and plans them only through non-ancient inputs,
# so with an ancient record an edit of models/loading.py reran the prefetch alone and left the embeddings, which
# import it too, to the next run. A rerun prefetch therefore reruns the jobs that read its record.
WEIGHTS_RECORD = "results/weights/{model}.json"


# A CLIP trained by this workflow (config clip_training), from scratch or fine-tuned from a configured model
# (init): every checkpoint of a run, each an open_clip local-dir folder. A model entry with `trained: <run>` embeds with one of them; its rules take the run's folder
# as input, so a retrained CLIP re-embeds.
rule train_clip:
    input:
        unpack(training_inputs),
    output:
        directory(TRAINING_DIR),
    params:
        training=lambda wc: run_settings(config, wc.run),
        init_model=initial_model,
    threads: lambda wc: config["clip_training"][wc.run]["threads"]
    log:
        "results/logs/train_clip/{run}.log",
    benchmark:
        "results/benchmarks/train_clip/{run}.tsv"
    conda:
        "../envs/embed.yaml"
    script:
        "../workflow_scripts/models/training.py"


rule prefetch_weights:
    input:
        trained_input,
    output:
        WEIGHTS_RECORD,
    params:
        model=lambda wc: MODELS[wc.model],
        seed=config["seed"],
    log:
        "results/logs/prefetch_weights/{model}.log",
    benchmark:
        "results/benchmarks/prefetch_weights/{model}.tsv"
    localrule: True
    conda:
        "../envs/embed.yaml"
    script:
        "../workflow_scripts/models/prefetch.py"


# The transformers models of the caption-order statistics (LLM, detector, segmenter), fetched and verified like
# CLIP's weights; their rules take the record as input (not ancient, as above) and load with the hub offline.
rule prefetch_hf_model:
    output:
        HF_WEIGHTS_RECORD,
    params:
        name=lambda wc: HF_MODELS[wc.hf_model]["name"],
        role=lambda wc: HF_MODELS[wc.hf_model]["role"],
    wildcard_constraints:
        hf_model=one_of(HF_MODELS),
    log:
        "results/logs/prefetch_hf_model/{hf_model}.log",
    benchmark:
        "results/benchmarks/prefetch_hf_model/{hf_model}.tsv"
    localrule: True
    conda:
        "../envs/caption_models.yaml"
    script:
        "../workflow_scripts/models/prefetch_hf.py"


rule prefetch:
    input:
        expand(WEIGHTS_RECORD, model=MODELS),
        expand(HF_WEIGHTS_RECORD, hf_model=HF_MODELS),
    localrule: True


# Not marked `cache: True`: see rules/render.smk (a cached rule may not have a benchmark: directive).
rule embed_images:
    input:
        item_table=ITEMS,
        shards=shard_manifests,
        weights=WEIGHTS_RECORD,
        trained=trained_input,
    output:
        EMBEDDINGS["images"],
    params:
        kind="images",
        model=lambda wc: MODELS[wc.model],
        embedding=EMBEDDING,
        seed=config["seed"],
    threads: 4
    log:
        "results/logs/embed_images/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/embed_images/{dataset}/{model}.tsv"
    conda:
        "../envs/embed.yaml"
    script:
        "../workflow_scripts/models/embed.py"


rule embed_texts:
    input:
        item_table=ITEMS,
        weights=WEIGHTS_RECORD,
        trained=trained_input,
    output:
        EMBEDDINGS["texts"],
    params:
        kind="texts",
        model=lambda wc: MODELS[wc.model],
        embedding=EMBEDDING,
        seed=config["seed"],
    threads: 4
    log:
        "results/logs/embed_texts/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/embed_texts/{dataset}/{model}.tsv"
    conda:
        "../envs/embed.yaml"
    script:
        "../workflow_scripts/models/embed.py"


# Paper B's prompt-order experiment: images from a text-to-image model (diffusers) for prompts that name objects of a
# dataset's vocabulary in every order (a GPU job on a cluster: profiles/slurm).
rule generate_images:
    input:
        item_table=ITEMS,
        model_record=hf_record(TEXT_TO_IMAGE["model"]),
    output:
        images=directory("results/{dataset}/prompt_order/images"),
        table="results/{dataset}/prompt_order/images.parquet",
    params:
        text_to_image=TEXT_TO_IMAGE,
        seed=config["seed"],
    wildcard_constraints:
        dataset=one_of(datasets_for("prompt_order")),
    threads: 4
    log:
        "results/logs/generate_images/{dataset}.log",
    benchmark:
        "results/benchmarks/generate_images/{dataset}.tsv"
    conda:
        "../envs/caption_models.yaml"
    script:
        "../workflow_scripts/models/text_to_image.py"
