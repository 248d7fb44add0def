rule mesh_geometry:
    input:
        meshes=lambda wc: list(MESHES[wc.dataset].values()),
    output:
        geometry="results/{dataset}/meshes.json",
    params:
        meshes=lambda wc: {category: str(path) for category, path in MESHES[wc.dataset].items()},
    wildcard_constraints:
        dataset="|".join(map(re.escape, MESHES)),
    log:
        "results/logs/mesh_geometry/{dataset}.log",
    benchmark:
        "results/benchmarks/mesh_geometry/{dataset}.tsv"
    conda:
        "../envs/render.yaml"
    script:
        "../workflow_scripts/meshes.py"


rule scene_specs:
    input:
        meshes=mesh_table,
    output:
        scenes="results/{dataset}/scenes.parquet",
    params:
        spec=lambda wc: scene_spec(wc.dataset),
        resolution=config["render"]["resolution"],
        seed=config["seed"],
    log:
        "results/logs/scene_specs/{dataset}.log",
    benchmark:
        "results/benchmarks/scene_specs/{dataset}.tsv"
    localrule: True
    conda:
        "../envs/scenes.yaml"
    script:
        "../workflow_scripts/scenes.py"
