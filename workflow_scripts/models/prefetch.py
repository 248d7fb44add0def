"""Fetch a model's weights where there is internet (a cluster's login node) and prove that they load with the
Hugging Face hub offline, as the compute nodes will read them; the JSON record says what was verified.

- pretrained "none": random weights, nothing to fetch.
- a local checkpoint: the file must exist; its sha256 is recorded.
- an open_clip tag: open_clip downloads the weights (and anything else it reads from the hub) into the Hugging
  Face cache (HF_HOME) where the hub is reachable, then the model is built from the cache with the hub offline;
  where the hub cannot be reached and the weights are not cached, this fails at once with the ways out.
"""
import json
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import huggingface_hub
import huggingface_hub.constants as hub
import open_clip
import torch

from workflow_scripts.common.files import sha256_of, write_atomically
from workflow_scripts.models.loading import (
    cached_weights_file,
    describe_weights,
    hub_offline_reason,
    load_model,
)
from workflow_scripts.models.catalogue import is_checkpoint_path, local_dir_folder


def file_record(path) -> dict:
    path = Path(path)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": sha256_of(path)}


def prefetch(name: str, pretrained: str | None, seed: int = 0) -> dict:
    """Fetch and verify one model's weights; the record of what was fetched and verified.

    Raises ValueError or FileNotFoundError (describe_weights) for unusable names, tags or paths, and a
    RuntimeError naming the model and the fixes for a tag that is not cached where the hub cannot be used.
    """
    weights = describe_weights(name, pretrained, seed)
    record = {
        **weights,
        "source": None,
        "files": [],
        "verified": None,
        "hf_home": hub.HF_HOME,
        "hf_hub_cache": hub.HF_HUB_CACHE,
        "open_clip": open_clip.__version__,
        "huggingface_hub": huggingface_hub.__version__,
    }
    source = weights["pretrained"]
    folder = local_dir_folder(name)
    if folder is not None:
        return {**record, "source": "local_dir", "files": [file_record(p) for p in sorted(folder.iterdir())],
                "verified": "the folder's config and weights exist; their sha256 are recorded"}
    if source == "none":
        return {**record, "source": "random", "verified": "nothing to fetch: random weights, seeded"}
    if is_checkpoint_path(source):
        return {**record, "source": "local_checkpoint", "files": [file_record(source)],
                "verified": "the checkpoint file exists; its sha256 is recorded"}
    why = hub_offline_reason()
    if why is None:  # download into the cache (weights, and configs or tokenizers that open_clip reads from the hub)
        load_model(name, source, seed=seed, offline=False)
    # The proof: built from the cache alone, as a compute node without internet will build it.
    load_model(name, source, seed=seed, offline=why or "the verification reads the cache only")
    return {
        **record,
        "source": "hf_cache",
        "hf_hub_repo": open_clip.get_pretrained_cfg(name, source)["hf_hub"],
        "files": [file_record(cached_weights_file(name, source))],
        "verified": "model (strict state_dict load) and tokenizer built from the cache with the hub offline",
    }


def main(snakemake) -> None:
    from workflow_scripts.common.logs import start_job

    logger = start_job(snakemake)
    torch.set_num_threads(max(1, snakemake.threads))
    model = snakemake.params.model
    record = {"model_id": model["id"], **prefetch(model["name"], model["pretrained"], snakemake.params.seed)}
    Path(snakemake.output[0]).parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=2) + "\n"
    write_atomically(snakemake.output[0], lambda partial: Path(partial).write_text(text))
    logger.info("model %s: %s; %s", model["id"], record["weights"], record["verified"])
    for file in record["files"]:
        logger.info("%s sha256 %s", file["path"], file["sha256"])


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
