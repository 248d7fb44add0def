# Model weights, fetched where there is internet: prefetch_weights is a localrule, so on a cluster it runs on
# the login node, and the compute nodes then read the Hugging Face cache (HF_HOME) with the hub offline.
# `snakemake prefetch --cores 1` fetches and verifies every configured model's weights ahead of a run.

# A model's prefetch record. Every rule that loads a model's weights takes it as input, as
# `weights=ancient(WEIGHTS_RECORD)`: the rule waits for the prefetch and learns from the record that it may
# read the cache offline, while a rewritten record (after an edit of prefetch.py, say) does not make its
# outputs stale; a change of the model's weights reaches those rules through their `model` param.
WEIGHTS_RECORD = "results/weights/{model}.json"


rule prefetch_weights:
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
        "../workflow_scripts/prefetch.py"


rule prefetch:
    input:
        expand(WEIGHTS_RECORD, model=MODELS),
    localrule: True
