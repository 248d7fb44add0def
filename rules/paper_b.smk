rule paper_b_tor:
    input:
        weights=ancient(WEIGHTS_RECORD),
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


rule paper_b_images:
    input:
        scenes="results/{dataset}/scenes.parquet",
        images="results/{dataset}/embeddings/{model}/images.parquet",
        reference_scenes="results/{dataset}-references/scenes.parquet",
        reference_images="results/{dataset}-references/embeddings/{model}/images.parquet",
        weights=ancient(WEIGHTS_RECORD),
    output:
        ior="results/paper_b/{dataset}/{model}/ior.parquet",
        matching="results/paper_b/{dataset}/{model}/matching.parquet",
    params:
        aggregations=config["paper_b"]["tor"]["aggregations"],
        model=lambda wc: MODELS[wc.model],
        embedding=config["embedding"],
        seed=config["seed"],
    wildcard_constraints:
        dataset="|".join(map(re.escape, PAPER_B_DATASETS)),
    threads: 4
    log:
        "results/logs/paper_b_images/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/paper_b_images/{dataset}/{model}.tsv"
    conda:
        "../envs/embed.yaml"
    script:
        "../workflow_scripts/paper_b.py"


rule paper_b_table:
    input:
        results=paper_b_results,
    output:
        csv=report(
            "results/paper_b/tables/{table}.csv",
            caption="../report/paper_b_table.rst",
            category="Paper B",
            subcategory="Tables",
            labels={"table": "{table}", "format": "CSV"},
        ),
        md=report(
            "results/paper_b/tables/{table}.md",
            caption="../report/paper_b_table.rst",
            category="Paper B",
            subcategory="Tables",
            labels={"table": "{table}", "format": "Markdown"},
        ),
    wildcard_constraints:
        table="|".join(PAPER_B_TABLES),
    log:
        "results/logs/paper_b_table/{table}.log",
    benchmark:
        "results/benchmarks/paper_b_table/{table}.tsv"
    localrule: True
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow_scripts/paper_b_tables.py"


rule paper_b_figure:
    input:
        unpack(lambda wc: {PAPER_B_FIGURES[wc.figure]: f"results/paper_b/tables/{PAPER_B_FIGURES[wc.figure]}.csv"}),
    output:
        png=report(
            "results/paper_b/figures/{figure}.png",
            caption="../report/paper_b_figure.rst",
            category="Paper B",
            subcategory="Figures",
            labels={"figure": "{figure}"},
        ),
        pdf="results/paper_b/figures/{figure}.pdf",
    wildcard_constraints:
        figure="|".join(f for f, table in PAPER_B_FIGURES.items() if table in PAPER_B_TABLES),
    log:
        "results/logs/paper_b_figure/{figure}.log",
    benchmark:
        "results/benchmarks/paper_b_figure/{figure}.tsv"
    localrule: True
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow_scripts/figures.py"
