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


rule labclip:
    input:
        item_table=ITEMS,
        **EMBEDDINGS,
    output:
        weights=f"{analysis_dir('labclip')}/{{mode}}.safetensors",  # the last epoch's map (the authors')
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
    output:
        binding=f"{analysis_dir('binding')}/binding.parquet",
        cosines=f"{analysis_dir('binding')}/caption_cosines.parquet",
    params:
        probes=config["paper_a"]["probes"],
        probe_cosine=config["paper_a"]["probe_cosine"],
        published_maps=config["paper_a"]["published_maps"],
        kind=lambda wc: DATASETS[wc.dataset].kind.name,
        paper_setting=lambda wc: DATASETS[wc.dataset].paper_setting,
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
        weights=ancient(WEIGHTS_RECORD),
        trained=trained_input,
    output:
        tor=f"{analysis_dir('tor')}/tor.parquet",
    params:
        tor=config["paper_b"]["tor"],
        model=lambda wc: MODELS[wc.model],
        embedding=config["embedding"],
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
        weights=ancient(WEIGHTS_RECORD),
        trained=trained_input,
    output:
        matching=f"{analysis_dir('matching')}/matching.parquet",
    params:
        aggregations=config["paper_b"]["tor"]["aggregations"],
        model=lambda wc: MODELS[wc.model],
        embedding=config["embedding"],
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
