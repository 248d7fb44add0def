"""Rule `labclip`: LABCLIP, a linear map on CLIP text embeddings, trained contrastively against frozen image embeddings.

Authors' setting: Linear(D, D, bias=False) initialised to the identity, output L2-normalised; image
embeddings L2-normalised and frozen; learnable temperature t (logits times exp(t)) initialised to 0; Adam.
SB (standard batch) is CLIP's symmetric loss over the B x B similarity matrix; HNB (hard-negative batch)
adds each caption's attribute-swapped version as an extra text column.

Epoch selection and training negatives: the rule keeps two maps. `last_epoch`, the final epoch's map of the run
on every training item with its negative as drawn, is what the authors keep (their validation is only logged):
protocol `authors`, written as `{mode}.safetensors`. Those negatives include some that equal their caption (a CLEVR
scene with two equal colours, about 1 in 8 with the authors' sampler, whose attribute swap is the caption itself; a
COCO caption whose noun and adjective shuffle moved nothing, as ARO's shuffler does: 11.4% of the captions of the
real COCO val2014 subset in ../shared): the authors'
HNB map trains on these "negatives" that are positives, and its metadata counts them. `best_val` is the clean
protocol's map, written as `{mode}_best_val.safetensors`: for HNB it comes from a second run, with the same seed and
settings, on the training items with a distinct negative only (similarity.has_distinct_negative; the items without
one dropped and counted), at the epoch of best validation binding accuracy (the clean rule of similarity.py: cosine,
ties half, items without a distinct negative left out; ties go to the lower validation loss, then the earlier
epoch). SB never uses the negatives, and HNB trains on no equal one when every negative is distinct: then one run
serves both maps (never trained twice) and `best_val` changes only which epoch is kept. With early stopping
(`patience`, off by default) the first map is the stopping epoch's, selection `early_stopped`, which is not the
authors' map.

The history holds every run's epochs, column `negatives` ("as drawn" or "distinct only") naming the run; `best`
marks the one epoch whose map is `best_val`. Each map's provenance metadata has `train_items` (N, the training
items), `train_same_negative` (k, those whose negative does not differ from the caption) and `train_negatives`, the
text every table row built from the map carries in its column `train_negatives`: "as drawn (k of N equal their
caption)", "distinct only (k of N dropped)" or, for SB, "unused (SB)".

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
# A run's training negatives: every item's as drawn (the authors'), or only the items whose negative differs from
# their caption (the clean map's run).
AS_DRAWN, DISTINCT_ONLY = "as drawn", "distinct only"
NEGATIVES = (AS_DRAWN, DISTINCT_ONLY)
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
    negatives: str = AS_DRAWN,
) -> tuple[dict[str, LabClip], list[dict]]:
    """Train a LABCLIP map with Adam (the authors' settings are the config schema's defaults), one run. Returns
    ({"last_epoch": the final epoch's map, "best_val": the map of the epoch of best validation binding accuracy
    (ties: lower validation loss, then the earlier epoch)}, the per-epoch history, column `negatives` naming the run).

    `negatives` "as drawn" (the authors') trains on every item of `train`; "distinct only" on the items whose
    negative differs from their caption (similarity.has_distinct_negative), exactly as the "as drawn" run on
    `train` without the others would. The validation set is the same in both.

    With `patience` (early stopping, off by default), training ends once that many epochs have passed without a
    new best: the last map is then the stopping epoch's, returned as "early_stopped" in place of "last_epoch" (it is
    not the authors' map), and "best_val" is the same map a full run would find up to that epoch (same seed, same
    batches). The host reads the device once per epoch (the losses and the accuracy), never per step."""
    if mode not in MODES:
        raise ValueError(f"unknown LABCLIP mode {mode!r}: expected one of {MODES}")
    if patience is not None and patience < 1:
        raise ValueError(f"LABCLIP patience must be at least 1 epoch, not {patience}")
    if negatives not in NEGATIVES:
        raise ValueError(f"unknown LABCLIP training negatives {negatives!r}: expected one of {NEGATIVES}")
    if negatives == DISTINCT_ONLY:
        train = train.subset(has_distinct_negative(train.items, train.vocabulary))
    _check_split("train" if negatives == AS_DRAWN else f"train ({negatives})", train)
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

        epoch_range = tqdm(epoch_range, desc=f"LABCLIP {mode} ({negatives})")
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
        history.append({"negatives": negatives, "epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                        "val_binding_accuracy": val_accuracy, "best": is_best})
        log.info("LABCLIP %s (%s) epoch %d: train loss %.4f, val loss %.4f, val binding accuracy %.4f%s", mode,
                 negatives, epoch, train_loss, val_loss, val_accuracy, " (best)" if is_best else "")
        if patience is not None and epoch - best_epoch >= patience:
            log.info("LABCLIP %s (%s): stopped early after epoch %d, %d epochs after the best (%d)", mode, negatives,
                     epoch, patience, best_epoch)
            break
    best = LabClip(model.dim).to(device)
    best.load_state_dict(best_state)
    last = "early_stopped" if len(history) < epochs else "last_epoch"
    return {last: model.eval(), "best_val": best.eval()}, history


def negative_counts(train: Embedded) -> dict[str, int]:
    """{"train_items": N, "train_same_negative": k}: the training items, and those whose negative does not differ
    from their caption (similarity.has_distinct_negative)."""
    distinct = has_distinct_negative(train.items, train.vocabulary)
    return {"train_items": len(distinct), "train_same_negative": int((~distinct).sum())}


def train_labclip_maps(train: Embedded, val: Embedded, mode: str, **settings) -> tuple[dict, list[dict], dict]:
    """The rule's two maps, as the module docstring says: ({"last_epoch" (or "early_stopped"): the last map of the
    run on every item as drawn (the authors'), "best_val": the best validation epoch's map of the run on the items
    with a distinct negative (the clean protocol's)}, both runs' history with `best` on the epoch of best_val's map
    only, negative_counts(train)). For SB, or when no negative equals its caption, one run gives both maps.
    `settings` are train_labclip's keyword arguments (lr, epochs, batch_size, seed, ...)."""
    counts = negative_counts(train)
    same, total = counts["train_same_negative"], counts["train_items"]
    log.info("LABCLIP %s: %d of %d training items have a negative that does not differ from their caption%s", mode,
             same, total, "; SB does not use the negatives" if mode == "SB" else "")
    models, history = train_labclip(train, val, mode, **settings)
    if mode == "SB" or same == 0:
        return models, history, counts
    log.info("LABCLIP %s: training again on the %d items with a distinct negative for the clean map", mode,
             total - same)
    clean, clean_history = train_labclip(train, val, mode, **settings, negatives=DISTINCT_ONLY)
    last = next(selection for selection in models if selection != "best_val")
    authors_history = [{**row, "best": False} for row in history]  # no map of this run is kept at its best epoch
    return {last: models[last], "best_val": clean["best_val"]}, authors_history + clean_history, counts


def train_negatives_text(mode: str, selection: str, counts: dict) -> str:
    """What a map of `mode` and `selection` trained on, for its metadata and every table row built from it."""
    same, total = counts["train_same_negative"], counts["train_items"]
    if mode == "SB":
        return "unused (SB)"
    if selection == "best_val":
        return f"{DISTINCT_ONLY} ({same} of {total} dropped)"
    return f"{AS_DRAWN} ({same} of {total} equal their caption)"


def map_metadata(mode: str, selection: str, counts: dict) -> dict:
    """The training-negative keys of a map's provenance: train_items, train_same_negative, train_negatives."""
    return {**counts, "train_negatives": train_negatives_text(mode, selection, counts)}


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


NOT_RECORDED = "not recorded"  # the training negatives of a map file written before they were recorded
PUBLISHED_NEGATIVES = "not counted (released)"  # those of a published map


def text_maps(ours: dict, published: dict, dim: int, model_id: str,
              logger) -> list[tuple[str, str, int | None, str, LabClip]]:
    """(variant name, selection, epoch, training negatives, map) of every LABCLIP map an analysis applies beside
    CLIP: our maps (`ours`: map file -> the suffix of its variant name, '' for a map of the dataset itself,
    ' (coco)' for one trained on COCO), 'LABCLIP-<mode><suffix>' with their selection, epoch and the
    `train_negatives` text of their metadata, then the published maps that fit the model (`published`:
    paper_a.published_maps), 'published:<name>', released, their negatives not counted."""
    maps = []
    for path, suffix in ours.items():
        model, saved = load_labclip(path)
        maps.append((f"LABCLIP-{saved['mode']}{suffix}", saved["selection"], saved["epoch"],
                     saved.get("train_negatives", NOT_RECORDED), model))
    return maps + [(f"published:{name}", "released", None, PUBLISHED_NEGATIVES, model)
                   for name, model in published_maps(published, dim, model_id, logger)]


def export_authors_weights(model: LabClip, path) -> None:
    """Write the authors' released format, a torch state_dict {"t": scalar, "linear.weight": D x D}."""
    write_atomically(path, lambda partial: torch.save(_state(model), partial))


def map_files(models: dict, history: list[dict]) -> list[tuple[str, LabClip, int]]:
    """(selection, map, epoch) for the rule's two map files, from train_labclip's or train_labclip_maps' result:
    the last map of the run as drawn (selection last_epoch, or early_stopped after early stopping), then the best
    validation epoch's (the epoch marked `best`, in whichever run gave that map)."""
    last = "last_epoch" if "last_epoch" in models else "early_stopped"
    best = next(h["epoch"] for h in history if h["best"])
    last_epoch = [h["epoch"] for h in history if h.get("negatives", AS_DRAWN) == AS_DRAWN][-1]
    return [(last, models[last], last_epoch), ("best_val", models["best_val"], best)]


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
    models, history, counts = train_labclip_maps(
        data.subset(data.split == "train"), data.subset(data.split == "val"), mode,
        lr=settings["lr"], epochs=settings["epochs"], batch_size=settings["batch_size"],
        seed=snakemake.params.seed, device=resolve_device(settings["device"]), patience=settings["patience"],
        progress=True,
    )
    best = next(h for h in history if h["best"])
    last = [h for h in history if h["negatives"] == AS_DRAWN][-1]
    logger.info("LABCLIP %s: best_val epoch %d (%s), val binding accuracy %.3f; as drawn trained %d epochs, last "
                "%.3f", mode, best["epoch"], best["negatives"], best["val_binding_accuracy"], last["epoch"],
                last["val_binding_accuracy"])
    provenance = {**provenance, "mode": mode}
    write_table(pa.Table.from_pylist(history), snakemake.output.history, {**provenance, **counts})
    for path, (selection, model, epoch) in zip((snakemake.output.weights, snakemake.output.best_val),
                                               map_files(models, history)):
        metadata = map_metadata(mode, selection, counts)
        logger.info("LABCLIP %s %s map (epoch %d): training negatives %s", mode, selection, epoch,
                    metadata["train_negatives"])
        save_labclip(model, path, {**provenance, "settings": settings, "selection": selection, "epoch": epoch,
                                   "best_epoch": best["epoch"], **metadata})


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
