# Summary: the papers' tables and figures (workflow_scripts/summary/; which table gathers which analysis is in
# its __init__.py), each buildable alone by naming its file.


rule table:
    input:
        unpack(table_inputs),
    params:
        context=derived_table_context,
    output:
        csv=report(
            "results/{paper}/tables/{table}.csv",
            caption="../report/table.rst",
            category=lambda wildcards: PAPER_TITLES[wildcards.paper],
            subcategory="Tables",
            labels={"table": "{table}", "format": "CSV"},
        ),
        md=report(
            "results/{paper}/tables/{table}.md",
            caption="../report/table.rst",
            category=lambda wildcards: PAPER_TITLES[wildcards.paper],
            subcategory="Tables",
            labels={"table": "{table}", "format": "Markdown"},
        ),
    wildcard_constraints:
        table=one_of(AVAILABLE_TABLES),
        paper=one_of(PAPER_TITLES),
    log:
        "results/logs/table/{paper}/{table}.log",
    benchmark:
        "results/benchmarks/table/{paper}/{table}.tsv"
    localrule: True
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow_scripts/summary/tables.py"


rule figure:
    input:
        unpack(lambda wc: figure_sources(wc.figure, wc.paper)),
    output:
        png=report(
            "results/{paper}/figures/{figure}.png",
            caption="../report/figure.rst",
            category=lambda wildcards: PAPER_TITLES[wildcards.paper],
            subcategory="Figures",
            labels={"figure": "{figure}"},
        ),
        pdf="results/{paper}/figures/{figure}.pdf",
    wildcard_constraints:
        figure=one_of(AVAILABLE_FIGURES),
        paper=one_of(PAPER_TITLES),
    log:
        "results/logs/figure/{paper}/{figure}.log",
    benchmark:
        "results/benchmarks/figure/{paper}/{figure}.tsv"
    localrule: True
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow_scripts/summary/figures.py"


# One screen of the run's answers (workflow_scripts/summary/brief.py), from the tables it has.
rule brief:
    input:
        unpack(lambda wc: {table: table_path(table, "csv") for table in BRIEF_TABLES if table in AVAILABLE_TABLES}),
    output:
        "results/summary.txt",
    params:
        trained=trained_checkpoints(),
    log:
        "results/logs/brief.log",
    localrule: True
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow_scripts/summary/brief.py"
