"""Rules `embed_images` and `embed_texts`: CLIP image and text embeddings of a dataset's items with open_clip,
written as Parquet with the weights' provenance (results/<dataset>/embeddings/<model id>/{images,texts}.parquet)."""

import logging
import sys
from contextlib import nullcontext
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import numpy as np
import open_clip
import pyarrow as pa
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from workflow_scripts.models.loading import load_configured_model

PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}
# Largest relative difference (to the largest component) between trimmed- and full-context text embeddings that the
# guard accepts, per precision computed in: rounding only (measured: about 1e-6 in fp32).
TRIM_TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2, "bf16": 5e-2}
GUARD_TEXTS = 8  # texts of the first batch embedded both ways by the guard


class ImageFiles(Dataset):
    """PNG files decoded and preprocessed in DataLoader workers. A file that does not decode, or (where `sizes`
    gives the (width, height) the item table records) decodes to another size, raises a ValueError naming the
    file and its item (`item_ids`) and the way out (rerender where the workflow `rendered` the images); the
    message survives the DataLoader's re-raise from a worker. Where `crops` gives a box (x, y, width, height in
    pixels, as ARO's Visual Genome items have it), the decoded image is cropped to it before preprocessing."""

    def __init__(self, paths, preprocess, item_ids=None, sizes=None, rendered=False, crops=None):
        self.paths, self.preprocess, self.rendered = list(paths), preprocess, rendered
        self.item_ids = list(item_ids) if item_ids is not None else None
        self.sizes = list(sizes) if sizes is not None else None
        self.crops = list(crops) if crops is not None else None

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        path = self.paths[index]
        item = f"the image of item {self.item_ids[index]}" if self.item_ids is not None else "the image"
        expected = tuple(self.sizes[index]) if self.sizes is not None else None
        expected = None if expected is None or None in expected else expected
        if self.rendered:
            advice = f"delete its shard folder {Path(path).parent} so that the workflow renders it again"
        else:
            advice = "replace it with an intact image of the size the item table records, or correct the item table"
        try:
            with Image.open(path) as image:
                image.load()  # decode now: PIL opens lazily, so a truncated file would fail only later
                rgb = image.convert("RGB")
        except Exception as error:
            raise ValueError(f"{path}: cannot decode {item} ({type(error).__name__}: {error}); {advice}") from error
        if expected and rgb.size != expected:
            raise ValueError(f"{path}: {item} is {rgb.size[0]}x{rgb.size[1]} pixels, the item table says "
                             f"{expected[0]}x{expected[1]} (image_width x image_height); {advice}")
        box = self.crops[index] if self.crops is not None else None
        if box is not None:
            x, y, width, height = box
            rgb = rgb.crop((x, y, x + width, y + height))
        return self.preprocess(rgb)


def precision_used(device: str, precision: str) -> str:
    """What the encoders compute in: the configured autocast dtype on CUDA, fp32 on every other device."""
    return precision if device.startswith("cuda") else "fp32"


def autocast(device: str, precision: str):
    dtype = PRECISIONS[precision]
    if device.startswith("cuda") and dtype is not None:
        return torch.autocast("cuda", dtype=dtype)
    return nullcontext()


def embed_images(model, preprocess, paths, device, batch_size, num_workers, precision,
                 progress=False, item_ids=None, sizes=None, rendered=False, crops=None) -> np.ndarray:
    """(n, d) float32 unnormalised image embeddings, in the order of `paths` (each cropped to its `crops` box
    where given); a file that does not decode or is not of its `sizes` entry (width, height) fails naming the
    file and its item (ImageFiles)."""
    if not paths:
        raise ValueError("no images to embed")
    # Each model batch is decoded in one part per worker, so that all workers decode the first batch together and
    # the next ones while the model runs: a loader batch of batch_size would leave one worker decoding it alone
    # while the model waits. The parts are joined again on the device: the same batches as one loader batch each.
    parts = [part.tolist() for start in range(0, len(paths), batch_size)
             for part in torch.arange(start, min(start + batch_size, len(paths))).tensor_split(max(num_workers, 1))
             if len(part)]
    loader = DataLoader(ImageFiles(paths, preprocess, item_ids, sizes, rendered, crops), batch_sampler=parts,
                        num_workers=num_workers, pin_memory=device.startswith("cuda"))
    chunks, pending, done = [], [], 0
    with torch.inference_mode(), autocast(device, precision), \
            tqdm(total=len(paths), desc="images", unit="image", disable=not progress) as bar:
        for part in loader:
            pending.append(part.to(device, non_blocking=True))
            done += len(part)
            if done % batch_size == 0 or done == len(paths):
                batch, pending = torch.cat(pending), []
                chunks.append(model.encode_image(batch).float().cpu().numpy())
                bar.update(len(batch))
    return np.concatenate(chunks)


EXACT_POOLS = ("argmax", "eos")  # pooling at the end-of-text token, which a causal tower computes from earlier tokens


def trimmable_tower(model):
    """The module that holds a text tower's token and positional embeddings, causal mask, final norm and projection
    (the CLIP itself for open_clip's built-in text tower, `model.text` for a TextTransformer), where cutting the
    context after a batch's last end-of-text token leaves every text embedding unchanged: a causal mask, pooling
    at the end-of-text token and no appended class token (CoCa); None for any other tower."""
    tower = model.text if isinstance(getattr(model, "text", None), open_clip.transformer.TextTransformer) else model
    pool = getattr(tower, "text_pool_type", getattr(tower, "pool_type", None))
    mask = getattr(tower, "attn_mask", None)
    needed = ("token_embedding", "positional_embedding", "transformer", "ln_final")
    if (pool not in EXACT_POOLS or not isinstance(mask, torch.Tensor) or getattr(tower, "cls_emb", None) is not None
            or getattr(tower, "use_pad_mask", False) or not all(hasattr(tower, name) for name in needed)):
        return None
    causal = torch.full_like(mask, float("-inf")).triu(1)
    return tower if torch.equal(mask, causal) else None


def text_lengths(tower, tokens: torch.Tensor) -> torch.Tensor:
    """Per tokenised text, the positions up to and including the token it is pooled at."""
    pool = getattr(tower, "text_pool_type", getattr(tower, "pool_type", None))
    if pool == "argmax":
        return tokens.argmax(dim=-1) + 1
    eos = getattr(tower, "text_eos_id", getattr(tower, "eos_id", None))
    return (tokens == eos).int().argmax(dim=-1) + 1


def encode_trimmed(tower, tokens: torch.Tensor) -> torch.Tensor:
    """open_clip's text forward (CLIP.encode_text, TextTransformer.forward) over the first positions only, up to
    the batch's longest text, with the positional embeddings and the causal mask cut alike."""
    length = int(text_lengths(tower, tokens).max())
    text = tokens[:, :length]
    cast_dtype = tower.transformer.get_cast_dtype()
    x = tower.token_embedding(text).to(cast_dtype) + tower.positional_embedding[:length].to(cast_dtype)
    x = tower.ln_final(tower.transformer(x, attn_mask=tower.attn_mask[:length, :length]))
    pool = getattr(tower, "text_pool_type", getattr(tower, "pool_type", None))
    x = open_clip.transformer.text_global_pool(x, text, pool,
                                               eos_token_id=getattr(tower, "text_eos_id", getattr(tower, "eos_id", None)))
    projection = tower.text_projection
    if projection is None:
        return x
    return projection(x) if isinstance(projection, torch.nn.Module) else x @ projection


def embed_texts(model, tokenizer, texts, device, batch_size, precision, progress=False, trim=True) -> np.ndarray:
    """(n, d) float32 unnormalised text embeddings, in the order of `texts`; each distinct text once.

    With `trim` (and a tower where it is exact, trimmable_tower), texts are batched by length and each batch runs
    only up to its longest text's end-of-text token instead of the whole context (77 positions for CLIP, where
    captions of a few words need 10): the same vectors within float tolerance. A guard compares a few texts of
    the first batch with the full-context forward and falls back to it (logging why) where they differ."""
    unique = sorted(set(texts))
    # int32 (not int64) holds COCO's 1.2M captions and negatives in 370 MB
    tokens = torch.cat([tokenizer(unique[start:start + 4096]).to(torch.int32) for start in range(0, len(unique), 4096)])
    tower = trimmable_tower(model) if trim else None
    logging.getLogger("clip_binding").info(
        "text context: %s", "each batch up to its longest text's end-of-text token" if tower is not None else
        "the full context (trimming %s)" % ("turned off" if not trim else "is not exact for this tower"))
    order = np.argsort(text_lengths(tower, tokens).numpy(), kind="stable") if tower is not None else np.arange(len(unique))
    chunks = []
    with torch.inference_mode(), autocast(device, precision):
        for start in tqdm(range(0, len(unique), batch_size), desc="texts", unit="batch", disable=not progress):
            batch = tokens[order[start:start + batch_size]].long().to(device)
            if tower is None:
                chunks.append(model.encode_text(batch).float().cpu().numpy())
                continue
            vectors = encode_trimmed(tower, batch).float()
            if start == 0:  # the guard, on a few texts of the first batch
                full = model.encode_text(batch[:GUARD_TEXTS]).float()
                difference = float((vectors[:GUARD_TEXTS] - full).abs().max() / full.abs().max().clamp_min(1e-12))
                if difference > TRIM_TOLERANCE[precision_used(device, precision)]:
                    logging.getLogger("clip_binding").warning(
                        "text embeddings over the trimmed context differ from the full context's by %.1e (relative); "
                        "embedding with the full context", difference)
                    tower, vectors = None, model.encode_text(batch).float()
            chunks.append(vectors.cpu().numpy())
    vectors = np.empty((len(unique), chunks[0].shape[1]), np.float32)
    vectors[order] = np.concatenate(chunks)
    row_of = {text: i for i, text in enumerate(unique)}
    return vectors[[row_of[t] for t in texts]]


def configured_text_encoder(snakemake, progress: bool = False):
    """(texts -> (n, d) embeddings, provenance) of the model a rule's params configure (load_configured_model),
    for analyses that embed texts of their own; `progress` shows a bar per call."""
    settings = snakemake.params.embedding
    model, _, tokenizer, provenance, device = load_configured_model(snakemake)

    def encode_text(texts):
        return embed_texts(model, tokenizer, texts, device, settings["batch_size"], settings["precision"],
                           progress=progress)

    return encode_text, {**provenance, "precision": precision_used(device, settings["precision"])}


def image_inputs(items: pa.Table, items_path) -> dict[str, list]:
    """The arguments of embed_images for each distinct (image file, crop box) of the table, in the order of its
    first item: paths, item_ids (that first item's), sizes ((width, height) where the table has image_width and
    image_height, else None) and crops (None where the table has no crop_box); with `rows`, each item's index into
    them (COCO's five captions and SugarCrepe's subsets share images: each is embedded once). ValueError naming
    the table when an item has no image."""
    from workflow_scripts.datasets.items import image_file

    columns = set(items.column_names)
    images, item_ids = items.column("image").to_pylist(), items.column("item_id").to_pylist()
    if None in images:
        raise ValueError(f"{items_path}: item {item_ids[images.index(None)]} has no image")
    crops = items.column("crop_box").to_pylist() if "crop_box" in columns else [None] * len(images)
    sizes = (list(zip(items.column("image_width").to_pylist(), items.column("image_height").to_pylist()))
             if {"image_width", "image_height"} <= columns else None)
    first, rows, index = {}, [], []  # (image, crop) -> its number; each item's number; each number's first item
    for i, key in enumerate(zip(images, (None if box is None else tuple(box) for box in crops))):
        if key not in first:
            first[key] = len(index)
            index.append(i)
        rows.append(first[key])
    return {"paths": [image_file(items_path, images[i]) for i in index], "item_ids": [item_ids[i] for i in index],
            "sizes": None if sizes is None else [sizes[i] for i in index],
            "crops": None if "crop_box" not in columns else [crops[i] for i in index], "rows": rows}


def text_items(items: pa.Table) -> dict[str, list]:
    """One row per caption and per negative caption, with ids that join back to the item table."""
    rows = {"item_id": [], "role": [], "negative_index": [], "text": []}
    for item_id, caption, negatives in zip(
        items.column("item_id").to_pylist(),
        items.column("caption").to_pylist(),
        items.column("negative_captions").to_pylist(),
    ):
        for role, index, text in [("caption", None, caption)] + [("negative", i, t) for i, t in enumerate(negatives)]:
            rows["item_id"].append(item_id)
            rows["role"].append(role)
            rows["negative_index"].append(index)
            rows["text"].append(text)
    return rows


def main(snakemake) -> None:
    from workflow_scripts.common.logs import start_job
    from workflow_scripts.common.parquet import embedding_array, read_table, write_table
    from workflow_scripts.datasets.items import check_items

    logger = start_job(snakemake)
    settings = snakemake.params.embedding
    model, preprocess, tokenizer, provenance, device = load_configured_model(snakemake)
    items = read_table(snakemake.input.item_table, what="an item table")
    check_items(items, snakemake.input.item_table)
    if snakemake.params.kind == "images":
        inputs = image_inputs(items, snakemake.input.item_table)
        rows = inputs.pop("rows")
        logger.info("%d distinct images (and crops) for %d items", len(inputs["paths"]), len(rows))
        vectors = embed_images(model, preprocess, device=device, batch_size=settings["batch_size"],
                               num_workers=snakemake.config["embedding"]["num_workers"],  # speed only: not a param
                               precision=settings["precision"], progress=True,
                               rendered=bool(snakemake.input.get("shards")), **inputs)[rows]
        columns = {"item_id": items.column("item_id")}
    else:
        columns = text_items(items)
        vectors = embed_texts(model, tokenizer, columns["text"], device, settings["batch_size"],
                              settings["precision"], progress=True)
    table = pa.table({**columns, "embedding": embedding_array(vectors)})
    provenance.update(
        dim=int(vectors.shape[1]), dataset=snakemake.wildcards.dataset,
        kind=snakemake.params.kind, device=device,
        precision=precision_used(device, settings["precision"]),
        open_clip=open_clip.__version__, torch=torch.__version__,
    )
    write_table(table, snakemake.output[0], provenance)
    logger.info("%d %s embeddings of dimension %d", table.num_rows, snakemake.params.kind[:-1], vectors.shape[1])


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
