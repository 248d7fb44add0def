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
    architectures = installed_architectures()
    tags = installed_tags(cache_dir) if any(is_tag(m["pretrained"]) for m in models) else None
    messages = []
    for index, model in enumerate(models):
        problem = weights_problem(model["name"], model["pretrained"], architectures, tags)
        if problem:
            messages.append(f"models[{index}] (id {model['id']!r}): {problem[1]}")
    return messages
