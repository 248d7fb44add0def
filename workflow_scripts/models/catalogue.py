"""Which CLIP models a config may name, checked when the workflow is parsed, before any job.

A model is an open_clip architecture with an open_clip pretrained tag, a local checkpoint path or "none"
(models/loading.py loads them). The architectures and their tags are open_clip's own lists. Importing open_clip
takes seconds (it imports torch), so the architectures are read from its model_configs files without importing
it, and the tags, where a config names one, once per installed open_clip, then from a small JSON file under
.snakemake/. Where open_clip is not installed beside Snakemake (its rules then run in the env of
envs/embed.yaml), only checkpoint paths are checked at parse time and the job checks the rest.
"""

import difflib
import hashlib
import importlib.util
import json
from pathlib import Path

from workflow_scripts.common.files import write_atomically

RANDOM_WEIGHTS = ("none", "random")
CACHE_DIR = Path(".snakemake/clip_binding")
LOCAL_DIR = "local-dir:"  # open_clip's name for a checkpoint folder (open_clip_config.json and its weights)
TRAINING_DIR = "results/clip_training/{run}"  # rule train_clip's output: one local-dir folder per checkpoint


def local_dir_folder(name: str) -> Path | None:
    """The folder of a "local-dir:<folder>" model name (as open_clip reads it), None for any other name."""
    return Path(name[len(LOCAL_DIR):]) if name.startswith(LOCAL_DIR) else None


VOCAB_SIZE = 49408  # open_clip's BPE tokenizer


def model_config(architecture: dict) -> dict:
    """open_clip's model_cfg for the config's `architecture` (image_size, patch_size, vision_width,
    vision_layers, text_width, text_layers, head_width, embed_dim, context_length)."""
    a = architecture
    for width in ("vision_width", "text_width"):
        if a[width] % a["head_width"]:
            raise ValueError(f"{width} {a[width]} is not a multiple of head_width {a['head_width']}")
    if a["image_size"] % a["patch_size"]:
        raise ValueError(f"image_size {a['image_size']} is not a multiple of patch_size {a['patch_size']}")
    return {
        "embed_dim": a["embed_dim"],
        "vision_cfg": {"image_size": a["image_size"], "patch_size": a["patch_size"], "width": a["vision_width"],
                       "layers": a["vision_layers"], "head_width": a["head_width"]},
        "text_cfg": {"context_length": a["context_length"], "vocab_size": VOCAB_SIZE, "width": a["text_width"],
                     "heads": a["text_width"] // a["head_width"], "layers": a["text_layers"]},
    }


def checkpoint_step(steps: int, fraction: float) -> int:
    """The step of a run's checkpoint at `fraction` of its steps (0: the initialisation)."""
    return 0 if fraction == 0 else max(1, round(fraction * steps))


def checkpoint_steps(steps: int, fractions) -> list[int]:
    """The steps after which a training run writes a checkpoint: 0 (the initialisation) and each fraction."""
    return sorted({0} | {checkpoint_step(steps, f) for f in fractions})


def checkpoint_folder(run: str, step: int) -> str:
    return f"{TRAINING_DIR.format(run=run)}/step-{step:06d}"


def run_settings(config: dict, run: str) -> dict:
    """A clip_training run's settings with its seed resolved (the config's seed unless the run sets one); a
    fine-tuning run (init) without `architecture`, which its initial model replaces."""
    settings = {"seed": config["seed"], **config["clip_training"][run]}
    if "init" in settings:
        settings.pop("architecture", None)
    return settings


def training_datasets(settings: dict) -> list[str]:
    """The datasets a clip_training run trains on (its `dataset`: one name or a list), in order."""
    dataset = settings["dataset"]
    return [dataset] if isinstance(dataset, str) else list(dataset)


def configured_models(config: dict) -> dict[str, dict]:
    """The config's models by id, a trained entry resolved to its checkpoint folder: name "local-dir:<folder>",
    pretrained "none", and its run's settings under "training" (so that a changed run reruns what embeds with it)."""
    models = {}
    for model in config["models"]:
        if "trained" in model:
            settings = run_settings(config, model["trained"])
            step = checkpoint_step(settings["steps"], model.get("checkpoint", 1.0))
            model = {**model, "name": LOCAL_DIR + checkpoint_folder(model["trained"], step), "pretrained": "none",
                     "training": settings, "step": step}
        models[model["id"]] = model
    return models


def is_checkpoint_path(pretrained: str) -> bool:
    return "/" in pretrained or Path(pretrained).suffix in {".pt", ".pth", ".bin", ".safetensors"}


def is_tag(pretrained: str) -> bool:
    return pretrained.lower() not in RANDOM_WEIGHTS and not is_checkpoint_path(pretrained)


def _package() -> Path | None:
    """The installed open_clip package folder, found without importing it (importing takes seconds)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("open_clip_torch")
    except PackageNotFoundError:
        return "unknown version"


def installed_architectures() -> list[str] | None:
    """open_clip.list_models() of the installed open_clip without importing it: the model_configs/*.json
    files that describe a CLIP (as open_clip's factory reads them); None when open_clip is not installed."""
    package = _package()
    if package is None:
        return None
    names = []
    for path in sorted((package / "model_configs").glob("*.json")):
        if all(key in json.loads(path.read_text()) for key in ("embed_dim", "vision_cfg", "text_cfg")):
            names.append(path.stem)
    return names


def installed_tags(cache_dir=CACHE_DIR) -> dict[str, list[str]] | None:
    """{architecture: open_clip pretrained tags} of the installed open_clip: read by importing it once per
    installation, then from a cache file in `cache_dir`; None when open_clip is not installed."""
    package = _package()
    if package is None:
        return None
    # The installation: where it is and its files' sizes and times (a reinstall or an edit makes a new key).
    stamp = [str(package)] + [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
                              for p in sorted(package.glob("*.py"))]
    cache = Path(cache_dir) / f"open_clip-tags-{hashlib.sha256(json.dumps(stamp).encode()).hexdigest()[:16]}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    import open_clip

    tags = {name: open_clip.list_pretrained_tags_by_model(name) for name in open_clip.list_models()}
    write_atomically(cache, lambda partial: Path(partial).write_text(json.dumps(tags)))
    return tags


def _suggest(value: str, choices) -> str:
    close = difflib.get_close_matches(value, list(choices), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(map(repr, close))}?" if close else ""


def weights_problem(name: str, pretrained: str, architectures: list[str] | None,
                    tags: dict[str, list[str]] | None) -> tuple[type, str] | None:
    """(error type, message) when open_clip cannot build `name` with `pretrained`, or None when it can. The
    name is checked only against known `architectures` and a tag only against known `tags`."""
    folder = local_dir_folder(name)
    if folder is not None:
        if pretrained.lower() not in RANDOM_WEIGHTS:
            return ValueError, (f"model {name!r} carries its own weights (open_clip ignores pretrained for a "
                                f"local-dir folder); set pretrained to none, not {pretrained!r}")
        if not (folder / "open_clip_config.json").is_file():
            return FileNotFoundError, (f"model {name!r}: {folder / 'open_clip_config.json'} not found; a local-dir "
                                       "folder holds open_clip_config.json and the weights (open_clip_model.safetensors)")
        return None
    if architectures is not None and name not in architectures:
        return ValueError, (f"model name {name!r} is not an open_clip architecture (open_clip {installed_version()}; "
                            f"see open_clip.list_models()){_suggest(name, architectures)}")
    if is_checkpoint_path(pretrained):
        path = Path(pretrained).expanduser()
        if not path.is_file():
            return FileNotFoundError, f"checkpoint for model {name!r} not found: {path}"
    elif is_tag(pretrained) and tags is not None and pretrained not in tags.get(name, []):
        known = tags.get(name, [])
        return ValueError, (f"{pretrained!r} is not an open_clip tag of {name!r}; its tags are {known}"
                            f"{_suggest(pretrained, known)} (a local checkpoint is a path: with a / or a .pt, .pth, "
                            f".bin or .safetensors suffix)")
    return None


def model_errors(models: list[dict], cache_dir=CACHE_DIR) -> list[str]:
    """A message for each configured model that open_clip cannot build, naming its entry; open_clip is imported
    (once per installation) only where a model names a tag."""
    named = [(index, model) for index, model in enumerate(models) if "trained" not in model]
    architectures = installed_architectures()
    tags = installed_tags(cache_dir) if any(is_tag(m["pretrained"]) for _, m in named) else None
    messages = []
    for index, model in named:
        problem = weights_problem(model["name"], model["pretrained"], architectures, tags)
        if problem:
            messages.append(f"models[{index}] (id {model['id']!r}): {problem[1]}")
    return messages
