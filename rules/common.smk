# Everything the rules share: the validated config, the planned datasets (through the registry of dataset kinds,
# workflow_scripts/datasets/), the paths of items, embeddings and analysis results, and the target lists.
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

sys.path.insert(0, workflow.basedir)

from workflow_scripts.common.sources import code_digest, imported_files
from workflow_scripts.config import ConfigError, check_config_file, dataset_models, validate_config
from workflow_scripts.datasets.registry import dataset_kinds, plan_datasets
from workflow_scripts.datasets.items import shard_manifest
from workflow_scripts.models.catalogue import TRAINING_DIR, configured_models, run_settings, training_datasets
from workflow_scripts.analyses import ANALYSES
from workflow_scripts.models.hf_models import model_slug
from workflow_scripts.summary import DERIVED_TABLES, FIGURES, PAPER_TITLES, TABLES, TRAINING_RUNS, TRAINING_TABLES

try:
    for path in workflow.configfiles:
        check_config_file(path)
    validate_config(config)
    DATASETS, SKIPPED = plan_datasets(config, dataset_kinds(config["kind_modules"]))
except (ConfigError, ValueError) as error:
    raise WorkflowError(str(error)) from None
for name, reason in SKIPPED.items():
    logger.warning(f"dataset {name!r} skipped: {reason}")

# paper_model labels the real_world table's rows only; taken out of the entries so that a label changes no job
PAPER_MODELS = {model["id"]: model.pop("paper_model", "CLIP") for model in config["models"]}
MODELS = configured_models(config)  # a trained entry resolved to its checkpoint folder (models/catalogue.py)
# The embedding settings a result can depend on, as the rules' param: num_workers (data-loading processes) changes
# only the speed, so the jobs read it from the config and changing it reruns nothing.
EMBEDDING = {key: value for key, value in config["embedding"].items() if key != "num_workers"}

# Paths: every dataset's items and embeddings, and every analysis' results in one layout.
ITEMS = "results/{dataset}/items.parquet"
EMBEDDINGS = {
    "images": "results/{dataset}/embeddings/{model}/images.parquet",
    "texts": "results/{dataset}/embeddings/{model}/texts.parquet",
}
REFERENCES = {  # a dataset's single-object references, beside its own items
    "reference_items": "results/{dataset}-references/items.parquet",
    "reference_images": "results/{dataset}-references/embeddings/{model}/images.parquet",
}


def analysis_dir(analysis: str) -> str:
    return f"results/{{dataset}}/{analysis}/{{model}}"


def datasets_for(analysis: str) -> list[str]:
    """The datasets an analysis runs on (their kind's default analyses, or the entry's own list)."""
    return [name for name, planned in DATASETS.items() if analysis in planned.analyses]


def models_of(dataset: str) -> list[str]:
    """The model ids a dataset is studied with (its `models`; a references dataset: its scenes' dataset's)."""
    return dataset_models(config["datasets"][DATASETS[dataset].of or dataset], MODELS)


def one_of(names) -> str:
    """A wildcard constraint matching exactly these names (none: matching nothing)."""
    return "|".join(map(re.escape, names)) or "(?!)"


wildcard_constraints:
    dataset=one_of(DATASETS),
    model=one_of(MODELS),
    shard=r"\d{3}",
    run=one_of(config["clip_training"]),
    mode=one_of(config["paper_a"]["labclip"]["modes"]),
    method=one_of(config["paper_b"]["mention_order"]["methods"]),


def trained_folders(model_id: str) -> list[str]:
    """The training run's folder of a model trained by this workflow; nothing for any other model."""
    model = MODELS[model_id]
    return [TRAINING_DIR.format(run=model["trained"])] if "trained" in model else []


def trained_input(wildcards) -> list[str]:
    return trained_folders(wildcards.model)


def training_inputs(wildcards) -> dict:
    """The item tables and render shards of a training run's datasets; for a fine-tuning run (init), the initial
    model's prefetch record and, for a CLIP trained here, its run's folder."""
    settings = config["clip_training"][wildcards.run]
    datasets = training_datasets(settings)
    inputs = {"item_tables": [ITEMS.format(dataset=dataset) for dataset in datasets],
              "shards": [f"results/{dataset}/{shard_manifest(shard)}" for dataset in datasets
                         for shard in range(DATASETS[dataset].shards)]}
    if "init" in settings:
        inputs["init_weights"] = WEIGHTS_RECORD.format(model=settings["init"])
        inputs["init_trained"] = trained_folders(settings["init"])
    return inputs


def initial_model(wildcards) -> dict | None:
    """The configured model entry a fine-tuning run starts from; None for a run from scratch."""
    init = config["clip_training"][wildcards.run].get("init")
    return MODELS[init] if init else None


def labclip_settings(wildcards) -> dict:
    return DATASETS[wildcards.dataset].labclip_settings(config["paper_a"]["labclip"])


def transferred_maps(wildcards) -> dict[str, str]:
    """{LABCLIP map file: the dataset it was trained on} for the datasets of paper_a.labclip_transfer that run
    here (a skipped one contributes nothing): each mode's last-epoch and best-validation maps of the job's model."""
    maps = {}
    for source in config["paper_a"]["labclip_transfer"]:
        if source in DATASETS and source != wildcards.dataset and wildcards.model in models_of(source):
            for path in expand([rules.labclip.output.weights, rules.labclip.output.best_val], dataset=source,
                               model=wildcards.model, mode=config["paper_a"]["labclip"]["modes"]):
                maps[path] = source
    return maps


def item_inputs(wildcards) -> dict:
    """The files a dataset's item builder reads (its kind's `inputs`)."""
    return DATASETS[wildcards.dataset].inputs()


def shard_manifests(wildcards):
    """The manifest of every render shard of a rendered dataset (a rule that reads the images waits for them, and
    a shard folder without its manifest is rendered again); nothing for one whose images are files on disk."""
    planned = DATASETS[wildcards.dataset]
    if not planned.kind.rendered:
        return []
    return [f"results/{wildcards.dataset}/{shard_manifest(shard)}" for shard in range(planned.shards)]


def analysis_results(analysis: str, output: str) -> list[str]:
    """One analysis output over every dataset it runs on and every model it is studied with (labclip: every mode;
    an analysis of the data alone, per_model False: once per dataset)."""
    paths = [path for dataset in datasets_for(analysis)
             for path in expand(getattr(getattr(rules, analysis).output, output), dataset=dataset,
                                model=models_of(dataset), mode=config["paper_a"]["labclip"]["modes"])]
    return paths if ANALYSES[analysis].per_model else list(dict.fromkeys(paths))


MENTION_ORDER = config["paper_b"]["mention_order"]
TEXT_TO_IMAGE = config["paper_b"]["text_to_image"]
PROMPT_ORDER_DETECTOR = datasets_for("prompt_order") and "detector" in TEXT_TO_IMAGE["measures"]
# The models other than CLIP that the mention_order and prompt_order rules load, {name, role}, by the slug that names
# their prefetch record.
HF_MODELS = {model_slug(name): {"name": name, "role": role} for name, role in [
    (MENTION_ORDER["llm"]["model"] if "llm" in MENTION_ORDER["methods"] else None, "llm"),
    (MENTION_ORDER["detector"]["model"] if datasets_for("mention_order") or PROMPT_ORDER_DETECTOR else None,
     "detector"),
    (MENTION_ORDER["segmenter"] if MENTION_ORDER["detector"]["model"] and datasets_for("mention_order") else None,
     "segmenter"),
    (TEXT_TO_IMAGE["model"] if datasets_for("prompt_order") else None, "text_to_image"),
] if name}
HF_WEIGHTS_RECORD = "results/weights/transformers/{hf_model}.json"


def measures_areas(dataset: str) -> bool:
    """Whether object areas are measured on a dataset (object_areas): it has images and a detector is configured."""
    return bool(MENTION_ORDER["detector"]["model"]) and DATASETS[dataset].has_images


def hf_record(name: str | None) -> list[str]:
    return [HF_WEIGHTS_RECORD.format(hf_model=model_slug(name))] if name else []


def prompt_order_clip() -> dict:
    """The configured model that measures prompt_order's "clip" (paper_b.text_to_image.clip_model, else the first)."""
    return MODELS[TEXT_TO_IMAGE["clip_model"] or next(iter(MODELS))]


def table_folder(table: str) -> str:
    """The results folder (paper_a, paper_b, clip_training) an analysis or training table belongs to."""
    return (TABLES.get(table) or DERIVED_TABLES[table])[0]


def table_path(table: str, ext: str) -> str:
    return f"results/{table_folder(table)}/tables/{table}.{ext}"


def figure_path(figure: str, ext: str) -> str:
    return f"results/{FIGURES[figure][0]}/figures/{figure}.{ext}"


def figure_sources(figure: str, paper: str) -> dict:
    """A figure's inputs: the tables it draws, or analysis results it reads directly."""
    if FIGURES[figure][0] != paper:
        raise WorkflowError(f"figure {figure} belongs to {FIGURES[figure][0]}: {figure_path(figure, 'png')}")
    return {key: training_dirs() if source == TRAINING_RUNS else
            table_path(source, "csv") if isinstance(source, str) else analysis_results(*source)
            for key, source in FIGURES[figure][1].items()}


def training_dirs() -> list[str]:
    return [TRAINING_DIR.format(run=run) for run in config["clip_training"]]


def table_inputs(wildcards) -> dict:
    """An analysis table's results ("results"), or the CSVs of the tables a derived table reads (by name) and, for
    the training progression, the run folders ("runs")."""
    table = wildcards.table
    paper = table_folder(table)
    if paper != wildcards.paper:
        raise WorkflowError(f"table {table} belongs to {paper}: {table_path(table, 'csv')}")
    if table in DERIVED_TABLES:
        return {("runs" if source == TRAINING_RUNS else source):
                (training_dirs() if source == TRAINING_RUNS else table_path(source, "csv"))
                for source in DERIVED_TABLES[table][1] if source_available(source)}
    return {"results": analysis_results(*TABLES[table][1:])}


def trained_checkpoints() -> dict[str, dict]:
    """Per model trained in the workflow: its run, step and the run settings the training tables group by."""
    return {model_id: {"run": model["trained"], "step": model["step"], "steps": model["training"]["steps"],
                       "seed": model["training"]["seed"], "caption_order": model["training"]["caption_order"],
                       "train_dataset": "+".join(training_datasets(model["training"])), "init": model["training"].get("init", ""),
                       "hard_negatives": model["training"]["hard_negatives"]}
            for model_id, model in MODELS.items() if "training" in model}


def derived_table_context(wildcards) -> dict:
    """What a derived table needs beyond its source tables: the trained checkpoints (training tables), or each
    model's paper model, whose reference numbers its CLIP rows stand beside (real_world)."""
    if wildcards.table in TRAINING_TABLES:
        return trained_checkpoints()
    if wildcards.table == "clip_selection":
        return {**config["clip_selection"],
                "settings": {run: run_settings(config, run) for run in config["clip_selection"]["candidates"]}}
    if wildcards.table == "real_world":
        return PAPER_MODELS
    return {}


def derived_table_due(table: str) -> bool:
    """Whether a derived table has what it compares: for a training table, the trained models (DERIVED_TABLES)."""
    if table == "clip_selection":
        return bool(config["clip_selection"].get("candidates"))
    if table not in TRAINING_TABLES:
        return True
    checkpoints = trained_checkpoints().values()
    if table == "training_progression":
        runs = [c["run"] for c in checkpoints]
        return any(runs.count(run) > 1 for run in runs)
    return len({c["caption_order"] for c in checkpoints if c["step"] == c["steps"]}) > 1


def source_available(source) -> bool:
    """Whether a table (by name) or an analysis output ((analysis, output)) has any dataset to come from, or
    (TRAINING_RUNS) the config trains any CLIP; a training table, whether it is due and any table it reads is."""
    if source == TRAINING_RUNS:
        return bool(config["clip_training"])
    if source in DERIVED_TABLES:
        tables = [s for s in DERIVED_TABLES[source][1] if s != TRAINING_RUNS]
        return derived_table_due(source) and (not tables or any(source_available(s) for s in tables))
    analysis = TABLES[source][1] if isinstance(source, str) else source[0]
    return bool(datasets_for(analysis))


# rule brief's sources
BRIEF_TABLES = ("clip_selection", "probes", "binding", "caption_order", "caption_order_difference")
AVAILABLE_TABLES = [table for table in [*TABLES, *DERIVED_TABLES] if source_available(table)]
AVAILABLE_FIGURES = [figure for figure, (_, sources) in FIGURES.items()
                     if all(source_available(source) for source in sources.values())]


def all_targets() -> list[str]:
    """Every studied dataset's embeddings (text only for a kind without images; a dataset with `analyses: []` is
    training data only), and every table and figure the datasets feed."""
    datasets = [name for name, planned in DATASETS.items() if not planned.is_references
                and any(ANALYSES[analysis].per_model for analysis in planned.analyses if analysis in ANALYSES)]
    with_images = [name for name in datasets if DATASETS[name].has_images]
    return [
        *(path for dataset in with_images for path in expand(EMBEDDINGS["images"], dataset=dataset,
                                                            model=models_of(dataset))),
        *(path for dataset in datasets for path in expand(EMBEDDINGS["texts"], dataset=dataset,
                                                         model=models_of(dataset))),
        *(table_path(table, ext) for table in AVAILABLE_TABLES for ext in ("csv", "md")),
        *(figure_path(figure, ext) for figure in AVAILABLE_FIGURES for ext in ("png", "pdf")),
        "results/summary.txt",
    ]


def follow_the_code() -> None:
    """Give every rule with a script the digest of its script and of every project module it imports (and of
    the config's kind modules, where it imports the kind registry) as its `code` param: a rule reruns when that
    code's content changes. profiles/default, which Snakemake reads on every run, turns off Snakemake's own
    code trigger (the script's modification time), so that a touch alone reruns nothing. Call once, after
    every rule is defined."""
    root = Path(workflow.basedir)
    registry = (root / "workflow_scripts/datasets/registry.py").resolve()
    for rule_ in workflow.rules:
        if rule_.script:
            script = Path(rule_.snakefile).parent / rule_.script
            kind_modules = config["kind_modules"] if registry in imported_files(script, root) else ()
            rule_.set_params(code=code_digest(script, root, kind_modules))
