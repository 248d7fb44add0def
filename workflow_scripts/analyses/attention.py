"""Rule `attention`: paper B's CLS attention by object size (its figure 3). For a ViT image tower, how much of the
class token's attention to the image patches falls on each object, with the object's exact pixels from the
renderer's object-index pass (common/masks.py), so no segmenter is needed.

The authors published no code for this; this is our reading of the paper:
- attention: in each of the last `last_layers` blocks of the image tower, the class token's row of the attention
  weights (softmax over the class token and every patch) averaged over heads, then over those layers; its patch
  entries renormalised to sum to 1 (the class token's attention to itself left out);
- coverage: the share of each model-input patch that an object covers, from the mask carried through the model's
  own resize and centre crop (preprocessing.kept_region), averaging over the source pixels each patch spans;
- per object: attention_share = sum over patches of attention x coverage (the share of the patch attention that
  lands on the object), area_share = its mean coverage (the share of the model input it covers), and
  attention_per_area = attention_share / area_share: 1 where the object draws attention in proportion to its
  pixels. A large object covers more patches, so its attention_share is high under any attention that follows the
  pixels; attention_per_area is the variant without that confound.
"""
import logging
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import numpy as np
import torch

log = logging.getLogger("clip_binding")


def vit_blocks(model) -> list:
    """The residual blocks of an open_clip ViT image tower whose embedding is its class token; ValueError naming
    what the tower is otherwise (a ResNet, average or attentional pooling, attention other than
    nn.MultiheadAttention)."""
    from open_clip.transformer import VisionTransformer

    visual = model.visual
    if not isinstance(visual, VisionTransformer):
        raise ValueError(f"the image tower is a {type(visual).__name__}, not an open_clip VisionTransformer: CLS "
                         "attention needs a ViT (list only ViT models for datasets with the attention analysis)")
    if visual.pool_type != "tok" or visual.attn_pool is not None:
        raise ValueError(f"the ViT's embedding is not its class token (pool_type {visual.pool_type!r}"
                         f"{', attentional pooling' if visual.attn_pool is not None else ''}): no CLS attention")
    blocks = list(visual.transformer.resblocks)
    kinds = {type(getattr(block, "attn", None)).__name__ for block in blocks}
    if kinds != {"MultiheadAttention"}:
        raise ValueError(f"the ViT's blocks use {sorted(kinds)}, not torch's nn.MultiheadAttention, whose weights "
                         "this analysis reads")
    return blocks


def cls_attention(model, images: torch.Tensor, layers: list[int]) -> np.ndarray:
    """(n images, patches) the class token's attention to each patch (row-major patch grid) in the blocks at
    `layers` (0-based), averaged over heads and layers and renormalised over the patches. The model runs as
    usual; each block's nn.MultiheadAttention is asked for its per-head weights on the way (forward hooks)."""
    blocks = vit_blocks(model)
    captured = {}

    def ask_for_weights(module, args, kwargs):
        return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

    def keep_weights(layer):
        def hook(module, args, kwargs, output):
            captured[layer] = output[1][:, :, 0, :].float().mean(dim=1)  # (n, 1 + patches): the class token's row
        return hook

    handles = []
    for layer in layers:
        attn = blocks[layer].attn
        handles.append(attn.register_forward_pre_hook(ask_for_weights, with_kwargs=True))
        handles.append(attn.register_forward_hook(keep_weights(layer), with_kwargs=True))
    try:
        model.encode_image(images)
    finally:
        for handle in handles:
            handle.remove()
    rows = torch.stack([captured[layer] for layer in layers]).mean(dim=0)[:, 1:]
    return (rows / rows.sum(dim=1, keepdim=True)).cpu().numpy()


def overlap_matrix(start: float, end: float, cells: int, pixels: int) -> np.ndarray:
    """(cells, pixels): the length of source pixel i ([i, i + 1)) inside each of `cells` equal intervals that
    split [start, end), divided by the interval's length (each row sums to 1 where the interval lies inside
    the image)."""
    edges = start + (end - start) * np.arange(cells + 1) / cells
    low = np.maximum(edges[:-1, None], np.arange(pixels)[None, :])
    high = np.minimum(edges[1:, None], np.arange(1, pixels + 1)[None, :])
    return np.clip(high - low, 0, None) / np.diff(edges)[:, None]


def patch_coverage(masks: np.ndarray, region, grid: tuple[int, int]) -> np.ndarray:
    """(objects, patches): the share of each patch (row-major over `grid` (rows, columns)) covered by each
    object's mask, where the model input shows the source `region` (left, top, right, bottom) of the masks
    (preprocessing.kept_region) split into the patch grid."""
    left, top, right, bottom = region
    rows = overlap_matrix(top, bottom, grid[0], masks.shape[1])
    columns = overlap_matrix(left, right, grid[1], masks.shape[2])
    return np.einsum("ry,kyx,cx->krc", rows, masks.astype(float), columns).reshape(len(masks), -1)


def object_shares(attention: np.ndarray, coverage: np.ndarray) -> dict[str, np.ndarray]:
    """Per object: attention_share (attention . coverage), area_share (mean coverage) and attention_per_area
    (their ratio; NaN for an object the model input does not show)."""
    attention_share = coverage @ attention
    area_share = coverage.mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_area = np.where(area_share > 0, attention_share / area_share, np.nan)
    return {"attention_share": attention_share, "area_share": area_share, "attention_per_area": per_area}


def chosen_layers(n_blocks: int, last_layers: int) -> list[int]:
    if not 1 <= last_layers <= n_blocks:
        raise ValueError(f"paper_b.attention.last_layers is {last_layers}; this ViT has {n_blocks} blocks")
    return list(range(n_blocks - last_layers, n_blocks))


def attention_rows(model, preprocess, items: list[dict], image_paths: list[Path], device: str, last_layers: int,
                   batch_size: int = 32, progress: bool = False) -> tuple[list[dict], str]:
    """One row per object of each item (object, caption position, size, its mask's pixels, the three shares,
    which layers were averaged: "blocks 9-12 of 12"), and that description of the layers."""
    from PIL import Image
    from tqdm import tqdm

    from workflow_scripts.common.masks import mask_path, read_object_masks
    from workflow_scripts.models.preprocessing import kept_region

    visual = model.visual
    blocks = vit_blocks(model)
    layers = chosen_layers(len(blocks), last_layers)
    described = f"blocks {layers[0] + 1}-{layers[-1] + 1} of {len(blocks)}"
    grid = tuple(visual.grid_size)
    rows = []
    with torch.inference_mode(), tqdm(total=len(items), desc="attention", unit="image", disable=not progress) as bar:
        for start in range(0, len(items), batch_size):
            batch_items, batch_paths = items[start:start + batch_size], image_paths[start:start + batch_size]
            pictures = []
            for path in batch_paths:
                with Image.open(path) as image:
                    pictures.append(image.convert("RGB"))
            attention = cls_attention(model, torch.stack([preprocess(p) for p in pictures]).to(device), layers)
            for item, path, picture, weights in zip(batch_items, batch_paths, pictures, attention):
                masks = read_object_masks(mask_path(path), item["n_objects"], picture.size)
                coverage = patch_coverage(masks, kept_region(preprocess, *picture.size), grid)
                shares = object_shares(weights, coverage)
                n_large = sum(obj["size"] == "large" for obj in item["objects"])
                for k, obj in enumerate(item["objects"]):
                    rows.append({"item_id": item["item_id"], "split": item["split"], "n_objects": item["n_objects"],
                                 "n_large": n_large, "position": k + 1, "object": obj["object"], "size": obj["size"],
                                 "pixels": int(masks[k].sum()), "layers": described,
                                 **{name: float(values[k]) for name, values in shares.items()}})
            bar.update(len(batch_items))
    return rows, described


def main(snakemake) -> None:
    import pyarrow as pa

    from workflow_scripts.common.logs import start_job
    from workflow_scripts.common.parquet import write_table
    from workflow_scripts.datasets.items import image_file, read_items
    from workflow_scripts.models.loading import load_configured_model

    logger = start_job(snakemake)
    model, preprocess, _, provenance, device = load_configured_model(snakemake)
    items, _ = read_items(snakemake.input.item_table)
    paths = [image_file(snakemake.input.item_table, item["image"]) for item in items]
    settings = snakemake.params.attention
    rows, layers = attention_rows(model, preprocess, items, paths, device, settings["last_layers"],
                                  snakemake.params.embedding["batch_size"], progress=True)
    write_table(pa.Table.from_pylist(rows), snakemake.output.attention,
                {**provenance, "dataset": snakemake.wildcards.dataset, "layers": layers,
                 "precision": "fp32", "seed": snakemake.params.seed})  # no autocast: fp32 on every device
    logger.info("%d objects of %d images, CLS attention averaged over %s", len(rows), len(items), layers)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
