"""A small CLIP trained inside the workflow (rule train_clip), so that an offline run studies a CLIP that has
learnt something instead of random weights.

The model is an open_clip CLIP (`open_clip.model.CLIP`: a ViT image tower, a text transformer, open_clip's BPE
tokenizer) built from the config's widths and depths. It is trained contrastively, as CLIP was: the symmetric
InfoNCE loss over each batch's image-caption similarities with a learnable temperature (open_clip's ClipLoss),
random batches of the training split, no hard negatives; AdamW with linear warm-up and cosine decay. Each
checkpoint is a folder in open_clip's own `local-dir:` format (open_clip_config.json with the model config,
open_clip_model.safetensors), so open_clip loads it like any published model:
`open_clip.create_model_and_transforms("local-dir:<folder>")`. training.json beside them records the settings,
the data the run saw and the loss curve.

`caption_order` changes only the order in which each training caption names its objects (paper B's data-order
hypothesis): "as_generated" keeps the dataset's captions, "large_first" names the largest object first (ties
keep their order), "random" a seeded random order per item.
"""

import json
import math
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import numpy as np
import torch

from workflow_scripts.models.catalogue import checkpoint_steps, model_config

CAPTION_ORDERS = ("as_generated", "large_first", "random")
SIZE_RANK = {"large": 0, "small": 1}  # the sizes of rendered objects, largest first


def reorder_caption(row: dict, vocabulary, order: str, rng) -> str:
    """The item's caption naming the same phrases in `order` (CAPTION_ORDERS); ValueError naming the item when
    its caption does not name its objects in object order (the reordering would then change more than order)."""
    if order not in CAPTION_ORDERS:
        raise ValueError(f"caption_order {order!r}; expected one of {CAPTION_ORDERS}")
    if order == "as_generated":
        return row["caption"]
    objects = row["objects"]
    names, attributes = [o["object"] for o in objects], [o["attribute"] for o in objects]
    if vocabulary.caption(names, attributes) != row["caption"]:
        raise ValueError(f"item {row['item_id']}: caption {row['caption']!r} does not name its objects in object "
                         f"order, so caption_order {order!r} cannot reorder it")
    if order == "large_first":
        sizes = [o.get("size") for o in objects]
        if any(size not in SIZE_RANK for size in sizes):
            raise ValueError(f"item {row['item_id']}: object sizes {sizes}; caption_order 'large_first' needs "
                             f"every object's size to be one of {list(SIZE_RANK)}")
        permutation = sorted(range(len(objects)), key=lambda i: SIZE_RANK[sizes[i]])
    else:
        permutation = [int(i) for i in rng.permutation(len(objects))]
    return vocabulary.caption([names[i] for i in permutation], [attributes[i] for i in permutation])


def training_captions(rows: list[dict], vocabulary, order: str, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [reorder_caption(row, vocabulary, order, rng) for row in rows]


def learning_rate(step: int, settings: dict) -> float:
    """Linear warm-up over `warmup_steps`, then cosine decay to 0 at `steps` (open_clip's cosine schedule)."""
    lr, warmup, steps = settings["lr"], settings["warmup_steps"], settings["steps"]
    if step < warmup:
        return lr * (step + 1) / warmup
    return 0.5 * lr * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def save_checkpoint(model, config: dict, folder, record: dict) -> None:
    """An open_clip local-dir folder: open_clip_config.json, open_clip_model.safetensors, and training.json."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": config, "preprocess_cfg": {}}, indent=1))
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))
    (folder / "training.json").write_text(json.dumps(record, indent=1))


def load_checkpoint(folder, device: str = "cpu"):
    """(model in eval mode, image preprocess, tokenizer) of a checkpoint folder, through open_clip."""
    import open_clip

    name = f"local-dir:{folder}"
    model, _, preprocess = open_clip.create_model_and_transforms(name, device=device)
    return model.eval(), preprocess, open_clip.get_tokenizer(name)


def clip_loss(image_features, text_features, logit_scale):
    """CLIP's symmetric InfoNCE (open_clip's ClipLoss): the mean of the image-to-text and text-to-image
    cross-entropies of the B x B logits logit_scale * image_features @ text_features.T, the matching pairs
    on the diagonal."""
    from open_clip.loss import ClipLoss

    return ClipLoss()(image_features, text_features, logit_scale)


def train_clip(images: torch.Tensor, captions: list[str], settings: dict, folder, record: dict,
               device: str = "cpu", progress: bool = False):
    """Train a CLIP of `settings["architecture"]` on preprocessed `images` (n, 3, s, s) and their `captions`,
    writing each catalogue.checkpoint_steps folder under `folder` (step-NNNNNN) with `record` and the loss curve so far
    in its training.json. Returns (the trained model in eval mode, the loss of each step). Seeded by settings["seed"]: the same settings, data and
    device give the same weights."""
    import open_clip
    from tqdm import tqdm

    if len(captions) != len(images):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    batch = settings["batch_size"]
    if len(images) < batch:
        raise ValueError(f"{len(images)} training items, fewer than one batch of {batch}: lower "
                         f"batch_size or train on more items")
    config = model_config(settings["architecture"])
    torch.manual_seed(settings["seed"])
    model = open_clip.model.CLIP(**config).to(device)
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=config["text_cfg"]["context_length"])
    tokens = tokenizer(captions)
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings["lr"], betas=(0.9, 0.98), eps=1e-6,
                                  weight_decay=settings["weight_decay"])
    generator = torch.Generator().manual_seed(settings["seed"])
    saves, losses = checkpoint_steps(settings["steps"], settings["checkpoints"]), []
    order = torch.empty(0, dtype=torch.long)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda")
                else torch.autocast("cpu", enabled=False))

    def save(step):
        save_checkpoint(model, config, Path(folder) / f"step-{step:06d}",
                        {**record, "step": step, "steps": settings["steps"], "items_seen": step * batch,
                         "loss": losses})

    for step in tqdm(range(settings["steps"] + 1), desc="train", unit="step", disable=not progress):
        if step in saves:
            save(step)
        if step == settings["steps"]:
            break
        if len(order) < batch:  # a new epoch: a fresh random order of the items, the last partial batch dropped
            order = torch.randperm(len(images), generator=generator)
        index, order = order[:batch], order[batch:]
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(step, settings)
        model.train()
        with autocast:
            image_features, text_features, logit_scale = model(images[index].to(device), tokens[index].to(device))
            loss = clip_loss(image_features, text_features, logit_scale)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))  # CLIP's cap on the temperature
        losses.append(float(loss.detach()))
    return model.eval(), losses


def training_images(rows: list[dict], items_path, image_size: int, rendered: bool) -> torch.Tensor:
    """The train items' images, decoded (and checked) as embed_images decodes them and preprocessed as open_clip
    preprocesses a local-dir checkpoint's inputs (resize, centre crop to `image_size`, OpenAI normalisation)."""
    import open_clip
    import pyarrow as pa
    from torch.utils.data import DataLoader

    from workflow_scripts.models.embed import ImageFiles, image_inputs

    paths, item_ids, sizes = image_inputs(pa.Table.from_pylist(rows), items_path)
    files = ImageFiles(paths, open_clip.image_transform(image_size, is_train=False), item_ids, sizes, rendered)
    return torch.cat(list(DataLoader(files, batch_size=256)))


def main(snakemake) -> None:
    import open_clip

    from workflow_scripts.common.devices import resolve_device
    from workflow_scripts.common.files import write_atomically
    from workflow_scripts.common.logs import start_job
    from workflow_scripts.datasets.items import read_items

    logger = start_job(snakemake)
    torch.set_num_threads(max(1, snakemake.threads))
    settings, run = snakemake.params.training, snakemake.wildcards.run
    device = resolve_device(settings["device"])
    rows, vocabulary = read_items(snakemake.input.item_table)
    rows = [row for row in rows if row["split"] == "train"]
    images = training_images(rows, snakemake.input.item_table, settings["architecture"]["image_size"], True)
    captions = training_captions(rows, vocabulary, settings["caption_order"], settings["seed"])
    record = {"run": run, "dataset": settings["dataset"], "caption_order": settings["caption_order"],
              "seed": settings["seed"], "train_items": len(rows), "settings": settings, "device": device,
              "precision": "bf16 autocast" if device.startswith("cuda") else "fp32",
              "open_clip": open_clip.__version__, "torch": torch.__version__,
              "item_ids": [row["item_id"] for row in rows], "captions": captions}
    logger.info("run %s: %d train items of %s, caption order %s, %d steps of %d on %s", run, len(rows),
                settings["dataset"], settings["caption_order"], settings["steps"], settings["batch_size"], device)
    losses = []
    write_atomically(snakemake.output[0], lambda partial: losses.extend(
        train_clip(images, captions, settings, partial, record, device, progress=True)[1]))
    logger.info("loss %.3f at step 1, %.3f at step %d", losses[0], losses[-1], len(losses))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
