"""Models other than CLIP loaded by name through transformers (the caption-order analysis' open-vocabulary
detector, segmenter and object-listing LLM), and the provenance of their weights.

A model is named by a Hugging Face hub id (`IDEA-Research/grounding-dino-base`), read from the Hugging Face
cache (HF_HOME) where the prefetch rule put it, or by a local folder written by `save_pretrained` (a path that
exists, or one starting with `/`, `.` or `~`). As for CLIP (models/loading.py), the prefetch downloads where the
hub is reachable and then proves that the model loads from the cache with the hub offline, as compute nodes
without internet will load it.
"""
import re
from collections.abc import Callable
from pathlib import Path

from workflow_scripts.common.files import sha256_of

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def is_local_folder(name: str) -> bool:
    """Whether `name` names a local folder rather than a hub id (hub ids also contain a '/')."""
    return str(name).startswith(("/", ".", "~")) or Path(name).expanduser().is_dir()


def model_slug(name: str) -> str:
    """A file name for a model's prefetch record: the hub id or path with every run of other characters as '-'."""
    return re.sub(r"[^A-Za-z0-9_.]+", "-", str(name)).strip("-.") or "model"


def weight_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.suffix in WEIGHT_SUFFIXES)


def cached_revision(repo_id: str, marker: str = "config.json") -> str | None:
    """The commit of the cached snapshot of `repo_id` (from its `marker` file: a model's config.json, a diffusers
    pipeline's model_index.json), or None where it is not cached."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, marker)
    return Path(found).parent.name if isinstance(found, str) else None


def describe_hub_weights(repo_id: str, marker: str = "config.json") -> str:
    """A hub id's weights: the revision cached here (cached_revision)."""
    revision = cached_revision(repo_id, marker)
    return f"Hugging Face hub {repo_id}, " + (f"revision {revision}" if revision else "not cached here")


def local_weight_files(name: str) -> list[Path]:
    """The weight files of the local model folder `name`; FileNotFoundError naming the folder when it does not
    exist or holds none."""
    folder = Path(name).expanduser().resolve()
    files = weight_files(folder) if folder.is_dir() else []
    if not files:
        raise FileNotFoundError(f"{folder}: no such model folder, or no weights file ({', '.join(WEIGHT_SUFFIXES)}) "
                                "in it")
    return files


def describe_hf_weights(name: str) -> str:
    """Which weights `name` stands for: a local folder's weight files with their sha256, or a hub id with the
    revision cached here. FileNotFoundError naming the folder when it holds no weights."""
    if is_local_folder(name):
        files = local_weight_files(name)
        folder = files[0].parent
        return f"local folder {folder}: " + ", ".join(f"{path.name} sha256 {sha256_of(path)}" for path in files)
    return describe_hub_weights(name)


def prefetch_hf(name: str, load: Callable[[str, bool], object], describe: Callable[[str], str] = describe_hf_weights
                ) -> dict:
    """Fetch a transformers (or diffusers) model where the hub is reachable and prove it loads offline; the record
    of what was verified. `load(name, offline)` builds the model (and its processor) as the analysis will;
    `describe(name)` says which weights it stands for."""
    from workflow_scripts.models.hub import hub_offline, hub_offline_reason

    if is_local_folder(name):
        load(name, True)
        return {"model": name, "source": "local_folder", "weights": describe(name),
                "verified": "model and processor built from the folder"}
    why = hub_offline_reason()
    if why is None:
        load(name, False)
    with hub_offline():
        try:
            load(name, True)
        except OSError as error:
            raise RuntimeError(
                f"{name}: not in the Hugging Face cache and the hub cannot be used here ({why}). Run the prefetch "
                "where there is internet with the same HF_HOME, or name a local folder written by save_pretrained"
            ) from error
    return {"model": name, "source": "hf_cache", "weights": describe(name),
            "verified": "model and processor built from the cache with the hub offline"}
