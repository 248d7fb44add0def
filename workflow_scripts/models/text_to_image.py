"""Rule `generate_images`: images from a text-to-image model (diffusers) for prompts naming several objects of a
dataset's vocabulary, for paper B's question whether such a model draws the first-named object most prominently
(rule prompt_order measures the images).

Each drawn set of n objects is prompted in all n cyclic rotations, so that every object of a set comes first once
and an order effect is not confused with which objects a set holds. Each (prompt, seed) image has its own random
generator, seeded from the seed and the prompt id, so its starting noise does not depend on which batch it was
generated in (on the CPU its pixels do not either, tests/test_text_to_image.py; on CUDA, kernels chosen by batch
size may change the last bits).

A model is named by a Hugging Face hub id (read from the Hugging Face cache where the prefetch put it) or by a local
folder written by a pipeline's `save_pretrained`, as in models/hf_models.py. Output: one PNG per (prompt, seed) in
the images folder, and a table with one row per image (prompt_id, set_id, n_objects, rotation, objects in prompt
order, prompt, seed, image: the file name in the folder).
"""
import json
import sys
import zlib
from collections.abc import Iterator
from math import comb
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import numpy as np
import pyarrow as pa
import torch

from workflow_scripts.models.hf_models import describe_hf_weights, describe_hub_weights, is_local_folder, weight_files

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
IMAGE_ROW_TYPES = {"prompt_id": pa.string(), "set_id": pa.string(), "n_objects": pa.int32(), "rotation": pa.int32(),
                   "objects": pa.list_(pa.string()), "prompt": pa.string(), "seed": pa.int64(), "image": pa.string()}


def with_article(name: str) -> str:
    """The name with its indefinite article, chosen by its first letter ("an apple", "a cat")."""
    return ("an " if name[:1].lower() in "aeiou" else "a ") + name


def prompt_rows(names: list[str], objects_per_prompt: list[int], prompts_per_count: int, seed: int,
                template: str = "a photo of {objects}") -> list[dict]:
    """For each count n, `prompts_per_count` distinct sets of n distinct names (seeded draws, each count its own
    generator), each set in all n cyclic rotations of its drawn order: rows {prompt_id, set_id, n_objects, rotation,
    objects (prompt order), prompt}. The prompt is `template` with {objects} replaced by the names, each with its
    article, joined with " and "."""
    if "{objects}" not in template:
        raise ValueError(f"prompt template {template!r} has no {{objects}} placeholder")
    rows = []
    for n in objects_per_prompt:
        if not 1 <= n <= len(names):
            raise ValueError(f"objects_per_prompt {n}: a prompt names 1 to {len(names)} objects (the vocabulary's "
                             "names)")
        if prompts_per_count > comb(len(names), n):
            raise ValueError(f"prompts_per_count {prompts_per_count}: only {comb(len(names), n)} distinct sets of "
                             f"{n} of the {len(names)} names exist")
        rng = np.random.default_rng([seed, n])
        drawn, seen = [], set()
        while len(drawn) < prompts_per_count:
            chosen = [names[i] for i in rng.choice(len(names), size=n, replace=False)]
            if frozenset(chosen) not in seen:
                seen.add(frozenset(chosen))
                drawn.append(chosen)
        for set_index, chosen in enumerate(drawn):
            set_id = f"n{n}-s{set_index:04d}"
            for rotation in range(n):
                objects = chosen[rotation:] + chosen[:rotation]
                prompt = template.format(objects=" and ".join(map(with_article, objects)))
                rows.append({"prompt_id": f"{set_id}-r{rotation}", "set_id": set_id, "n_objects": n,
                             "rotation": rotation, "objects": objects, "prompt": prompt})
    return rows


def describe_pipeline_weights(name: str) -> str:
    """Which weights a pipeline `name` stands for: a local folder's weight files (those of each component's
    subfolder) with their sha256, or a hub id with the revision cached here."""
    if is_local_folder(name):
        folder = Path(name).expanduser().resolve()
        components = [path for path in sorted(folder.iterdir()) if path.is_dir() and weight_files(path)]
        if not components:
            raise FileNotFoundError(f"{folder}: no such pipeline folder, or no component subfolder with weights in it")
        return "; ".join(describe_hf_weights(str(path)) for path in components)
    return describe_hub_weights(name, "model_index.json")


def load_pipeline(name: str, device: str, precision: str, offline: bool):
    """(diffusers text-to-image pipeline on `device`, record {model, weights, device, precision, safety_checker}).

    `name` is a hub id or a local folder; `offline` reads the Hugging Face cache only. The pipeline computes in
    `precision` (fp16, bf16, fp32) on CUDA and in fp32 on every other device. A safety checker (Stable Diffusion's)
    is turned off: it blacks out the images it flags, which would read as images without any object.
    """
    from diffusers import AutoPipelineForText2Image

    from workflow_scripts.models.embed import precision_used
    from workflow_scripts.models.hub import hub_offline

    if precision not in DTYPES:
        raise ValueError(f"precision {precision!r}: expected one of {sorted(DTYPES)}")
    used = precision_used(device, precision)
    path = str(Path(name).expanduser()) if is_local_folder(name) else name
    with hub_offline(offline):
        try:
            pipeline = AutoPipelineForText2Image.from_pretrained(path, dtype=DTYPES[used],
                                                                 local_files_only=offline)
        except OSError as error:
            if is_local_folder(name) or not offline:
                raise
            raise RuntimeError(
                f"text-to-image model {name}: not in the Hugging Face cache, and it is read with the hub offline. "
                "Run the prefetch where there is internet with the same HF_HOME, or name a local folder written by "
                "the pipeline's save_pretrained") from error
    if getattr(pipeline, "safety_checker", None) is not None:
        pipeline.safety_checker = None
        safety = "the pipeline's safety checker was turned off (it blacks out the images it flags)"
    else:
        safety = "the pipeline has no safety checker"
    pipeline.set_progress_bar_config(disable=True)
    record = {"model": name, "weights": describe_pipeline_weights(name), "pipeline": type(pipeline).__name__,
              "scheduler": type(pipeline.scheduler).__name__, "device": device, "precision": used,
              "safety_checker": safety}
    return pipeline.to(device), record


def image_seed(seed: int, prompt_id: str) -> int:
    """The generator seed of one (prompt, seed) image: the same whatever else is generated with it."""
    return seed * 1_000_003 + zlib.crc32(prompt_id.encode())


def generate(pipeline, rows: list[dict], seeds: list[int], steps: int, guidance_scale: float, height: int, width: int,
             batch_size: int, device: str, progress: bool) -> Iterator[tuple[dict, int, object]]:
    """(prompt row, seed, PIL image) for every prompt row and seed, seed-major, generated `batch_size` at a time
    (yielded batch by batch, so that not every image is held in memory)."""
    from tqdm import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    jobs = [(row, seed) for seed in seeds for row in rows]
    with torch.inference_mode():
        for start in tqdm(range(0, len(jobs), batch_size), desc="generating", unit="batch", disable=not progress,
                          mininterval=10):
            batch = jobs[start:start + batch_size]
            generators = [torch.Generator(device).manual_seed(image_seed(seed, row["prompt_id"]))
                          for row, seed in batch]
            images = pipeline(prompt=[row["prompt"] for row, _ in batch], num_inference_steps=steps,
                              guidance_scale=guidance_scale, height=height, width=width, generator=generators).images
            yield from ((row, seed, image) for (row, seed), image in zip(batch, images))


def image_name(prompt_id: str, seed: int) -> str:
    return f"{prompt_id}-seed{seed}.png"


def verified_in_cache(records) -> bool:
    """Whether the model's prefetch record (a path, or a list of at most one, as rules name optional inputs) says
    that it was verified in the Hugging Face cache: then it is read from there with the hub offline."""
    paths = [records] if isinstance(records, str) else list(records or [])
    return any(json.loads(Path(path).read_text())["source"] == "hf_cache" for path in paths)


def main(snakemake) -> None:
    from workflow_scripts.common.devices import resolve_device
    from workflow_scripts.common.files import write_atomically
    from workflow_scripts.common.logs import start_job
    from workflow_scripts.common.parquet import write_table
    from workflow_scripts.datasets.items import read_items

    logger = start_job(snakemake)
    settings = snakemake.params.text_to_image
    torch.set_num_threads(max(1, snakemake.threads))
    _, vocabulary = read_items(snakemake.input.item_table)
    rows = prompt_rows(list(vocabulary.objects), settings["objects_per_prompt"], settings["prompts_per_count"],
                       snakemake.params.seed, settings["template"])
    device = resolve_device(settings["device"])
    pipeline, record = load_pipeline(settings["model"], device, settings["precision"],
                                     verified_in_cache(snakemake.input.get("model_record")))
    logger.info("text-to-image model %s on %s in %s: %s; %s", settings["model"], device, record["precision"],
                record["weights"], record["safety_checker"])
    width, height = settings["resolution"]
    seeds = list(range(settings["seeds"]))
    table_rows = []

    def write_images(folder: str) -> None:
        Path(folder).mkdir(parents=True)
        for row, seed, image in generate(pipeline, rows, seeds, settings["steps"], settings["guidance_scale"], height,
                                         width, settings["batch_size"], device, progress=True):
            name = image_name(row["prompt_id"], seed)
            image.save(Path(folder) / name)
            table_rows.append({**row, "seed": seed, "image": name})

    write_atomically(snakemake.output.images, write_images)
    provenance = {**record, "item_table": str(snakemake.input.item_table), "steps": settings["steps"],
                  "guidance_scale": settings["guidance_scale"], "resolution": [width, height], "seeds": seeds,
                  "template": settings["template"], "objects_per_prompt": settings["objects_per_prompt"],
                  "prompts_per_count": settings["prompts_per_count"], "seed": snakemake.params.seed}
    write_table(pa.Table.from_pylist(table_rows, schema=pa.schema(IMAGE_ROW_TYPES)), snakemake.output.table,
                provenance)
    logger.info("%d prompts x %d seeds: %d images", len(rows), len(seeds), len(table_rows))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
