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
hypothesis): "as_generated" keeps the dataset's captions, "large_first" names the largest object first and
"large_last" last (the others keeping their order in both), "random" a seeded random order per item. large_last
tells "named first" from "not named last" beside large_first.

A run with `init: <model id>` fine-tunes that model's towers and temperature instead of training from scratch
(paper A's "CLIP fine-tuned" baseline); with `hard_negatives: true` each batch's text side is its B captions and
their B hard negatives (each item's first negative caption), the loss LABCLIP-HNB's (models/losses.hnb_loss).

On the CPU the weights are bit-identical for the same settings and data only at the same thread count, so the
run's `threads` setting, not the cores Snakemake grants, sets torch's.
"""

import json
import math
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import numpy as np
import torch

from workflow_scripts.models.catalogue import checkpoint_steps, local_dir_folder, model_config
from workflow_scripts.models.losses import clip_loss, hnb_loss

CAPTION_ORDERS = ("as_generated", "large_first", "large_last", "random")
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
    if order in ("large_first", "large_last"):
        sizes = [o.get("size") for o in objects]
        if any(size not in SIZE_RANK for size in sizes):
            raise ValueError(f"item {row['item_id']}: object sizes {sizes}; caption_order {order!r} needs "
                             f"every object's size to be one of {list(SIZE_RANK)}")
        sign = 1 if order == "large_first" else -1  # a stable sort: objects of one size keep their order
        permutation = sorted(range(len(objects)), key=lambda i: sign * SIZE_RANK[sizes[i]])
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
    """An open_clip local-dir folder: open_clip_config.json (`config`: {"model_cfg", "preprocess_cfg"}),
    open_clip_model.safetensors, and training.json."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True)
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=1))
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))
    (folder / "training.json").write_text(json.dumps(record, indent=1))


def load_checkpoint(folder, device: str = "cpu"):
    """(model in eval mode, image preprocess, tokenizer) of a checkpoint folder, through open_clip."""
    import open_clip

    name = f"local-dir:{folder}"
    model, _, preprocess = open_clip.create_model_and_transforms(name, device=device)
    return model.eval(), preprocess, open_clip.get_tokenizer(name)


def new_clip(architecture: dict, seed: int):
    """(a randomly initialised open_clip CLIP of the config's `architecture`, its open_clip_config.json, its
    tokenizer), the weights drawn with torch seed `seed`."""
    import open_clip

    config = model_config(architecture)
    torch.manual_seed(seed)
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=config["text_cfg"]["context_length"])
    return open_clip.model.CLIP(**config), {"model_cfg": config, "preprocess_cfg": {}}, tokenizer


def open_clip_config_of(name: str, model) -> dict:
    """The open_clip_config.json that rebuilds `model`, loaded by open_clip as `name`: a local-dir folder's own;
    for a registered architecture open_clip's model config, with quick_gelu where the loaded model uses QuickGELU
    (as OpenAI's weights do), and the model's preprocessing."""
    import open_clip

    folder = local_dir_folder(name)
    if folder is not None:
        return json.loads((folder / "open_clip_config.json").read_text())
    config = open_clip.get_model_config(name)
    if config is None:
        raise ValueError(f"open_clip has no model config for {name!r}, so a fine-tuned copy cannot be saved")
    if any(isinstance(module, open_clip.transformer.QuickGELU) for module in model.modules()):
        config["quick_gelu"] = True
    return {"model_cfg": config, "preprocess_cfg": open_clip.get_model_preprocess_cfg(model)}


def text_tokens(tokenizer, texts: list[str], context_length: int) -> torch.Tensor:
    """Token ids of `texts`; for open_clip's BPE tokenizer a ValueError naming the first text the context would
    cut (a cut caption loses the objects named last, the very ones the data-order experiment moves)."""
    import open_clip

    tokens = tokenizer(texts)
    if isinstance(tokenizer, open_clip.tokenizer.SimpleTokenizer):
        for text, row in zip(texts, tokens):
            if row[-1] != 0 and len(tokenizer.encode(text)) + 2 > context_length:  # + start and end tokens
                raise ValueError(f"caption {text!r} is longer than the context of {context_length} tokens: raise "
                                 f"architecture.context_length")
    return tokens


@torch.no_grad()
def heldout_metrics(model, images: torch.Tensor, tokens: torch.Tensor, captions: list[str], batch_size: int,
                    device: str = "cpu") -> dict:
    """How well `model` pairs held-out images with their captions, measured without any binding test: the
    contrastive loss (CLIP's, as in training) averaged over consecutive batches of `batch_size` items in their
    order (the last partial batch dropped; all items in one batch when they are fewer), and recall@1 over all
    items in both directions, a retrieval counted correct when the retrieved caption (or the retrieved image's
    caption) is the item's caption word for word (two scenes may share a caption)."""
    model.eval()
    features = [model(images[i:i + 256].to(device), tokens[i:i + 256].to(device)) for i in range(0, len(images), 256)]
    image_features = torch.cat([f[0] for f in features]).float()
    text_features = torch.cat([f[1] for f in features]).float()
    scale = features[0][2].float()
    size = min(batch_size, len(images))
    starts = range(0, len(images) - size + 1, size)
    loss = float(np.mean([clip_loss(image_features[i:i + size], text_features[i:i + size], scale).item()
                          for i in starts]))
    ids = {caption: index for index, caption in enumerate(dict.fromkeys(captions))}
    caption_ids = torch.tensor([ids[caption] for caption in captions])
    similarity = image_features @ text_features.T
    image_to_text = caption_ids[similarity.argmax(1).cpu()] == caption_ids
    text_to_image = caption_ids[similarity.argmax(0).cpu()] == caption_ids
    return {"loss": loss, "batch_size": size, "batches": len(starts), "items": len(images),
            "image_to_text_r1": float(image_to_text.float().mean()),
            "text_to_image_r1": float(text_to_image.float().mean())}


def train_clip(images: torch.Tensor, captions: list[str], settings: dict, folder, record: dict,
               device: str = "cpu", progress: bool = False, negatives: list[str] | None = None, start=None,
               heldout: tuple[torch.Tensor, list[str]] | None = None):
    """Train a CLIP on preprocessed `images` (n, 3, s, s) and their `captions`, writing each
    catalogue.checkpoint_steps folder under `folder` (step-NNNNNN) with `record` and the loss curve so far in its
    training.json. `start`: (model, its open_clip_config.json, tokenizer) to fine-tune; None trains a new CLIP of
    `settings["architecture"]`. With `negatives` (one hard-negative caption per item) the loss is LABCLIP-HNB's.
    `heldout`: (images, captions) of items the run does not train on, measured at every checkpoint
    (heldout_metrics, batches of settings["heldout_batch_size"]) into training.json's "heldout". With
    settings["grad_clip"] the gradients' global norm is clipped to it. Returns (the trained model in eval mode,
    the loss of each step). Seeded by settings["seed"]: the same settings, data, device and thread count give the
    same weights."""
    from tqdm import tqdm

    if len(captions) != len(images) or (negatives is not None and len(negatives) != len(images)):
        raise ValueError(f"{len(images)} images but {len(captions)} captions"
                         + ("" if negatives is None else f" and {len(negatives)} hard negatives"))
    batch = settings["batch_size"]
    if len(images) < batch:
        raise ValueError(f"{len(images)} training items, fewer than one batch of {batch}: lower "
                         f"batch_size or train on more items")
    model, config, tokenizer = start or new_clip(settings["architecture"], settings["seed"])
    model = model.to(device)
    context = config["model_cfg"]["text_cfg"].get("context_length", 77)
    tokens = text_tokens(tokenizer, captions, context)
    negative_tokens = None if negatives is None else text_tokens(tokenizer, negatives, context)
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings["lr"], betas=(0.9, 0.98), eps=1e-6,
                                  weight_decay=settings["weight_decay"])
    generator = torch.Generator().manual_seed(settings["seed"])
    saves, losses, measured = checkpoint_steps(settings["steps"], settings["checkpoints"]), [], []
    heldout_tokens = None if heldout is None else text_tokens(tokenizer, heldout[1], context)
    order = torch.empty(0, dtype=torch.long)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda")
                else torch.autocast("cpu", enabled=False))

    def save(step):
        if heldout is not None:
            with autocast:
                measured.append({"step": step, **heldout_metrics(model, heldout[0], heldout_tokens, heldout[1],
                                                                 settings["heldout_batch_size"], device)})
        save_checkpoint(model, config, Path(folder) / f"step-{step:06d}",
                        {**record, "step": step, "steps": settings["steps"], "items_seen": step * batch,
                         "loss": losses, "heldout": measured})

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
        texts = tokens[index] if negative_tokens is None else torch.cat([tokens[index], negative_tokens[index]])
        with autocast:
            image_features, text_features, logit_scale = model(images[index].to(device), texts.to(device))
            if negative_tokens is None:
                loss = clip_loss(image_features, text_features, logit_scale)
            else:
                loss = hnb_loss(image_features, text_features[:batch], text_features[batch:], model.logit_scale)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        if settings.get("grad_clip"):
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings["grad_clip"])
        optimiser.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))  # CLIP's cap on the temperature
        losses.append(float(loss.detach()))
    return model.eval(), losses


def hard_negative_captions(rows: list[dict]) -> list[str]:
    """Each item's first negative caption (for a two-object CLEVR scene its attribute swap, as LABCLIP-HNB uses);
    ValueError naming the first item that has none."""
    missing = next((row["item_id"] for row in rows if not row["negative_captions"]), None)
    if missing is not None:
        raise ValueError(f"item {missing} has no negative caption; hard_negatives needs one for every train item")
    return [row["negative_captions"][0] for row in rows]


def items_digest(item_ids: list[str]) -> str:
    """A short digest of an item list: runs whose held-out measures compare have the same one."""
    import hashlib

    return hashlib.sha256("\n".join(item_ids).encode()).hexdigest()[:16]


def training_images(rows: list[dict], items_path, transform, rendered: bool) -> torch.Tensor:
    """The train items' images, decoded (and checked) as embed_images decodes them, through `transform` (the
    model's own preprocessing, as embed_images applies it)."""
    import pyarrow as pa
    from torch.utils.data import DataLoader

    from workflow_scripts.models.embed import ImageFiles, image_inputs

    inputs = image_inputs(pa.Table.from_pylist(rows), items_path)
    files = ImageFiles(inputs["paths"], transform, inputs["item_ids"], inputs["sizes"], rendered, inputs["crops"])
    return torch.cat(list(DataLoader(files, batch_size=256)))[inputs["rows"]]


def starting_point(init: dict | None, settings: dict, device: str, offline):
    """(start for train_clip, image preprocessing, the initial weights' provenance): None, open_clip's eval
    preprocessing at the architecture's image size and "random" for a new CLIP; for `init` (a configured model
    entry) that model as loading.load_model loads it."""
    import open_clip

    if init is None:
        return None, open_clip.image_transform(settings["architecture"]["image_size"], is_train=False), None
    from workflow_scripts.models.loading import load_model

    model, preprocess, tokenizer, provenance = load_model(init["name"], init["pretrained"], device,
                                                          settings["seed"], offline=offline)
    return (model, open_clip_config_of(init["name"], model), tokenizer), preprocess, provenance["weights"]


def main(snakemake) -> None:
    import open_clip

    from workflow_scripts.common.devices import resolve_device
    from workflow_scripts.common.files import write_atomically
    from workflow_scripts.common.logs import start_job
    from workflow_scripts.datasets.items import read_items
    from workflow_scripts.models.catalogue import training_datasets
    from workflow_scripts.models.loading import offline_from_record

    logger = start_job(snakemake)
    settings, run, init = snakemake.params.training, snakemake.wildcards.run, snakemake.params.init_model
    if snakemake.threads < settings["threads"]:
        logger.warning("granted %d cores; training with the run's %d threads all the same, so that its weights do "
                       "not depend on the cores granted", snakemake.threads, settings["threads"])
    torch.set_num_threads(settings["threads"])
    device = resolve_device(settings["device"])
    start, transform, init_weights = starting_point(init, settings, device,
                                                    offline_from_record(snakemake.input.get("init_weights")))
    rows, images, captions, negatives, per_dataset = [], [], [], [], {}
    heldout_images, heldout_captions, heldout_ids = [], [], []
    for dataset, path in zip(training_datasets(settings), snakemake.input.item_tables):
        table, vocabulary = read_items(path)
        train = [row for row in table if row["split"] == "train"]
        val = [row for row in table if row["split"] == "val"]
        rows += train
        images.append(training_images(train, path, transform, True))
        if val:  # the held-out measure: the val split's own captions, never reordered
            heldout_images.append(training_images(val, path, transform, True))
            heldout_captions += [row["caption"] for row in val]
            heldout_ids += [row["item_id"] for row in val]
        captions += training_captions(train, vocabulary, settings["caption_order"], settings["seed"])
        negatives += hard_negative_captions(train) if settings["hard_negatives"] else []
        per_dataset[dataset] = len(train)
    images, negatives = torch.cat(images), negatives or None
    heldout = (torch.cat(heldout_images), heldout_captions) if heldout_images else None
    if heldout is None:
        logger.warning("run %s: no val items in %s, so no held-out loss is measured", run,
                       ", ".join(training_datasets(settings)))
    record = {"run": run, "dataset": settings["dataset"], "caption_order": settings["caption_order"],
              "seed": settings["seed"], "train_items": len(rows), "train_items_per_dataset": per_dataset,
              "heldout_items": len(heldout_captions), "heldout_items_digest": items_digest(heldout_ids),
              "settings": settings, "device": device,
              "precision": "bf16 autocast" if device.startswith("cuda") else "fp32",
              "init": init and init["id"], "init_weights": init_weights, "hard_negatives": settings["hard_negatives"],
              "open_clip": open_clip.__version__, "torch": torch.__version__,
              "item_ids": [row["item_id"] for row in rows], "captions": captions, "negative_captions": negatives}
    logger.info("run %s: %d train items (%s), caption order %s, %s, %s, %d steps of %d on %s", run, len(rows),
                ", ".join(f"{n} of {d}" for d, n in per_dataset.items()), settings["caption_order"],
                "hard negatives" if negatives else "no hard negatives",
                f"fine-tuning {init['id']} ({init_weights})" if init else "from scratch",
                settings["steps"], settings["batch_size"], device)
    losses = []
    write_atomically(snakemake.output[0], lambda partial: losses.extend(
        train_clip(images, captions, settings, partial, record, device, progress=True, negatives=negatives,
                   start=start, heldout=heldout)[1]))
    logger.info("loss %.3f at step 1, %.3f at step %d", losses[0], losses[-1], len(losses))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
