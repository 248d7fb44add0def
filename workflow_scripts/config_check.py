"""Validation of the workflow config against schemas/config.schema.yaml, plus the checks a schema
cannot express. Runs when the Snakefile is parsed, so a bad config stops the run before any job."""

import copy
from pathlib import Path

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"


# Dataset keys that belong to one kind of dataset only.
KIND_KEYS = {
    "clevr": {"negatives_per_scene"},
    "simco": {"layout"},
    "comco": {"layout", "meshes", "categories"},
}


class ConfigError(ValueError):
    """A config that the workflow cannot run; the message names every offending key."""


def _with_defaults(validator_class):
    """A validator that fills in the schema's defaults before checking the properties."""
    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, properties, instance, schema):
        if validator.is_type(instance, "object"):
            for key, subschema in properties.items():
                if "default" in subschema and key not in instance:
                    instance[key] = copy.deepcopy(subschema["default"])
        yield from check_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": properties})


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _explain(error) -> str:
    if error.validator == "additionalProperties":
        known = ", ".join(sorted(error.schema.get("properties", {}))) or "none"
        return f"{_key(error.absolute_path)}: {error.message}; known keys: {known}"
    return f"{_key(error.absolute_path)}: {error.message}"


def semantic_errors(config: dict) -> list[str]:
    """What the schema cannot say: consistency between keys."""
    errors = []
    for name, spec in config["datasets"].items():
        total = len(spec["objects_per_scene"]) * spec["scenes_per_count"]
        if spec["shards"] > total:
            errors.append(f"datasets.{name}.shards: {spec['shards']} shards for {total} scenes; use at most {total}")
        allowed = KIND_KEYS[spec["kind"]]
        for key in sorted(set(spec) & set().union(*KIND_KEYS.values()) - allowed):
            errors.append(f"datasets.{name}.{key}: not a key of kind {spec['kind']} datasets")
        if spec["kind"] != "clevr" and max(spec["objects_per_scene"]) > 5:
            errors.append(f"datasets.{name}.objects_per_scene: {spec['kind']} scenes hold 2..5 objects, "
                          f"got {spec['objects_per_scene']}")
        if spec["kind"] == "clevr" and 2 in spec["objects_per_scene"] and spec["negatives_per_scene"] > 1:
            errors.append(
                f"datasets.{name}.negatives_per_scene: a two-object caption has one hard negative, "
                f"got {spec['negatives_per_scene']}"
            )
        if abs(sum(spec["splits"].values()) - 1) > 1e-6:
            errors.append(f"datasets.{name}.splits: fractions must sum to 1, got {spec['splits']}")
    ids = [m["id"] for m in config["models"]]
    for duplicate in sorted({i for i in ids if ids.count(i) > 1}):
        errors.append(f"models: id {duplicate!r} is used more than once")
    return errors


def validate_config(config: dict, schema_path=SCHEMA_PATH) -> dict:
    """Fill in defaults in place and return `config`; raise ConfigError listing every problem."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator_class = _with_defaults(jsonschema.validators.validator_for(schema))
    errors = sorted(validator_class(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    messages = [_explain(e) for e in errors]
    if not messages:
        messages = semantic_errors(config)
    if messages:
        raise ConfigError("invalid config:\n  " + "\n  ".join(messages))
    return config
