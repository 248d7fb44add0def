# Analyses: one rule per analysis (workflow_scripts/analyses/<name>.py), each on the datasets it applies to
# (datasets_for), writing to results/<dataset>/<analysis>/<model id>/.


rule probes:
    input:
        item_table=ITEMS,
        **EMBEDDINGS,
    output:
        probes=f"{analysis_dir('probes')}/probes.parquet",
        weights=f"{analysis_dir('probes')}/probe_weights.npz",
    params:
        probes=config["paper_a"]["probes"],
        kind=lambda wc: DATASETS[wc.dataset].kind.name,
        paper_setting=lambda wc: DATASETS[wc.dataset].paper_setting,
        seed=config["seed"],
    wildcard_constraints:
        dataset=one_of(datasets_for("probes")),
    threads: 1  # the probe fits run on one thread (probes.single_threaded)
    log:
        "results/logs/probes/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/probes/{dataset}/{model}.tsv"
    conda:
        "../envs/embed.yaml"
    script:
        "../workflow_scripts/analyses/probes.py"


rule slot_classification:
    input:
        item_table=ITEMS,
        **EMBEDDINGS,
    output:
        slots=f"{analysis_dir('slot_classification')}/slot_classification.parquet",
    params:
        classifier=config["paper_a"]["probes"]["sklearn"],  # the probes' fast path and its settings
        seed=config["seed"],
    wildcard_constraints:
        dataset=one_of(datasets_for("slot_classification")),
    threads: 1  # the fits run on one thread (probes.single_threaded)
    log:
        "results/logs/slot_classification/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/slot_classification/{dataset}/{model}.tsv"
    conda:
        "../envs/embed.yaml"
    script:
        "../workflow_scripts/analyses/slot_classification.py"


rule attention:
    input:
        item_table=ITEMS,
        shards=shard_manifests,
        weights=WEIGHTS_RECORD,
        trained=trained_input,
    output:
        attention=f"{analysis_dir('attention')}/attention.parquet",
    params:
        attention=config["paper_b"]["attention"],
        model=lambda wc: MODELS[wc.model],
        embedding=EMBEDDING,
        seed=config["seed"],
    wildcard_constraints:
        dataset=one_of(datasets_for("attention")),
    threads: 4
    log:
        "results/logs/attention/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/attention/{dataset}/{model}.tsv"
    conda:
        "../envs/embed.yaml"
    script:
        "../workflow_scripts/analyses/attention.py"


rule labclip:
    input:
        item_table=ITEMS,
        **EMBEDDINGS,
    output:
        weights=f"{analysis_dir('labclip')}/{{mode}}.safetensors",  # the last epoch's map (the authors'; early_stopped with patience)
        best_val=f"{analysis_dir('labclip')}/{{mode}}_best_val.safetensors",  # the best validation epoch's
        history=f"{analysis_dir('labclip')}/{{mode}}_history.parquet",
    params:
        labclip=labclip_settings,
        seed=config["seed"],
    wildcard_constraints:
        dataset=one_of(datasets_for("labclip")),
    threads: 2
    log:
        "results/logs/labclip/{dataset}/{model}_{mode}.log",
    benchmark:
        "results/benchmarks/labclip/{dataset}/{model}_{mode}.tsv"
    conda:
        "../envs/embed.yaml"
    script:
        "../workflow_scripts/analyses/labclip.py"


rule binding:
    input:
        item_table=ITEMS,
        **EMBEDDINGS,
        probe_weights=rules.probes.output.weights,
        labclip=expand([rules.labclip.output.weights, rules.labclip.output.best_val],
                       mode=config["paper_a"]["labclip"]["modes"], allow_missing=True),
        published=list(config["paper_a"]["published_maps"].values()),
        # the model embeds the authors' Recall@K candidate captions that no item has (binding.candidate_embeddings)
        weights=WEIGHTS_RECORD,
        trained=trained_input,
    output:
        binding=f"{analysis_dir('binding')}/binding.parquet",
        cosines=f"{analysis_dir('binding')}/caption_cosines.parquet",
    params:
        probes=config["paper_a"]["probes"],
        probe_cosine=config["paper_a"]["probe_cosine"],
        published_maps=config["paper_a"]["published_maps"],
        kind=lambda wc: DATASETS[wc.dataset].kind.name,
        paper_setting=lambda wc: DATASETS[wc.dataset].paper_setting,
        model=lambda wc: MODELS[wc.model],
        embedding=EMBEDDING,
        seed=config["seed"],
    wildcard_constraints:
        dataset=one_of(datasets_for("binding")),
    threads: 1  # the probe fits run on one thread (probes.single_threaded)
    log:
        "results/logs/binding/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/binding/{dataset}/{model}.tsv"
    conda:
        "../envs/embed.yaml"
    script:
        "../workflow_scripts/analyses/binding.py"


rule tor:
    input:
        item_table=ITEMS,
        weights=WEIGHTS_RECORD,
        trained=trained_input,
    output:
        tor=f"{analysis_dir('tor')}/tor.parquet",
    params:
        tor=config["paper_b"]["tor"],
        model=lambda wc: MODELS[wc.model],
        embedding=EMBEDDING,
        seed=config["seed"],
    wildcard_constraints:
        dataset=one_of(datasets_for("tor")),
    threads: 4
    log:
        "results/logs/tor/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/tor/{dataset}/{model}.tsv"
    conda:
        "../envs/embed.yaml"
    script:
        "../workflow_scripts/analyses/tor.py"


rule ior:
    input:
        item_table=ITEMS,
        images=EMBEDDINGS["images"],
        **REFERENCES,
    output:
        ior=f"{analysis_dir('ior')}/ior.parquet",
    wildcard_constraints:
        dataset=one_of(datasets_for("ior")),
    log:
        "results/logs/ior/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/ior/{dataset}/{model}.tsv"
    conda:
        "../envs/embed.yaml"
    script:
        "../workflow_scripts/analyses/ior.py"


rule compositional:
    input:
        item_table=ITEMS,
        **EMBEDDINGS,
        published=list(config["paper_a"]["published_maps"].values()),
        transferred=lambda wc: list(transferred_maps(wc)),
    output:
        compositional=f"{analysis_dir('compositional')}/compositional.parquet",
    params:
        published_maps=config["paper_a"]["published_maps"],
        transferred=transferred_maps,
        scoring=lambda wc: DATASETS[wc.dataset].scoring,
        seed=config["seed"],
    wildcard_constraints:
        dataset=one_of(datasets_for("compositional")),
    log:
        "results/logs/compositional/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/compositional/{dataset}/{model}.tsv"
    conda:
        "../envs/embed.yaml"
    script:
        "../workflow_scripts/analyses/compositional.py"


rule recall:
    input:
        item_table=ITEMS,
        **EMBEDDINGS,
        labclip=lambda wc: (expand([rules.labclip.output.weights, rules.labclip.output.best_val], dataset=wc.dataset,
                                   model=wc.model, mode=config["paper_a"]["labclip"]["modes"])
                            if "labclip" in DATASETS[wc.dataset].analyses else []),
        published=list(config["paper_a"]["published_maps"].values()),
    output:
        recall=f"{analysis_dir('recall')}/recall.parquet",
    params:
        published_maps=config["paper_a"]["published_maps"],
        seed=config["seed"],
    wildcard_constraints:
        dataset=one_of(datasets_for("recall")),
    log:
        "results/logs/recall/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/recall/{dataset}/{model}.tsv"
    conda:
        "../envs/embed.yaml"
    script:
        "../workflow_scripts/analyses/recall.py"


rule matching:
    input:
        item_table=ITEMS,
        images=EMBEDDINGS["images"],
        weights=WEIGHTS_RECORD,
        trained=trained_input,
    output:
        matching=f"{analysis_dir('matching')}/matching.parquet",
    params:
        aggregations=config["paper_b"]["tor"]["aggregations"],
        model=lambda wc: MODELS[wc.model],
        embedding=EMBEDDING,
        seed=config["seed"],
    wildcard_constraints:
        dataset=one_of(datasets_for("matching")),
    threads: 4
    log:
        "results/logs/matching/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/matching/{dataset}/{model}.tsv"
    conda:
        "../envs/embed.yaml"
    script:
        "../workflow_scripts/analyses/matching.py"


# Paper B's caption-order statistics, once per dataset (no CLIP): the objects each caption names (per method), their
# areas in the images (a detector, where the dataset has images), and the statistic.
rule caption_objects:
    input:
        item_table=ITEMS,
    output:
        objects="results/{dataset}/mention_order/objects_{method}.parquet",
    wildcard_constraints:
        dataset=one_of(datasets_for("mention_order") + datasets_for("caption_tor")),
        method="lexicon|noun_phrases",
    threads: 1
    log:
        "results/logs/caption_objects/{dataset}/{method}.log",
    benchmark:
        "results/benchmarks/caption_objects/{dataset}/{method}.tsv"
    conda:
        "../envs/caption_models.yaml"
    script:
        "../workflow_scripts/analyses/caption_objects.py"


# The same with the object-listing LLM (a GPU job on a cluster: profiles/slurm).
rule caption_objects_llm:
    input:
        item_table=ITEMS,
        llm=hf_record(MENTION_ORDER["llm"]["model"]),
    output:
        objects="results/{dataset}/mention_order/objects_{method}.parquet",
    params:
        llm=MENTION_ORDER["llm"],
        device=MENTION_ORDER["device"],
        seed=config["seed"],
    wildcard_constraints:
        dataset=one_of(datasets_for("mention_order")),
        method="llm",
    threads: 2
    log:
        "results/logs/caption_objects/{dataset}/{method}.log",
    benchmark:
        "results/benchmarks/caption_objects/{dataset}/{method}.tsv"
    conda:
        "../envs/caption_models.yaml"
    script:
        "../workflow_scripts/analyses/caption_objects.py"


# TOR on a dataset's real captions, with the categories each names (caption_objects' lexicon).
rule caption_tor:
    input:
        item_table=ITEMS,
        objects=expand(rules.caption_objects.output.objects, method="lexicon", allow_missing=True)[0],
        weights=WEIGHTS_RECORD,
        trained=trained_input,
    output:
        tor=f"{analysis_dir('caption_tor')}/caption_tor.parquet",
    params:
        caption_tor=config["paper_b"]["caption_tor"],
        model=lambda wc: MODELS[wc.model],
        embedding=EMBEDDING,
        seed=config["seed"],
    wildcard_constraints:
        dataset=one_of(datasets_for("caption_tor")),
    threads: 4
    log:
        "results/logs/caption_tor/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/caption_tor/{dataset}/{model}.tsv"
    conda:
        "../envs/embed.yaml"
    script:
        "../workflow_scripts/analyses/caption_tor.py"


rule object_areas:
    input:
        item_table=ITEMS,
        objects=rules.caption_objects.output.objects,
        detector=hf_record(MENTION_ORDER["detector"]["model"]),
        segmenter=hf_record(MENTION_ORDER["segmenter"]),
    output:
        areas="results/{dataset}/mention_order/areas_{method}.parquet",
    params:
        detector=MENTION_ORDER["detector"],
        segmenter=MENTION_ORDER["segmenter"],
        device=MENTION_ORDER["device"],
    wildcard_constraints:
        dataset=one_of(name for name in datasets_for("mention_order") if measures_areas(name)),
    threads: 2
    log:
        "results/logs/object_areas/{dataset}/{method}.log",
    benchmark:
        "results/benchmarks/object_areas/{dataset}/{method}.tsv"
    conda:
        "../envs/caption_models.yaml"
    script:
        "../workflow_scripts/analyses/object_areas.py"


rule mention_order:
    input:
        item_table=ITEMS,
        objects=expand(rules.caption_objects.output.objects, method=MENTION_ORDER["methods"], allow_missing=True),
        areas=lambda wc: (expand(rules.object_areas.output.areas, dataset=wc.dataset, method=MENTION_ORDER["methods"])
                          if measures_areas(wc.dataset) else []),
    output:
        mention_order="results/{dataset}/mention_order/mention_order.parquet",
        objects_per_caption="results/{dataset}/mention_order/objects_per_caption.parquet",
    params:
        # what the statistic itself uses: a changed detector or LLM setting reaches it through its inputs
        settings={key: MENTION_ORDER[key] for key in ("methods", "max_objects", "bootstrap")},
        seed=config["seed"],
    wildcard_constraints:
        dataset=one_of(datasets_for("mention_order")),
    log:
        "results/logs/mention_order/{dataset}.log",
    benchmark:
        "results/benchmarks/mention_order/{dataset}.tsv"
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow_scripts/analyses/mention_order.py"


# Which named object each generated image shows most prominently (the detector of the caption-order statistic, and
# CLIP zero-shot with one configured model).
rule prompt_order:
    input:
        images_table=rules.generate_images.output.table,
        images=rules.generate_images.output.images,
        detector=hf_record(MENTION_ORDER["detector"]["model"] if PROMPT_ORDER_DETECTOR else None),
        clip_weights=(WEIGHTS_RECORD.format(model=prompt_order_clip()["id"])
                      if "clip" in TEXT_TO_IMAGE["measures"] else []),
        trained=trained_folders(prompt_order_clip()["id"]) if "clip" in TEXT_TO_IMAGE["measures"] else [],
    output:
        rows="results/{dataset}/prompt_order/prompt_order.parquet",  # per image and measure
        summary="results/{dataset}/prompt_order/summary.parquet",  # per measure and object count
    params:
        measures=TEXT_TO_IMAGE["measures"],
        detector=MENTION_ORDER["detector"],
        clip=prompt_order_clip(),
        device=TEXT_TO_IMAGE["device"],
        seed=config["seed"],
    wildcard_constraints:
        dataset=one_of(datasets_for("prompt_order")),
    threads: 2
    log:
        "results/logs/prompt_order/{dataset}.log",
    benchmark:
        "results/benchmarks/prompt_order/{dataset}.tsv"
    conda:
        "../envs/caption_models.yaml"
    script:
        "../workflow_scripts/analyses/prompt_order.py"
