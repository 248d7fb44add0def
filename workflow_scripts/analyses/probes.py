"""Rule `probes`: can an object's attribute be read off one modality's embedding by a linear classifier?

The authors' protocol: one probe per object category (CLEVR: shape), trained on the raw (not normalised) image
embedding of the item or the caption's text embedding, on the items that contain that object. The target is
the attribute (CLEVR: colour) of that object; where an object occurs several times in an item the target is
the distribution of attributes over those objects and a prediction counts as correct when its k highest
logits are exactly the object's k attributes ("top-k set match"; plain accuracy for k = 1). Object categories
and attribute classes are the item table's vocabulary, in its order.

Two solvers: `train_probe_sgd` is the authors' loop (SGD lr 0.1, batch 32, 100 epochs, cross-entropy). One
training run gives two probes: the last epoch's (selection `last_epoch`, what the authors keep: protocol
`authors`) and the best validation epoch's (selection `best_val`: protocol `clean`, which changes only the epoch
kept). `train_probe_sklearn`, the fast path, solves the same convex problem full-batch with scikit-learn's
LogisticRegression, its l2 penalty chosen on validation (selection `best_val`, protocol `clean`): free of step-size
choices; on 5,000 scenes' image probes 20 times faster than the authors' loop where validation accuracy reaches 1
(the C path stops there) and 9 times where it does not (text probes, with few rows: 7 and 3.5 times; README, Speed).

Probe-weight cosine. `probe_weight_cosine` compares whatever weights a solver returned: for SGD (the authors'
style) it depends on the solver and on the initialisation, since the image and text probes start from the same
seeded initialisation, whose component orthogonal to the data never changes. `unique_probe_weights` fits instead
the unique minimiser of the L2-regularised multinomial logistic regression (`fit_unique_probe`), which any
converged solver reaches from any start, so the cosine between its image and text weights depends on neither.
"""
import logging
import sys
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cache
from math import comb
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F

from workflow_scripts.analyses.embedded import Embedded
from workflow_scripts.common.files import write_atomically
from workflow_scripts.datasets.items import SPLITS

log = logging.getLogger("clip_binding")


@cache
def _blas_libraries():
    """The thread pools of the BLAS libraries, once scikit-learn's solvers (and with them scipy's BLAS) are loaded:
    found once per process, as finding them (threadpoolctl scans every loaded library) costs more than a small
    probe's fit."""
    import sklearn.linear_model  # noqa: F401
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def single_threaded():
    """Run torch and the BLAS libraries (numpy's, scipy's) on one thread, then restore the settings. A probe's
    matrices are small (a few thousand rows of at most a few thousand columns): extra threads only add
    synchronisation, and on a machine shared with other jobs they stall (measured: 15-60 times slower with 2
    threads on 2 busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _blas_libraries().limit(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)


# The selection whose weights run_probes returns (and the probe rule saves) for each solver.
PRIMARY_SELECTION = {"sgd": "last_epoch", "sklearn": "best_val"}
UNIQUE_L2 = 1e-3  # the default lambda of the unique probe target (config: paper_a.probe_cosine.l2)
# Its default gradient tolerance (config: paper_a.probe_cosine.tolerance). 1e-8 took 5x the loss evaluations of
# 1e-7 on the demo's probes and moved the weights by at most 2e-5 (their cosine by 1e-10).
UNIQUE_TOLERANCE = 1e-7


@dataclass
class ProbeFit:
    """A fitted probe: logits = x @ weight.T + bias on raw embeddings x."""

    weight: np.ndarray  # (classes, d)
    bias: np.ndarray  # (classes,)
    chosen: str  # which epoch or penalty it is, e.g. "epoch 37" or "l2 0.001"
    val_accuracy: float
    selection: str = "best_val"  # "last_epoch" (the authors') or "best_val"

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) @ self.weight.T + self.bias


def probe_targets(items: list[dict], name: str, classes) -> tuple[np.ndarray, np.ndarray]:
    """(mask, targets): mask[i] says whether item i contains an object `name`; targets[i] is the distribution of
    attributes (in the order of `classes`) over the item's objects of that name (one-hot for a single object),
    zero where mask is False."""
    index = {attribute: j for j, attribute in enumerate(classes)}
    targets = np.zeros((len(items), len(classes)), dtype=np.float32)
    for i, item in enumerate(items):
        for obj in item["objects"]:
            if obj["object"] == name:
                targets[i, index[obj["attribute"]]] += 1
    counts = targets.sum(axis=1)
    mask = counts > 0
    targets[mask] /= counts[mask, None]
    return mask, targets


def _k(targets: np.ndarray) -> np.ndarray:
    k = (np.asarray(targets) > 0).sum(axis=1)
    if (k == 0).any():
        raise ValueError("every target row needs at least one colour")
    return k


def topk_set_accuracy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Share of rows whose k highest logits are exactly the k colours with non-zero target (k varies by
    row). A row counts as correct only when every target colour's logit is strictly above every other
    colour's, so a tie at the boundary (where "the k highest" is not defined) counts as wrong."""
    logits = np.asarray(logits, dtype=np.float64)
    _k(targets)
    positive = np.asarray(targets) > 0
    lowest_positive = np.where(positive, logits, np.inf).min(axis=1)
    highest_negative = np.where(positive, -np.inf, logits).max(axis=1)
    return float((lowest_positive > highest_negative).mean())


def chance_accuracy(targets: np.ndarray) -> float:
    """Expected top-k set match of a random ranking of the C classes: mean over rows of 1 / C(C, k)."""
    classes = np.asarray(targets).shape[1]
    return float(np.mean([1 / comb(classes, int(k)) for k in _k(targets)]))


def train_probe_sgd(x_train, y_train, x_val, y_val, *, lr: float, batch_size: int, epochs: int,
                    seed: int) -> dict[str, ProbeFit]:
    """The authors' loop (their settings are the config schema's defaults): nn.Linear(d, classes) with bias at
    PyTorch's default initialisation (drawn after torch.manual_seed(seed), so two probes of one shape and seed
    start alike), plain SGD (no momentum, no weight decay), shuffled mini-batches, cross-entropy on the (soft)
    targets. Returns, from this one run, {"last_epoch": the final model (what the authors keep), "best_val": the
    epoch of best validation top-k accuracy (ties go to the later epoch, so a flat validation curve returns the
    final model)}."""
    x, y = torch.as_tensor(x_train, dtype=torch.float32), torch.as_tensor(y_train, dtype=torch.float32)
    xv = torch.as_tensor(x_val, dtype=torch.float32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = torch.nn.Linear(x.shape[1], y.shape[1])
    optimiser = torch.optim.SGD(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    best = (-1.0, 0, None)
    with single_threaded():
        for epoch in range(1, epochs + 1):
            for batch in torch.randperm(len(x), generator=order).split(batch_size):
                optimiser.zero_grad()
                F.cross_entropy(model(x[batch]), y[batch]).backward()
                optimiser.step()
            with torch.no_grad():
                accuracy = topk_set_accuracy(model(xv).numpy(), y_val)
            if accuracy >= best[0]:
                best = (accuracy, epoch, [p.detach().clone() for p in (model.weight, model.bias)])
    best_accuracy, epoch, (weight, bias) = best
    last = ProbeFit(model.weight.detach().double().numpy().copy(), model.bias.detach().double().numpy().copy(),
                    f"epoch {epochs}", accuracy, "last_epoch")
    return {"last_epoch": last,
            "best_val": ProbeFit(weight.double().numpy(), bias.double().numpy(), f"epoch {epoch}", best_accuracy)}


def fold_standardisation(weight, bias, mean, std) -> tuple[np.ndarray, np.ndarray]:
    """Weight and bias on raw x equivalent to (weight, bias) on (x - mean) / std."""
    folded = weight / std
    return folded, bias - folded @ mean


def weighted_hard_labels(targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, labels, sample weights): one row per non-zero target entry, weighted by it. scikit-learn's
    weighted cross-entropy on these rows equals the soft-target cross-entropy on the original ones."""
    targets = np.asarray(targets)
    rows, labels = np.nonzero(targets > 0)
    return rows, labels, targets[rows, labels].astype(np.float64)


def sklearn_c_grid(Cs) -> list[float]:
    """The inverse penalties tried, as LogisticRegressionCV reads its `Cs`: a list of values, or an integer n
    for n values log-spaced from 1e-4 to 1e4. Ascending, so the warm-started path goes from strong to weak."""
    return sorted(float(c) for c in (np.logspace(-4, 4, Cs) if isinstance(Cs, int) else Cs))


def _all_classes(model, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(weight (n_classes, d), bias) of a fitted LogisticRegression over every class, also those absent from its
    training rows (weight 0, bias -inf: never predicted). A binary model's single row w becomes (-w/2, w/2), which
    gives the same probabilities."""
    coef, intercept = model.coef_, model.intercept_
    if len(model.classes_) == 2:
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
    weight = np.zeros((n_classes, coef.shape[1]))
    bias = np.full(n_classes, -np.inf)
    weight[model.classes_], bias[model.classes_] = coef, intercept
    return weight, bias


def train_probe_sklearn(x_train, y_train, x_val, y_val, *, Cs=10, max_iter: int = 1000) -> ProbeFit:
    """scikit-learn's multinomial LogisticRegression (lbfgs, l2 penalty, float32) on x standardised by a
    StandardScaler fitted on the training rows, with the inverse penalty C chosen on the validation split: one
    warm-started fit per value of `Cs` from the strongest penalty to the weakest, as LogisticRegressionCV walks its
    path, scored by validation top-k set accuracy (which LogisticRegressionCV cannot score, hence the explicit
    path). Ties go to the smaller C (the better determined solution), so the path stops at the first C whose
    validation accuracy is 1: the result is the full path's, and `chosen` says how many fits it took. Soft targets
    become weighted hard labels (weighted_hard_labels). The returned weight and bias act on the raw embeddings, so
    that probe weights can be compared across modalities. Deterministic."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    n_classes = np.asarray(y_train).shape[1]
    x_val = np.asarray(x_val, dtype=np.float64)

    def scored(weight, bias, chosen: str) -> ProbeFit:
        return ProbeFit(weight, bias, chosen, topk_set_accuracy(x_val @ weight.T + bias, y_val))

    rows, labels, weights = weighted_hard_labels(y_train)
    # float32, as the embeddings are stored: half the memory traffic of float64, the same validation accuracy.
    scaler = StandardScaler()
    z = scaler.fit_transform(np.asarray(x_train, dtype=np.float32))[rows]
    if len(set(labels.tolist())) == 1:  # one attribute in every training row: nothing to fit
        bias = np.full(n_classes, -np.inf)
        bias[labels[0]] = 0.0
        return scored(np.zeros((n_classes, z.shape[1])), bias, "one class")
    model = LogisticRegression(warm_start=True, max_iter=max_iter)
    mean, scale = scaler.mean_.astype(np.float64), scaler.scale_.astype(np.float64)
    grid, best, unconverged = sklearn_c_grid(Cs), None, []
    with single_threaded(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported below, once per probe
        for fitted, c in enumerate(grid, start=1):
            model.set_params(C=c).fit(z, labels, sample_weight=weights)
            if model.n_iter_.max() >= max_iter:
                unconverged.append(f"{c:g}")
            fit = scored(*fold_standardisation(*_all_classes(model, n_classes), mean, scale), f"C {c:g}")
            if best is None or fit.val_accuracy > best.val_accuracy:
                best = fit
            if best.val_accuracy == 1.0:  # ties go to the smaller C, so no later C can be chosen: exact
                break
    if unconverged:
        log.warning("scikit-learn probe: lbfgs stopped at max_iter %d for C = %s", max_iter, ", ".join(unconverged))
    return replace(best, chosen=f"{best.chosen} ({fitted} of {len(grid)} fitted)")


def _first_of_each(texts: list[str], rows: np.ndarray) -> np.ndarray:
    seen, keep = set(), []
    for row in rows:
        if texts[row] not in seen:
            seen.add(texts[row])
            keep.append(row)
    return np.array(keep, dtype=int)


def run_probes(data: Embedded, modality: str, solver: str, seed: int = 0,
               **solver_settings) -> tuple[list[dict], dict]:
    """Fit one probe per (object count, object category of the vocabulary) on `modality` ("image": the item's
    image embedding; "text": the caption's embedding, each distinct caption once per split) with `solver`
    ("sgd" or "sklearn"; `seed` is used by sgd, sklearn is deterministic without one): train on the train split,
    choose on val, score on test. Returns one row per probe and selection (sgd: `last_epoch`, protocol
    `authors`, and `best_val`, protocol `clean`, from one run; sklearn: `best_val`, protocol `clean`) and
    {(n_objects, object): weight (classes, d)} of the solver's PRIMARY_SELECTION (sgd: the last epoch)."""
    if modality not in ("image", "text"):
        raise ValueError(f"modality must be 'image' or 'text', not {modality!r}")
    if solver == "sgd":
        def train(*arrays):
            return train_probe_sgd(*arrays, seed=seed, **solver_settings)
    elif solver == "sklearn":
        def train(*arrays):
            return {"best_val": train_probe_sklearn(*arrays, **solver_settings)}
    else:
        raise ValueError(f"solver must be 'sgd' or 'sklearn', not {solver!r}")
    x = data.image if modality == "image" else data.caption
    if not data.vocabulary.attributes:
        raise ValueError("probes need attribute classes, but the item table's vocabulary lists no attributes")
    captions = [s["caption"] for s in data.items]
    rows, weights = [], {}
    for (n_objects, shape), (index, targets) in probe_rows(data).items():
        if modality == "text":
            index = {name: _first_of_each(captions, chosen) for name, chosen in index.items()}
        if any(len(rows_) == 0 for rows_ in index.values()):
            log.warning("%s probe for %s in %d-object scenes skipped: sizes %s", modality, shape, n_objects,
                        {name: len(rows_) for name, rows_ in index.items()})
            continue
        fits = train(x[index["train"]], targets[index["train"]], x[index["val"]], targets[index["val"]])
        for selection, fit in fits.items():
            accuracy = {name: topk_set_accuracy(fit.logits(x[rows_]), targets[rows_])
                        for name, rows_ in index.items()}
            rows.append({
                "modality": modality, "solver": solver, "selection": selection,
                "protocol": probe_protocol(solver, selection), "n_objects": int(n_objects), "object": shape,
                **{f"n_{name}": len(rows_) for name, rows_ in index.items()},
                **{f"{name}_accuracy": accuracy[name] for name in SPLITS},
                "chance": chance_accuracy(targets[index["test"]]),
                "chosen": fit.chosen,
            })
            log.info("%s probe (%s, %s) for %s in %d-object scenes: test accuracy %.3f (chance %.3f), %s",
                     modality, solver, selection, shape, n_objects, accuracy["test"], rows[-1]["chance"],
                     fit.chosen)
        weights[(int(n_objects), shape)] = fits[PRIMARY_SELECTION[solver]].weight
    return rows, weights


def probe_protocol(solver: str, selection: str) -> str:
    """`authors` for the authors' probes (SGD, last epoch kept), `clean` for every other."""
    return "authors" if (solver, selection) == ("sgd", "last_epoch") else "clean"


def probe_weight_cosine(image_weights: dict, text_weights: dict) -> float:
    """Mean over the (n_objects, object) probes fitted in both modalities and over the classes of the
    cosine between the image probe's and the text probe's weight vector for that class (rows of the
    weight matrices; biases left out). This is our reading of the paper's probe-weight similarity: the
    authors' code for it is not public."""
    keys = sorted(set(image_weights) & set(text_weights))
    if not keys:
        raise ValueError("no probe fitted in both modalities")
    cosines = []
    for key in keys:
        a, b = np.asarray(image_weights[key], dtype=np.float64), np.asarray(text_weights[key], dtype=np.float64)
        cosines.append((a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))
    return float(np.mean(cosines))


def fit_unique_probe(x, y, l2: float = UNIQUE_L2, start=None, max_rounds: int = 10,
                     tolerance: float = UNIQUE_TOLERANCE) -> tuple[np.ndarray, np.ndarray, float]:
    """The unique probe target: the minimiser (W, b) of mean soft-target cross-entropy(x W^T + b, y)
    + l2 (||W||^2 + ||b||^2) on raw embeddings x, in float64. The objective is strictly convex (l2 > 0), so the
    minimiser exists and is unique, and it is centred over classes (the rows of W sum to zero, as do the entries of
    b: adding one vector to every class's weights leaves the cross-entropy as it is, and the penalty is least when
    they sum to zero).
    Solved by L-BFGS (strong-Wolfe line search) from `start` ((W, b); default zero), restarted (at most
    `max_rounds` rounds of 500 iterations, fewer when a round no longer halves it) until the largest gradient entry
    is below `tolerance`; as the objective is 2 * l2-strongly convex, the weights are then within
    gradient / (2 * l2) of the minimiser in each entry's direction (about 5e-5 at the defaults). Returns
    (W, b, largest gradient entry at the end)."""
    x, y = torch.as_tensor(np.asarray(x), dtype=torch.float64), torch.as_tensor(np.asarray(y), dtype=torch.float64)
    if start is None:
        start = (np.zeros((y.shape[1], x.shape[1])), np.zeros(y.shape[1]))
    weight = torch.tensor(np.asarray(start[0]), dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(np.asarray(start[1]), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], lr=1, max_iter=500, history_size=20, tolerance_grad=tolerance,
                                  tolerance_change=1e-15, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = F.cross_entropy(x @ weight.T + bias, y) + l2 * ((weight ** 2).sum() + (bias ** 2).sum())
        loss.backward()
        return loss

    gradient = float("inf")
    with single_threaded():
        for _ in range(max_rounds):
            optimiser.step(closure)
            closure()
            previous, gradient = gradient, max(weight.grad.abs().max().item(), bias.grad.abs().max().item())
            if gradient <= tolerance or gradient > previous / 2:  # converged, or stalled at float64's precision
                break
    if gradient > 100 * tolerance:
        log.warning("unique probe fit stopped at a largest gradient entry of %.2g (tolerance %.2g)", gradient, tolerance)
    return weight.detach().numpy(), bias.detach().numpy(), gradient


def probe_rows(data: Embedded) -> dict[tuple[int, str], tuple[dict[str, np.ndarray], np.ndarray]]:
    """{(n_objects, object): ({split: the rows of the items of that object count that contain the object},
    every item's attribute targets for that object (probe_targets))}, by object count, then the vocabulary's order."""
    counts = np.array([s["n_objects"] for s in data.items])
    targets_of = {shape: probe_targets(data.items, shape, data.vocabulary.attributes)
                  for shape in data.vocabulary.objects}
    found = {}
    for n_objects in sorted(set(counts.tolist())):
        for shape, (mask, targets) in targets_of.items():
            chosen = mask & (counts == n_objects)
            found[(int(n_objects), shape)] = ({name: np.flatnonzero(chosen & (data.split == name)) for name in SPLITS},
                                              targets)
    return found


def training_probe_sets(data: Embedded) -> dict[tuple[int, str], tuple[np.ndarray, np.ndarray]]:
    """{(n_objects, object): (rows, targets)}: the train-split items of that object count that contain the object
    (every item, so a caption counts once per item that has it), and their attribute targets (probe_targets)."""
    return {key: (index["train"], targets[index["train"]]) for key, (index, targets) in probe_rows(data).items()
            if len(index["train"])}


def unique_probe_weights(x, probe_sets: dict, l2: float, resamples: int, seed: int,
                         tolerance: float = UNIQUE_TOLERANCE) -> list[dict]:
    """The unique probe target's weights W (fit_unique_probe) for every probe set, on the raw rows `x`: first fitted
    on the whole training set, then on each of `resamples` bootstrap resamples of its items (resample b of probe
    set k draws len(rows) items with replacement by numpy's default_rng([seed, b, k]): the same items for either
    modality, whatever x). Returns [weights by key: whole set, resample 1, ..., resample `resamples`]."""
    x = np.asarray(x, dtype=np.float64)
    found = [{} for _ in range(resamples + 1)]
    for k, (key, (rows, targets)) in enumerate(sorted(probe_sets.items())):
        found[0][key] = fit_unique_probe(x[rows], targets, l2, tolerance=tolerance)[0]
        for b in range(1, resamples + 1):
            pick = np.random.default_rng([seed, b, k]).integers(0, len(rows), len(rows))
            found[b][key] = fit_unique_probe(x[rows[pick]], targets[pick], l2, tolerance=tolerance)[0]
    return found


def probe_settings(probes_cfg: dict) -> dict:
    """Keyword arguments of the configured probe solver."""
    return dict(probes_cfg[probes_cfg["solver"]])


def probe_table(data: Embedded, probes_cfg: dict, seed: int) -> tuple[pa.Table, dict]:
    """Image and text probes of every object category and object count; their weights by modality."""
    rows, weights = [], {}
    for modality in ("image", "text"):
        found, weights[modality] = run_probes(data, modality, probes_cfg["solver"], seed, **probe_settings(probes_cfg))
        rows += found
    return pa.Table.from_pylist(rows), weights


def save_probe_weights(weights: dict, path) -> None:
    """Probe weight matrices as an .npz with keys 'modality/n_objects/object' (run_probes' weights: for SGD the
    last epoch's, the authors' selection)."""
    arrays = {f"{modality}/{n}/{name}": w for modality, found in weights.items() for (n, name), w in found.items()}

    def write(partial):
        with open(partial, "wb") as handle:  # a file object: np.savez would add ".npz" to a path
            np.savez(handle, **arrays)

    write_atomically(path, write)


def load_probe_weights(path) -> dict:
    weights = {}
    with np.load(path) as stored:
        for key in stored.files:
            modality, n, name = key.split("/")
            weights.setdefault(modality, {})[(int(n), name)] = stored[key]
    return weights


def main(snakemake) -> None:
    from workflow_scripts.analyses.embedded import embedded_for_rule
    from workflow_scripts.common.logs import start_job
    from workflow_scripts.common.parquet import write_table

    start_job(snakemake)
    data, provenance = embedded_for_rule(snakemake)
    probes_cfg = snakemake.params.probes
    table, weights = probe_table(data, probes_cfg, snakemake.params.seed)
    table = table.add_column(0, "dataset_kind", pa.array([snakemake.params.kind] * table.num_rows, pa.string()))
    table = table.add_column(1, "paper_setting", pa.array([snakemake.params.paper_setting] * table.num_rows,
                                                           pa.string()))
    write_table(table, snakemake.output.probes, {**provenance, "probes": probes_cfg})
    save_probe_weights(weights, snakemake.output.weights)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
