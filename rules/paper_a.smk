PAPER_A = "results/{dataset}/paper_a/{model}"
EMBEDDINGS = dict(
    scenes="results/{dataset}/scenes.parquet",
    images="results/{dataset}/embeddings/{model}/images.parquet",
    texts="results/{dataset}/embeddings/{model}/texts.parquet",
)


rule paper_a_probes:
    input:
        **EMBEDDINGS,
    wildcard_constraints:
        dataset="|".join(CLEVR_DATASETS),
    output:
        probes=f"{PAPER_A}/probes.parquet",
        weights=f"{PAPER_A}/probe_weights.npz",
    params:
        probes=config["paper_a"]["probes"],
        seed=config["seed"],
    threads: 2
    log:
        "results/logs/paper_a_probes/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/paper_a_probes/{dataset}/{model}.tsv"
    conda:
        "../envs/embed.yaml"
    script:
        "../workflow_scripts/paper_a.py"


rule labclip_train:
    input:
        **EMBEDDINGS,
    wildcard_constraints:
        dataset="|".join(CLEVR_DATASETS),
    output:
        weights=f"{PAPER_A}/labclip_{{mode}}.safetensors",
        history=f"{PAPER_A}/labclip_{{mode}}_history.parquet",
    params:
        labclip=config["paper_a"]["labclip"],
        seed=config["seed"],
    threads: 2
    log:
        "results/logs/labclip_train/{dataset}/{model}_{mode}.log",
    benchmark:
        "results/benchmarks/labclip_train/{dataset}/{model}_{mode}.tsv"
    conda:
        "../envs/embed.yaml"
    script:
        "../workflow_scripts/paper_a.py"


rule paper_a_binding:
    input:
        **EMBEDDINGS,
        probe_weights=f"{PAPER_A}/probe_weights.npz",
        labclip=expand(
            f"{PAPER_A}/labclip_{{mode}}.safetensors",
            mode=config["paper_a"]["labclip"]["modes"],
            allow_missing=True,
        ),
        published=list(config["paper_a"]["published_maps"].values()),
    wildcard_constraints:
        dataset="|".join(CLEVR_DATASETS),
    output:
        binding=f"{PAPER_A}/binding.parquet",
        cosines=f"{PAPER_A}/caption_cosines.parquet",
    params:
        probes=config["paper_a"]["probes"],
        published_maps=config["paper_a"]["published_maps"],
        seed=config["seed"],
    threads: 2
    log:
        "results/logs/paper_a_binding/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/paper_a_binding/{dataset}/{model}.tsv"
    conda:
        "../envs/embed.yaml"
    script:
        "../workflow_scripts/paper_a.py"


rule paper_a_tables:
    input:
        probes=expand(f"{PAPER_A}/probes.parquet", dataset=CLEVR_DATASETS, model=MODELS),
        binding=expand(f"{PAPER_A}/binding.parquet", dataset=CLEVR_DATASETS, model=MODELS),
    output:
        probes_csv=report(
            "results/paper_a/tables/probes.csv",
            caption="../report/paper_a_probes.rst",
            category="Paper A",
            subcategory="Tables",
            labels={"table": "probes", "format": "CSV"},
        ),
        probes_md=report(
            "results/paper_a/tables/probes.md",
            caption="../report/paper_a_probes.rst",
            category="Paper A",
            subcategory="Tables",
            labels={"table": "probes", "format": "Markdown"},
        ),
        binding_csv=report(
            "results/paper_a/tables/binding.csv",
            caption="../report/paper_a_binding.rst",
            category="Paper A",
            subcategory="Tables",
            labels={"table": "binding", "format": "CSV"},
        ),
        binding_md=report(
            "results/paper_a/tables/binding.md",
            caption="../report/paper_a_binding.rst",
            category="Paper A",
            subcategory="Tables",
            labels={"table": "binding", "format": "Markdown"},
        ),
    log:
        "results/logs/paper_a_tables/tables.log",
    benchmark:
        "results/benchmarks/paper_a_tables/tables.tsv"
    localrule: True
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow_scripts/paper_a_tables.py"


rule paper_a_figure:
    input:
        probes="results/paper_a/tables/probes.csv",
        binding="results/paper_a/tables/binding.csv",
        cosines=expand(f"{PAPER_A}/caption_cosines.parquet", dataset=CLEVR_DATASETS, model=MODELS),
    output:
        png=report(
            "results/paper_a/figures/{figure}.png",
            caption="../report/paper_a_figure.rst",
            category="Paper A",
            subcategory="Figures",
            labels={"figure": "{figure}"},
        ),
        pdf="results/paper_a/figures/{figure}.pdf",
    wildcard_constraints:
        figure="|".join(PAPER_A_FIGURES),
    log:
        "results/logs/paper_a_figure/{figure}.log",
    benchmark:
        "results/benchmarks/paper_a_figure/{figure}.tsv"
    localrule: True
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow_scripts/figures.py"
