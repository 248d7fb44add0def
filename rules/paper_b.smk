rule paper_b_tor:
    output:
        tor="results/paper_b/{model}/tor.parquet",
    params:
        tor=config["paper_b"]["tor"],
        model=lambda wc: MODELS[wc.model],
        embedding=config["embedding"],
        seed=config["seed"],
    threads: 4
    log:
        "results/logs/paper_b_tor/{model}.log",
    benchmark:
        "results/benchmarks/paper_b_tor/{model}.tsv"
    conda:
        "../envs/embed.yaml"
    script:
        "../workflow_scripts/paper_b.py"


rule paper_b_tables:
    input:
        tor=expand("results/paper_b/{model}/tor.parquet", model=MODELS),
    output:
        tor_csv="results/paper_b/tables/tor.csv",
        tor_md="results/paper_b/tables/tor.md",
    log:
        "results/logs/paper_b_tables/tables.log",
    benchmark:
        "results/benchmarks/paper_b_tables/tables.tsv"
    localrule: True
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow_scripts/paper_b_tables.py"


rule paper_b_figure:
    input:
        tor="results/paper_b/tables/tor.csv",
    output:
        png="results/paper_b/figures/{figure}.png",
        pdf="results/paper_b/figures/{figure}.pdf",
    wildcard_constraints:
        figure="|".join(PAPER_B_FIGURES),
    log:
        "results/logs/paper_b_figure/{figure}.log",
    benchmark:
        "results/benchmarks/paper_b_figure/{figure}.tsv"
    localrule: True
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow_scripts/figures.py"
