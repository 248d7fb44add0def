# Datasets: each dataset's item table, made by its kind (workflow_scripts/datasets/); ComCO's meshes measured first.


rule items:
    input:
        unpack(item_inputs),
    output:
        item_table=ITEMS,
    params:
        # The entry without its labclip settings, which change no item (and so rebuild nothing here).
        spec=lambda wc: {key: value for key, value in DATASETS[wc.dataset].spec.items() if key != "labclip"},
        references_of=lambda wc: DATASETS[wc.dataset].of,
        kind_modules=config["kind_modules"],
        resolution=config["render"]["resolution"],
        seed=config["seed"],
    log:
        "results/logs/items/{dataset}.log",
    benchmark:
        "results/benchmarks/items/{dataset}.tsv"
    localrule: True
    conda:
        "../envs/scenes.yaml"
    script:
        "../workflow_scripts/datasets/build.py"


# The user's mesh files of a dataset whose items need them measured (ComCO), imported once with Blender, so that
# a bad file stops the run, naming it, before any scene is drawn.
rule mesh_geometry:
    input:
        meshes=lambda wc: list(DATASETS[wc.dataset].source_files.values()),
    output:
        geometry="results/{dataset}/meshes.json",
    params:
        meshes=lambda wc: {name: str(path) for name, path in DATASETS[wc.dataset].source_files.items()},
    wildcard_constraints:
        dataset=one_of(name for name, planned in DATASETS.items() if "meshes" in planned.inputs() and not planned.is_references),
    log:
        "results/logs/mesh_geometry/{dataset}.log",
    benchmark:
        "results/benchmarks/mesh_geometry/{dataset}.tsv"
    conda:
        "../envs/render.yaml"
    script:
        "../workflow_scripts/render/meshes.py"
