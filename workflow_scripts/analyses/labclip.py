"""Rule `labclip`: LABCLIP, a linear map on CLIP text embeddings, trained contrastively against frozen image embeddings.

Authors' setting: Linear(D, D, bias=False) initialised to the identity, output L2-normalised; image
embeddings L2-normalised and frozen; learnable temperature t (logits times exp(t)) initialised to 0; Adam.
SB (standard batch) is CLIP's symmetric loss over the B x B similarity matrix; HNB (hard-negative batch)
adds each caption's attribute-swapped version as an extra text column.

Epoch selection: one training run gives two maps. `last_epoch`, the final epoch's map, is what the authors keep
(their validation is only logged): protocol `authors`, written as `{mode}.safetensors`. `best_val`, the epoch of
best validation binding accuracy (the clean rule of similarity.py: cosine, ties half, items without a distinct
negative left out; ties go to the lower validation loss, then the earlier epoch), is the clean protocol's, written
as `{mode}_best_val.safetensors`; it changes only which epoch is kept. With early stopping (`patience`, off by
default) the first map is the stopping epoch's, selection `early_stopped`, which is not the authors' map.

Weights are written as safetensors with the provenance in the metadata; the authors' released format
(a torch state_dict {"t": scalar, "linear.weight": D x D}) can be read and written too.
"""

import json
import logging
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workflow_scripts.analyses.embedded import Embedded
from workflow_scripts.analyses.similarity import has_distinct_negative
from workflow_scripts.common.files import write_atomically
from workflow_scripts.models.losses import hnb_loss, sb_loss

log = logging.getLogger("clip_binding")

MODES = ("SB", "HNB")
WEIGHT_KEY = "linear.weight"
TEMPERATURE_KEY = "t"


class LabClip(nn.Module):
    """Maps raw (unnormalised) text embeddings to L2-normalised ones comparable with normalised images."""

    def __init__(self, dim: int):
        super().__init__()
        self.linear = nn.Linear(dim, dim, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(dim))
        self.t = nn.Parameter(torch.tensor(0.0))

    @property
    def dim(self) -> int:
        return self.linear.weight.shape[0]

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.t.exp()

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.linear(text), dim=-1)


def _check_split(name: str, data: Embedded) -> None:
    if len(data.image) == 0:
        raise ValueError(f"LABCLIP needs a non-empty {name} set, got 0 items ({data.weights})")


def _batch_loss(model: LabClip, mode: str, image, caption, negative) -> torch.Tensor:
    if mode == "SB":
        return sb_loss(image, model(caption), model.t)
    texts = model(torch.cat([caption, negative]))  # one matrix product for the captions and their negatives
    return hnb_loss(image, texts[: len(caption)], texts[len(caption):], model.t)


def _tensors(data: Embedded, device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    image = F.normalize(torch.as_tensor(np.asarray(data.image), dtype=torch.float32, device=device), dim=-1)
    caption = torch.as_tensor(np.asarray(data.caption), dtype=torch.float32, device=device)
    negative = torch.as_tensor(np.asarray(data.negative), dtype=torch.float32, device=device)
    return image, caption, negative


@torch.no_grad()
def _evaluate(model: LabClip, mode: str, tensors, distinct: torch.Tensor, batch_size: int) -> torch.Tensor:
    """[loss, binding accuracy] on the device, without a host round trip: the loss averaged over batches of
    `batch_size`, weighted by size; the accuracy the clean rule's (similarity.CLEAN: cosine, ties half, only the
    items of `distinct`, NaN when there are none)."""
    model.eval()
    image, caption, negative = tensors
    total = torch.zeros((), device=image.device)
    for start in range(0, len(image), batch_size):
        part = slice(start, start + batch_size)
        total += _batch_loss(model, mode, image[part], caption[part], negative[part]) * len(image[part])
    positive = (image * F.normalize(model(caption), dim=-1)).sum(dim=-1)
    swapped = (image * F.normalize(model(negative), dim=-1)).sum(dim=-1)
    score = (positive > swapped).double() + 0.5 * (positive == swapped).double()  # float64: exact shares
    return torch.stack([total.double() / len(image), score[distinct].mean()])


def train_labclip(
    train: Embedded,
    val: Embedded,
    mode: str,
    *,
    lr: float,
    epochs: int,
    batch_size: int,
    seed: int,
    device: str = "cpu",
    patience: int | None = None,
    progress: bool = False,
) -> tuple[dict[str, LabClip], list[dict]]:
    """Train a LABCLIP map with Adam (the authors' settings are the config schema's defaults). Returns
    ({"last_epoch": the final epoch's map (the authors'), "best_val": the map of the epoch of best validation
    binding accuracy (ties: lower validation loss, then the earlier epoch)}, the per-epoch history).

    With `patience` (early stopping, off by default), training ends once that many epochs have passed without a
    new best: the last map is then the stopping epoch's, returned as "early_stopped" in place of "last_epoch" (it is
    not the authors' map), and "best_val" is the same map a full run would find up to that epoch (same seed, same
    batches). The host reads the device once per epoch (the losses and the accuracy), never per step."""
    if mode not in MODES:
        raise ValueError(f"unknown LABCLIP mode {mode!r}: expected one of {MODES}")
    if patience is not None and patience < 1:
        raise ValueError(f"LABCLIP patience must be at least 1 epoch, not {patience}")
    _check_split("train", train)
    _check_split("val", val)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)  # CPU generator: the same order on every device

    model = LabClip(train.image.shape[1]).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, fused=torch.device(device).type in ("cpu", "cuda"))
    image, caption, negative = _tensors(train, device)
    val_tensors = _tensors(val, device)
    distinct = torch.as_tensor(has_distinct_negative(val.items, val.vocabulary), device=device)

    history, best_state, best_key, best_epoch = [], None, None, None
    epoch_range = range(1, epochs + 1)
    if progress:
        from tqdm import tqdm

        epoch_range = tqdm(epoch_range, desc=f"LABCLIP {mode}")
    for epoch in epoch_range:
        model.train()
        order = torch.randperm(len(image), generator=generator).to(device)
        total = torch.zeros((), device=device)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            loss = _batch_loss(model, mode, image[batch], caption[batch], negative[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.detach() * len(batch)
        train_loss, val_loss, val_accuracy = torch.cat([(total.double() / len(image)).reshape(1), _evaluate(
            model, mode, val_tensors, distinct, batch_size)]).tolist()  # the epoch's one read from the device
        key = (-1.0 if np.isnan(val_accuracy) else val_accuracy, -val_loss)
        is_best = best_key is None or key > best_key
        if is_best:
            best_key, best_epoch = key, epoch
            best_state = {name: value.detach().clone() for name, value in model.state_dict().items()}
            for row in history:
                row["best"] = False
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                        "val_binding_accuracy": val_accuracy, "best": is_best})
        log.info("LABCLIP %s epoch %d: train loss %.4f, val loss %.4f, val binding accuracy %.4f%s", mode, epoch,
                 train_loss, val_loss, val_accuracy, " (best)" if is_best else "")
        if patience is not None and epoch - best_epoch >= patience:
            log.info("LABCLIP %s: stopped early after epoch %d, %d epochs after the best (%d)", mode, epoch, patience,
                     best_epoch)
            break
    best = LabClip(model.dim).to(device)
    best.load_state_dict(best_state)
    last = "early_stopped" if len(history) < epochs else "last_epoch"
    return {last: model.eval(), "best_val": best.eval()}, history


@torch.no_grad()
def map_text(model: LabClip, text: np.ndarray) -> np.ndarray:
    """Mapped, L2-normalised text embeddings as float32 numpy."""
    device = model.linear.weight.device
    mapped = model(torch.as_tensor(np.asarray(text), dtype=torch.float32, device=device))
    return mapped.cpu().numpy().astype(np.float32)


def _state(model: LabClip) -> dict[str, torch.Tensor]:
    return {
        WEIGHT_KEY: model.linear.weight.detach().cpu().contiguous().clone(),
        TEMPERATURE_KEY: model.t.detach().cpu().reshape(()).clone(),  # 0-dim: safetensors and torch.save accept it
    }


def _from_state(state: dict, path) -> LabClip:
    """A LabClip from {"linear.weight": D x D, "t": one number}; ValueError naming the file and key otherwise."""
    for key in (WEIGHT_KEY, TEMPERATURE_KEY):
        if key not in state:
            raise ValueError(f"{path}: no {key!r} tensor (found {sorted(state)})")
        if not isinstance(state[key], torch.Tensor):
            raise ValueError(f"{path}: {key!r} is a {type(state[key]).__name__}, not a tensor")
    weight, t = state[WEIGHT_KEY], state[TEMPERATURE_KEY]
    if weight.ndim != 2 or weight.shape[0] != weight.shape[1]:
        raise ValueError(f"{path}: {WEIGHT_KEY!r} must be a square D x D matrix, got shape {tuple(weight.shape)}")
    if t.numel() != 1:
        raise ValueError(f"{path}: {TEMPERATURE_KEY!r} must be a scalar, got shape {tuple(t.shape)}")
    model = LabClip(weight.shape[0])
    with torch.no_grad():
        model.linear.weight.copy_(weight.float())
        model.t.copy_(t.float().reshape(()))
    return model.eval()


def save_labclip(model: LabClip, path, provenance: dict) -> None:
    """Safetensors with "linear.weight" (D x D) and "t" (0-dim), and metadata {"provenance": JSON}."""
    from safetensors.torch import save_file

    metadata = {"provenance": json.dumps(provenance)}
    write_atomically(path, lambda partial: save_file(_state(model), partial, metadata=metadata))


def load_labclip(path) -> tuple[LabClip, dict]:
    """The model and provenance that save_labclip wrote ({} when the file carries no provenance)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        state = {key: f.get_tensor(key) for key in f.keys()}
        metadata = f.metadata() or {}
    return _from_state(state, path), json.loads(metadata.get("provenance", "{}"))


def import_authors_weights(path) -> LabClip:
    """A LabClip from the authors' released state_dict {"t": scalar, "linear.weight": D x D}."""
    state = torch.load(path, weights_only=True, map_location="cpu")
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state_dict, got a {type(state).__name__}")
    unexpected = sorted(set(state) - {WEIGHT_KEY, TEMPERATURE_KEY})
    if unexpected:  # e.g. a bias: ignoring it would silently change the map
        raise ValueError(
            f"{path}: unexpected keys {unexpected}; LABCLIP has only {WEIGHT_KEY!r} and {TEMPERATURE_KEY!r}"
        )
    return _from_state(state, path)


def published_maps(maps: dict, dim: int, model_id: str, logger) -> list[tuple[str, "LabClip"]]:
    """(name, map) of the configured published maps (paper_a.published_maps) that fit a model embedding in `dim`
    dimensions; a map of another size is skipped with a warning naming it."""
    fitting = []
    for name, path in maps.items():
        model = import_authors_weights(path)
        if model.dim != dim:
            logger.warning("published map %s (%s) is %d x %d; model %s embeds in %d dimensions: skipped", name,
                           path, model.dim, model.dim, model_id, dim)
            continue
        fitting.append((name, model))
    return fitting


def text_maps(ours: dict, published: dict, dim: int, model_id: str, logger) -> list[tuple[str, str, int | None, LabClip]]:
    """(variant name, selection, epoch, map) of every LABCLIP map an analysis applies beside CLIP: our maps (`ours`:
    map file -> the suffix of its variant name, '' for a map of the dataset itself, ' (coco)' for one trained on
    COCO), 'LABCLIP-<mode><suffix>' with their selection and epoch, then the published maps that fit the model
    (`published`: paper_a.published_maps), 'published:<name>', released."""
    maps = []
    for path, suffix in ours.items():
        model, saved = load_labclip(path)
        maps.append((f"LABCLIP-{saved['mode']}{suffix}", saved["selection"], saved["epoch"], model))
    return maps + [(f"published:{name}", "released", None, model)
                   for name, model in published_maps(published, dim, model_id, logger)]


def export_authors_weights(model: LabClip, path) -> None:
    """Write the authors' released format, a torch state_dict {"t": scalar, "linear.weight": D x D}."""
    write_atomically(path, lambda partial: torch.save(_state(model), partial))


def map_files(models: dict, history: list[dict]) -> list[tuple[str, LabClip, int]]:
    """(selection, map, epoch) for the rule's two map files, from train_labclip's result: the last map (selection
    last_epoch, or early_stopped after early stopping), then the best validation epoch's."""
    last = "last_epoch" if "last_epoch" in models else "early_stopped"
    best = next(h["epoch"] for h in history if h["best"])
    return [(last, models[last], history[-1]["epoch"]), ("best_val", models["best_val"], best)]


def main(snakemake) -> None:
    import pyarrow as pa

    from workflow_scripts.analyses.embedded import embedded_for_rule
    from workflow_scripts.common.devices import resolve_device
    from workflow_scripts.common.logs import start_job
    from workflow_scripts.common.parquet import write_table

    logger = start_job(snakemake)
    data, provenance = embedded_for_rule(snakemake)
    settings, mode = snakemake.params.labclip, snakemake.wildcards.mode
    torch.set_num_threads(max(1, snakemake.threads))
    models, history = train_labclip(
        data.subset(data.split == "train"), data.subset(data.split == "val"), mode,
        lr=settings["lr"], epochs=settings["epochs"], batch_size=settings["batch_size"],
        seed=snakemake.params.seed, device=resolve_device(settings["device"]), patience=settings["patience"],
        progress=True,
    )
    best = next(h for h in history if h["best"])
    logger.info("LABCLIP %s: best epoch %d, val binding accuracy %.3f; trained %d epochs, last %.3f", mode,
                best["epoch"], best["val_binding_accuracy"], history[-1]["epoch"], history[-1]["val_binding_accuracy"])
    provenance = {**provenance, "mode": mode}
    write_table(pa.Table.from_pylist(history), snakemake.output.history, provenance)
    for path, (selection, model, epoch) in zip((snakemake.output.weights, snakemake.output.best_val),
                                               map_files(models, history)):
        save_labclip(model, path, {**provenance, "settings": settings, "selection": selection, "epoch": epoch,
                                   "best_epoch": best["epoch"]})


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
