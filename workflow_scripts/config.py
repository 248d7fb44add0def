"""Validation of the workflow config against schemas/config.schema.yaml and each dataset kind's schema block, plus
the checks a schema cannot express (the kinds' own, and which analyses each dataset can feed). Runs when the
Snakefile is parsed, so a bad config stops the run before any job."""

import copy
import json
import math
from pathlib import Path

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"
COMMON_DATASET_SCHEMA = SCHEMA_PATH.parent / "datasets" / "common.schema.yaml"


class ConfigError(ValueError):
    """A config that the workflow cannot run; the message names every offending key."""


def _is_integer(checker, instance) -> bool:
    """JSON schema counts 6.0 as an integer; a count, seed or size written 6.0 would then crash a job later."""
    return isinstance(instance, int) and not isinstance(instance, bool)


def _with_defaults(validator_class):
    """A validator that fills in the schema's defaults before checking the properties, and whose integers are
    integers (6.0 is refused)."""
    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, properties, instance, schema):
        if validator.is_type(instance, "object"):
            for key, subschema in properties.items():
                if "default" in subschema and key not in instance:
                    instance[key] = copy.deepcopy(subschema["default"])
        yield from check_properties(validator, properties, instance, schema)

    type_checker = validator_class.TYPE_CHECKER.redefine("integer", _is_integer)
    return jsonschema.validators.extend(validator_class, {"properties": properties}, type_checker=type_checker)


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def unknown_key_hint(name: str, known) -> str:
    """'unknown key ...; did you mean ...?' when a known key is a likely typo of it (difflib ratio 0.8: 'sampels'
    0.86, 'batchsize' 0.95; another kind's 'negatives_per_scene' against 'objects_per_scene' 0.72), else the known
    keys."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.8)
    if close:
        return f"unknown key {name!r}; did you mean {close[0]!r}?"
    return f"unknown key {name!r}; known keys: {', '.join(sorted(known)) or 'none'}"


def _explain(error, prefix=()) -> str:
    key = _key([*prefix, *error.absolute_path])
    if error.validator == "oneOf":  # say what each form lacks instead of "is not valid under any of the schemas"
        forms = {}
        for sub in error.context:
            forms.setdefault(sub.relative_schema_path[0], []).append(sub.message)
        if not forms:
            return f"{key}: matches more than one of its forms ({error.schema.get('description', 'see the schema')})"
        lacks = "; or ".join(", ".join(messages) for _, messages in sorted(forms.items()))
        return f"{key}: matches none of its forms: {lacks}"
    if error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        unknown = sorted(set(error.instance) - set(known))
        return f"{key}: " + "; ".join(unknown_key_hint(name, known) for name in unknown)
    return f"{key}: {error.message}"


def dataset_schema(kind) -> dict:
    """The JSON schema of a dataset entry of `kind`: the keys every dataset has, with the kind's own keys and
    defaults merged in; no other keys."""
    common = yaml.safe_load(COMMON_DATASET_SCHEMA.read_text())["properties"]
    own = kind.config if isinstance(kind.config, dict) else yaml.safe_load(Path(kind.config).read_text())
    properties = {key: dict(value) for key, value in common.items()}
    for key, value in own.get("properties", {}).items():
        properties[key] = {**properties.get(key, {}), **value}
    if not kind.rendered:
        properties.pop("shards")
    return {"type": "object", "additionalProperties": False, "required": list(own.get("required", [])),
            "properties": properties}


def _schema_errors(schema: dict, instance, prefix=()) -> list[str]:
    validator_class = _with_defaults(jsonschema.validators.validator_for(schema))
    errors = sorted(validator_class(schema).iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [_explain(e, prefix) for e in errors]


def dataset_errors(config: dict, kinds: dict) -> list[str]:
    """Each dataset entry checked against its kind's schema (defaults filled in) and its kind's own checks, and
    its analyses against the analyses registry."""
    from workflow_scripts.analyses import ANALYSES

    errors = []
    for name, spec in config["datasets"].items():
        kind = kinds.get(spec["kind"])
        if kind is None:
            errors.append(f"datasets.{name}.kind: unknown kind {spec['kind']!r}; known kinds: {', '.join(sorted(kinds))} "
                          "(a kind of your own needs its module in kind_modules)")
            continue
        found = _schema_errors(dataset_schema(kind), spec, ("datasets", name))
        if found:
            errors += found
            continue
        if "splits" in spec and abs(sum(spec["splits"].values()) - 1) > 1e-6:
            errors.append(f"datasets.{name}.splits: fractions must sum to 1, got {spec['splits']}")
        analyses = kind.analyses_of(spec)
        for analysis in analyses:
            if analysis not in ANALYSES:
                errors.append(f"datasets.{name}.analyses: unknown analysis {analysis!r}; known: {', '.join(ANALYSES)}")
                continue
            for needed in ANALYSES[analysis].requires:
                if needed not in analyses:
                    errors.append(f"datasets.{name}.analyses: {analysis} needs {needed}, which is not listed")
            if ANALYSES[analysis].needs_images and not kind.images_of(name, spec):
                errors.append(f"datasets.{name}.analyses: {analysis} needs images, which this {kind.name} dataset "
                              "does not have")
            if ANALYSES[analysis].needs_renders and not kind.rendered:
                errors.append(f"datasets.{name}.analyses: {analysis} needs the renderer's object masks, which kind "
                              f"{kind.name} does not render")
            if ANALYSES[analysis].needs_references and kind.references is None:
                errors.append(f"datasets.{name}.analyses: {analysis} needs single-object references, which kind "
                              f"{kind.name} does not make")
        own = kind.check(name, spec) if kind.check is not None else []
        errors += own
        if kind.planned_items is not None and "splits" in spec and not own:
            known = [analysis for analysis in analyses if analysis in ANALYSES]
            errors += split_errors(name, spec, kind.planned_items(name, spec), known)
    return errors


def split_errors(name: str, spec: dict, planned: dict[int, int], analyses) -> list[str]:
    """Each analysis' shortfall of items in a split it uses, from the items the entry plans per object count and
    its split fractions (splits are drawn in groups, so the items rule checks the drawn counts again)."""
    from workflow_scripts.analyses import split_shortfalls

    fractions = spec["splits"]
    expected = {n: {split: items * fraction for split, fraction in fractions.items()} for n, items in planned.items()}
    short = {}  # (split, object count or None for all items) -> (items expected, items needed, analyses)
    for analysis, split, n_objects, have, needed in split_shortfalls(analyses, expected):
        _, most, names = short.get((split, n_objects), (have, 0, []))
        short[(split, n_objects)] = (have, max(most, needed), [*names, analysis])
    errors = []
    for (split, n_objects), (have, needed, names) in short.items():
        items = planned[n_objects] if n_objects is not None else sum(planned.values())
        which = f"{n_objects}-object items" if n_objects is not None else "items"
        fix = (f"raise the {split} fraction above 0" if fractions[split] == 0 else
               f"plan at least {math.ceil(needed / fractions[split])} {which} or raise the {split} fraction")
        who = f"analysis {names[0]} needs" if len(names) == 1 else f"analyses {' and '.join(names)} need"
        errors.append(f"datasets.{name}: {who} at least {needed} {split} {which[:-1]}; "
                      f"{items} {which} x {split} fraction {fractions[split]} give about {have:.1f}: {fix}")
    return errors


def transfer_errors(config: dict, kinds: dict) -> list[str]:
    """paper_a.labclip_transfer names datasets that are configured and train LABCLIP."""
    errors = []
    for name in config["paper_a"]["labclip_transfer"]:
        spec = config["datasets"].get(name)
        if spec is None:
            errors.append(f"paper_a.labclip_transfer: {name!r} is not a dataset of this config "
                          f"(datasets: {', '.join(sorted(config['datasets']))})")
        elif "labclip" not in kinds[spec["kind"]].analyses_of(spec):
            errors.append(f"paper_a.labclip_transfer: dataset {name!r} does not run labclip, so it has no map to apply")
    return errors


def mention_order_errors(config: dict) -> list[str]:
    """The caption-order statistic's transformers models that name a local folder name one that exists and holds
    weights (a hub id is checked by its prefetch)."""
    from workflow_scripts.models.hf_models import is_local_folder, local_weight_files

    settings = config["paper_b"]["mention_order"]
    named = {"paper_b.mention_order.detector.model": settings["detector"]["model"],
             "paper_b.mention_order.segmenter": settings["segmenter"]}
    if "llm" in settings["methods"]:
        named["paper_b.mention_order.llm.model"] = settings["llm"]["model"]
    errors = []
    for key, name in named.items():
        if name and is_local_folder(name):
            try:
                local_weight_files(name)
            except FileNotFoundError as error:
                errors.append(f"{key}: {error}")
    return errors


def text_to_image_errors(config: dict, kinds: dict) -> list[str]:
    """Where a dataset lists prompt_order: its measures name models this config has (a detector where `detector`
    is measured, a configured model as clip_model), and a local pipeline folder exists."""
    settings, errors = config["paper_b"]["text_to_image"], []
    if not any(spec["kind"] in kinds and "prompt_order" in kinds[spec["kind"]].analyses_of(spec)
               for spec in config["datasets"].values()):
        return []
    if "detector" in settings["measures"] and not config["paper_b"]["mention_order"]["detector"]["model"]:
        errors.append("paper_b.text_to_image.measures: detector is listed, but paper_b.mention_order.detector.model "
                      "is null")
    ids = [model["id"] for model in config["models"]]
    if settings["clip_model"] is not None and settings["clip_model"] not in ids:
        errors.append(f"paper_b.text_to_image.clip_model: {settings['clip_model']!r} is not a model id of this config "
                      f"({', '.join(ids)})")
    from workflow_scripts.models.hf_models import is_local_folder

    if is_local_folder(settings["model"]) and not Path(settings["model"]).expanduser().is_dir():
        errors.append(f"paper_b.text_to_image.model: {settings['model']} is no folder")
    return errors


def training_errors(config: dict, kinds: dict) -> list[str]:
    """Each clip_training run: a rendered dataset of this config with enough train items for a batch, an
    architecture open_clip can build; each trained model: a run of clip_training and one of its checkpoints."""
    from workflow_scripts.models.catalogue import model_config, training_datasets

    errors, ids = [], [model["id"] for model in config["models"]]
    rendered = [n for n, s in config["datasets"].items() if s["kind"] in kinds and kinds[s["kind"]].rendered]
    for run, settings in config["clip_training"].items():
        key, train, counted = f"clip_training.{run}", 0.0, True
        for dataset in training_datasets(settings):
            if dataset not in rendered:
                errors.append(f"{key}.dataset: {dataset!r} is not a rendered dataset of this config "
                              f"(rendered: {', '.join(rendered) or 'none'})")
                counted = False
                continue
            spec = config["datasets"][dataset]
            planned = kinds[spec["kind"]].planned_items
            if planned is None:  # known only once the items are read
                counted = False
            else:
                train += sum(planned(dataset, spec).values()) * spec["splits"].get("train", 0)
        if counted and train < settings["batch_size"]:
            errors.append(f"{key}: a batch of {settings['batch_size']} needs at least as many train items; "
                          f"datasets {', '.join(training_datasets(settings))} give about {train:.0f}: plan more "
                          "scenes, raise the train fraction or lower batch_size")
        if "init" not in settings:
            try:
                model_config(settings["architecture"])
            except ValueError as error:
                errors.append(f"{key}.architecture: {error}")
        elif settings["init"] not in ids:
            errors.append(f"{key}.init: {settings['init']!r} is not a model id of models (ids: {', '.join(ids)})")
        elif run in initial_runs(config, run):
            errors.append(f"{key}.init: model {settings['init']!r} is trained from run {run!r} itself")
        if settings["hard_negatives"] and settings["caption_order"] != "as_generated":
            errors.append(f"{key}: hard_negatives pairs each caption with its dataset's negative, so caption_order "
                          f"must be as_generated, not {settings['caption_order']!r}")
    candidates = config["clip_selection"].get("candidates", [])
    unknown = [run for run in candidates if run not in config["clip_training"]]
    if unknown:
        errors.append(f"clip_selection.candidates: {', '.join(map(repr, unknown))} not a run of clip_training "
                      f"(runs: {', '.join(config['clip_training']) or 'none'})")
    else:
        for setting in ("dataset", "heldout_batch_size"):
            values = {run: config["clip_training"][run][setting] for run in candidates}
            if len({json.dumps(v) for v in values.values()}) > 1:
                errors.append(f"clip_selection.candidates: held-out measures compare only between runs with the same "
                              f"{setting}; got {', '.join(f'{r}: {v}' for r, v in values.items())}")
    for index, model in enumerate(config["models"]):
        if "trained" not in model:
            continue
        run = config["clip_training"].get(model["trained"])
        if "name" in model or "pretrained" in model:
            errors.append(f"models[{index}] (id {model['id']!r}): a trained model takes no name or pretrained (its "
                          f"checkpoint folder of run {model['trained']!r} is both)")
        elif run is None:
            errors.append(f"models[{index}] (id {model['id']!r}): trained {model['trained']!r} is not a run of "
                          f"clip_training (runs: {', '.join(config['clip_training']) or 'none'})")
        elif model.get("checkpoint", 1.0) not in [0, *run["checkpoints"]]:
            errors.append(f"models[{index}] (id {model['id']!r}): checkpoint {model['checkpoint']} is not one of run "
                          f"{model['trained']!r}'s checkpoints {[0, *run['checkpoints']]}")
    return errors


def dataset_models(spec: dict, model_ids) -> list[str]:
    """The model ids a dataset is studied with: those its `models` names or matches (shell-style patterns), in
    the order of `model_ids`; every model when it names none."""
    from fnmatch import fnmatchcase

    patterns = spec.get("models")
    return [i for i in model_ids if patterns is None or any(fnmatchcase(i, p) for p in patterns)]


def dataset_model_errors(config: dict) -> list[str]:
    """Each pattern of a dataset's `models` that matches no model id."""
    ids = [m["id"] for m in config["models"]]
    return [f"datasets.{name}.models: {pattern!r} matches no model id (ids: {', '.join(ids)})"
            for name, spec in config["datasets"].items() for pattern in spec.get("models", [])
            if not dataset_models({"models": [pattern]}, ids)]


def initial_runs(config: dict, run: str) -> set[str]:
    """The runs whose checkpoints `run` starts from, directly or through their own init (a cycle stops)."""
    models, runs, found = {m["id"]: m for m in config["models"]}, config["clip_training"], set()
    while (init := models.get(runs.get(run, {}).get("init"), {}).get("trained")) and init not in found:
        found.add(init)
        run = init
    return found


def model_errors(config: dict) -> list[str]:
    """Repeated ids, and models open_clip cannot build (unknown architecture or tag, missing checkpoint)."""
    from workflow_scripts.models.catalogue import model_errors as unbuildable

    ids = [m["id"] for m in config["models"]]
    repeated = [f"models: id {i!r} is used more than once" for i in sorted({i for i in ids if ids.count(i) > 1})]
    return repeated + unbuildable(config["models"])


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's SafeLoader, refusing a key written twice in one mapping (plain YAML keeps the last silently); a key
    that overrides one merged in with `<<: *anchor` is not a repeat."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise ConfigError(f"{self.name}: key {key!r} appears twice in one mapping (lines {seen[key] + 1} "
                                  f"and {key_node.start_mark.line + 1}); YAML would keep the last silently")
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def check_config_file(path) -> None:
    """ConfigError naming the file, key and lines where a config file repeats a key in one mapping."""
    with open(path, encoding="utf-8") as handle:
        yaml.load(handle, Loader=_UniqueKeyLoader)


def validate_config(config: dict, schema_path=SCHEMA_PATH) -> dict:
    """Fill in defaults in place and return `config`; raise ConfigError listing every problem."""
    from workflow_scripts.datasets.registry import dataset_kinds

    schema = yaml.safe_load(Path(schema_path).read_text())
    messages = _schema_errors(schema, config)
    if not messages:
        try:
            kinds = dataset_kinds(config["kind_modules"])
        except ValueError as error:
            raise ConfigError(f"invalid config:\n  {error}") from None
        messages = (dataset_errors(config, kinds) + model_errors(config) + dataset_model_errors(config)
                    + training_errors(config, kinds)
                    + transfer_errors(config, kinds) + mention_order_errors(config)
                    + text_to_image_errors(config, kinds))
    if messages:
        raise ConfigError("invalid config:\n  " + "\n  ".join(messages))
    return config
