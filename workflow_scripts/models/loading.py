"""Loading CLIP models with open_clip, and the provenance of their weights.

A model is (name, pretrained): `pretrained` is an open_clip tag (downloaded by open_clip when the hub
is reachable, read from its cache otherwise), a local checkpoint path, or "none" for random weights.
Where the rule's prefetch record (rules/models.smk) says a tag's weights were verified in the Hugging Face
cache, the job reads that cache with the hub offline and never contacts the network.
"""

import json
import logging
from pathlib import Path

import open_clip
import torch

from workflow_scripts.common.files import sha256_of
from workflow_scripts.common.parquet import TRAINED_HERE
from workflow_scripts.models.catalogue import (
    RANDOM_WEIGHTS,
    is_checkpoint_path,
    local_dir_folder,
    weights_problem,
)
from workflow_scripts.models.hub import hub_offline, hub_offline_reason

def describe_weights(name: str, pretrained: str | None, seed: int) -> dict:
    """Provenance of a model's weights, checked before any weights are loaded.

    Raises a ValueError or FileNotFoundError naming the model, tag or path when they cannot be used.
    """
    pretrained = "none" if pretrained is None else str(pretrained)
    problem = weights_problem(name, pretrained, open_clip.list_models(),
                              {name: open_clip.list_pretrained_tags_by_model(name)})
    if problem:
        error_type, message = problem
        raise error_type(message)
    if local_dir_folder(name) is not None:
        return {"model": name, "pretrained": "none", "weights": local_dir_weights(local_dir_folder(name))}
    if pretrained.lower() in RANDOM_WEIGHTS:
        return {"model": name, "pretrained": "none", "weights": f"random initialisation, torch seed {seed}"}
    if is_checkpoint_path(pretrained):
        path = Path(pretrained).expanduser()
        return {"model": name, "pretrained": str(path), "weights": f"local checkpoint sha256 {sha256_of(path)}"}
    return {"model": name, "pretrained": pretrained, "weights": f"open_clip pretrained tag {name}/{pretrained}"}


def local_dir_weights(folder: Path) -> str:
    """What a local-dir checkpoint folder's weights are: the sha256 of the weights file open_clip loads from it
    and, for a CLIP trained by this workflow (a training.json beside them), the run, its data and the step."""
    from open_clip.factory import _find_checkpoint_in_dir  # open_clip's own choice among several files

    found = _find_checkpoint_in_dir(folder)
    if found is None:
        raise FileNotFoundError(f"{folder}: no weights file (open_clip_model.safetensors) in this local-dir folder")
    found = Path(found)
    weights = f"open_clip local-dir checkpoint {folder}, {found.name} sha256 {sha256_of(found)}"
    record_path = folder / "training.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        negatives = "with hard negatives" if record.get("hard_negatives") else "without hard negatives"
        origin = (f"fine-tuned from model {record['init']} {negatives}" if record.get("init")
                  else f"from scratch, {negatives}")
        datasets = record["dataset"] if isinstance(record["dataset"], str) else "+".join(record["dataset"])
        weights = (f"{TRAINED_HERE} (run {record['run']}: dataset "
                   f"{datasets}, {record['train_items']} train items, caption order "
                   f"{record['caption_order']}, seed {record['seed']}, {origin}; step {record['step']} of "
                   f"{record['steps']}); " + weights)
    return weights


def cached_weights_file(name: str, tag: str) -> str | None:
    """The file in the Hugging Face cache that open_clip loads for a tag (looked up with the hub offline),
    or None where it is not cached."""
    from open_clip.pretrained import download_pretrained

    with hub_offline():
        try:
            return download_pretrained(open_clip.get_pretrained_cfg(name, tag)) or None
        except Exception:
            return None


def uncached_weights_message(name: str, tag: str, why: str) -> str:
    """The error for a tag whose weights are not cached where the hub may not be used, with both ways out."""
    import huggingface_hub.constants as hub

    return (
        f"weights {name}/{tag} are not in the local cache ({hub.HF_HUB_CACHE}) and {why}. "
        f"Either fetch them once where there is internet, into the cache this machine reads "
        f"(HF_HOME, default ~/.cache/huggingface): on a cluster's login node run `snakemake prefetch --cores 1` "
        f"(with your --configfile), or e.g. python -c \"import open_clip; "
        f"open_clip.create_model_and_transforms('{name}', pretrained='{tag}')\"; "
        f"or set this model's pretrained to a local checkpoint path (or 'none' for random weights)."
    )


QUICKGELU_SUFFIX = "-quickgelu"


def activation_of(model) -> str:
    """The MLP activation the model runs: "QuickGELU" (OpenAI's CLIPs) or "GELU" (open_clip's default)."""
    quick = any(isinstance(module, open_clip.transformer.QuickGELU) for module in model.modules())
    return "QuickGELU" if quick else "GELU"


def preprocessing_of(preprocess) -> str:
    """The image preprocessing in one line: each torchvision step with its settings."""
    steps = getattr(preprocess, "transforms", [preprocess])
    return "; ".join(" ".join(repr(step).split()) for step in steps)


def activation_warning(name: str, pretrained: str, activation: str) -> str | None:
    """A warning for a local checkpoint loaded under an architecture that runs GELU where open_clip also registers
    its QuickGELU twin: weights fine-tuned from OpenAI's CLIP (NegCLIP, ...) were trained with QuickGELU, and
    running them with GELU shifts every score silently (sugar-crepe issue 7). The weights cannot tell which."""
    twin = name + QUICKGELU_SUFFIX
    if not is_checkpoint_path(pretrained) or activation != "GELU" or twin not in open_clip.list_models():
        return None
    return (f"checkpoint {pretrained} is loaded as {name}, which runs GELU; if these weights descend from OpenAI's "
            f"CLIP (NegCLIP and most fine-tunes of ViT-B/32 do), they were trained with QuickGELU and every score "
            f"shifts: name the architecture {twin} instead. Ignore this if the checkpoint was trained with GELU.")


def load_model(name: str, pretrained: str | None, device: str = "cpu", seed: int = 0,
               offline: bool | str | None = None):
    """(model in eval mode, image preprocess, tokenizer, provenance dict: the weights, and the activation and
    image preprocessing the model runs, which every embedding file records).

    For a tag, `offline` says whether open_clip may download (False) or reads the Hugging Face cache only,
    making no request at all (True, or a string saying why); None (the default) reads the cache only where
    the hub cannot be reached or HF_HUB_OFFLINE is set. Reading the cache only, weights that are not cached
    fail at once with both ways out.
    """
    provenance = describe_weights(name, pretrained, seed)
    source = provenance["pretrained"]
    if local_dir_folder(name) is not None:  # config and weights from the folder (open_clip ignores pretrained)
        model, _, preprocess = open_clip.create_model_and_transforms(name)
        tokenizer = open_clip.get_tokenizer(name)
    elif source == "none":
        torch.manual_seed(seed)
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=None)
        tokenizer = open_clip.get_tokenizer(name)
    elif is_checkpoint_path(source):
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=source)
        tokenizer = open_clip.get_tokenizer(name)
    else:
        why = hub_offline_reason() if offline is None else offline
        if why is True:
            why = "the hub is kept offline here"
        with hub_offline(bool(why)):
            try:
                model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=source)
                tokenizer = open_clip.get_tokenizer(name)  # some tokenizers come from the hub too
            except Exception as error:
                if not why or cached_weights_file(name, source):  # cached but unusable: open_clip's error says why
                    raise
                raise RuntimeError(uncached_weights_message(name, source, why)) from error
    provenance = {**provenance, "activation": activation_of(model), "preprocessing": preprocessing_of(preprocess)}
    warning = activation_warning(name, source, provenance["activation"])
    if warning:
        logging.getLogger("clip_binding").warning("%s", warning)
    return model.to(device).eval(), preprocess, tokenizer, provenance


def offline_from_record(record_path) -> str | None:
    """The reason to read the Hugging Face cache only, where a prefetch record says the weights were verified
    there with the hub offline; None otherwise (random weights, a local checkpoint, or no record)."""
    if not record_path:
        return None
    import huggingface_hub.constants as hub

    record = json.loads(Path(record_path).read_text())
    if record["source"] != "hf_cache":
        return None
    why = f"the prefetch record {record_path} says they were verified in {record['hf_hub_cache']}"
    if Path(record["hf_hub_cache"]).resolve() != Path(hub.HF_HUB_CACHE).resolve():
        logging.getLogger("clip_binding").warning(
            "weights were prefetched into %s but this job reads %s (set HF_HOME alike on both)",
            record["hf_hub_cache"], hub.HF_HUB_CACHE,
        )
    return why


def load_configured_model(snakemake):
    """(model, preprocess, tokenizer, provenance, device) for a rule whose params hold the config's
    `model` entry, `embedding` settings and `seed`; torch uses the rule's threads. A rule whose input
    `weights` is the model's prefetch record reads prefetched tag weights with the hub offline."""
    from workflow_scripts.common.devices import resolve_device

    settings, model_cfg = snakemake.params.embedding, snakemake.params.model
    device = resolve_device(settings["device"])
    torch.set_num_threads(max(1, snakemake.threads))
    offline = offline_from_record(snakemake.input.get("weights"))
    model, preprocess, tokenizer, provenance = load_model(
        model_cfg["name"], model_cfg["pretrained"], device, snakemake.params.seed, offline=offline
    )
    logging.getLogger("clip_binding").info(
        "model %s on %s: %s%s", model_cfg["id"], device, provenance["weights"],
        " (read from the prefetched cache, hub offline)" if offline else "",
    )
    return model, preprocess, tokenizer, {**provenance, "model_id": model_cfg["id"]}, device
