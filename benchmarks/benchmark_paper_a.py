"""Benchmark Paper A's two trained analyses, linear probes and LABCLIP, on synthetic known-answer embeddings.

1. Probes: for the image and the text modality, seconds per probe and mean test accuracy (over the shape
   categories) of the authors' solver (SGD lr 0.1, batch 32, 100 epochs, last epoch) and of the fast path
   (scikit-learn's LogisticRegression with the schema's C grid, chosen on val), through the project's
   run_probes; then the speed-up and the accuracy difference between the two. Twice: on the embeddings of
   --noise (every probe near accuracy 1, as the paper's CLEVR text probes: scikit-learn's C path stops at the first
   C with perfect validation accuracy) and of --hard-noise (image probes near the paper's 0.96: the whole path runs).
2. LABCLIP: for SB and HNB with the authors' CLEVR setting (Adam lr 0.01, 50 epochs, batch 128): the authors' loop
   (reimplemented here from REFERENCE.md's description: authors_labclip) against train_labclip for all epochs and
   with early stopping: training seconds, as a ratio to the authors' loop, the epoch kept, and test binding
   accuracy beside the vanilla one (no map).

The embeddings come from tests/synthetic.py (binding linearly decodable inside each modality,
invisible to cross-modal cosine), not from CLIP: no pretrained weights are needed or used. The figures
are about speed and about whether the solvers agree, not about CLIP. Only prints; nothing is asserted.
Run from the repository root:

    .venv/bin/python benchmarks/benchmark_paper_a.py                      # authors' sizes, CPU or CUDA
    .venv/bin/python benchmarks/benchmark_paper_a.py --device cuda --skip-probes
    .venv/bin/python benchmarks/benchmark_paper_a.py --threads 1 --skip-labclip

Tiny smoke test: --scenes 300 --dim 96 --sgd-epochs 3 --labclip-epochs 2
"""

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the repository root
sys.path.insert(0, str(REPO / "tests"))  # the synthetic known-answer embeddings

SPEC = dict(objects_per_scene=[2], negatives_per_scene=1, shards=1, splits=dict(train=.8, val=.1, test=.1),
            sampling="authors")
WIDTH, HEIGHT = 320, 240  # only constrain object placement; nothing is rendered
MODALITIES = ("image", "text")

from benchmarks.report import say, table  # noqa: E402






def make_data(args, noise: float = None):
    from synthetic import synthetic_embedded
    from workflow_scripts.datasets.clevr import generate_scenes

    rows = generate_scenes("bench", dict(SPEC, scenes_per_count=args.scenes), WIDTH, HEIGHT, args.seed).to_pylist()
    return synthetic_embedded(rows, args.dim, args.noise if noise is None else noise, args.seed)


def bench_probes(args, data, noise: float) -> dict:
    """The authors' SGD against the scikit-learn fast path, per modality, on `data` (embeddings of noise `noise`):
    seconds per probe and mean test accuracy. Returns {modality: (seconds per probe with SGD, with scikit-learn,
    accuracy difference)}."""
    import numpy as np

    from workflow_scripts.analyses.probes import run_probes, train_probe_sgd, train_probe_sklearn
    from workflow_scripts.config import validate_config

    minimal = {"datasets": {"d": {"objects_per_scene": [2], "scenes_per_count": 10}},
               "models": [{"id": "m", "name": "ViT-B-32", "pretrained": "none"}]}
    defaults = validate_config(minimal)["paper_a"]["probes"]
    settings = {
        "sgd": dict(lr=args.sgd_lr, batch_size=args.sgd_batch_size, epochs=args.sgd_epochs),
        "sklearn": defaults["sklearn"],  # the schema's defaults
    }
    classes = len(data.vocabulary.attributes)
    say(f"\nProbes on the embeddings of noise {noise:g}: one per shape on the train split, scored on test (run_probes; "
        "both solvers single-threaded by design)")
    say(f"  sgd (the authors'): lr {args.sgd_lr:g}, batch {args.sgd_batch_size}, {args.sgd_epochs} epochs, last epoch kept")
    say(f"  sklearn (the fast path): LogisticRegression (lbfgs) after StandardScaler, Cs {settings['sklearn']['Cs']}, "
        f"max_iter {settings['sklearn']['max_iter']}, C chosen on val")
    start = time.perf_counter()  # warm-up: first-call costs of torch's autograd, SGD and scikit-learn
    x, y = data.image[:64], np.eye(classes, dtype=np.float32)[np.arange(64) % classes]
    train_probe_sgd(x, y, x, y, **dict(settings["sgd"], epochs=1), seed=args.seed)
    train_probe_sklearn(x, y, x, y, **settings["sklearn"])
    say(f"warm-up (both solvers once on {len(x)} rows, not in the table): {time.perf_counter() - start:.2f} s")
    rows, results = [], {}
    selection = {"sgd": "last_epoch", "sklearn": "best_val"}
    for modality in MODALITIES:
        for solver in ("sgd", "sklearn"):
            start = time.perf_counter()
            found, _ = run_probes(data, modality, solver, args.seed, **settings[solver])
            seconds = time.perf_counter() - start
            found = [r for r in found if r["selection"] == selection[solver]]
            accuracy = {r["object"]: r["test_accuracy"] for r in found}
            results[modality, solver] = seconds / max(1, len(found)), accuracy
            n_train = sorted(r["n_train"] for r in found)
            rows.append([modality, f"{solver} {selection[solver]}", len(found),
                         f"{n_train[0]}-{n_train[-1]}" if found else "-", seconds, seconds / max(1, len(found)),
                         float(np.mean(list(accuracy.values()))) if found else "-",
                         ", ".join(f"{r['object']}: {r['chosen']}" for r in found)])
    table(["modality", "probe", "probes", "n_train", "seconds", "s/probe", "mean test acc", "chosen"], rows)
    summary, rows = {}, []
    for modality in MODALITIES:
        (t_sgd, a_sgd), (t_fast, a_fast) = results[modality, "sgd"], results[modality, "sklearn"]
        shapes = sorted(set(a_sgd) & set(a_fast))
        if shapes:
            difference = float(np.mean([a_fast[s] - a_sgd[s] for s in shapes]))
            summary[modality] = (t_sgd, t_fast, difference)
            rows.append([modality, t_sgd, t_fast, f"{t_sgd / t_fast:.1f}x", difference])
    table(["modality", "sgd s/probe", "sklearn s/probe", "speed-up", "acc diff (sklearn - sgd)"], rows)
    return summary


def authors_labclip(train, val, mode: str, *, lr: float, epochs: int, batch_size: int, seed: int, device: str):
    """The authors' LABCLIP loop as REFERENCE.md describes it, the anchor for train_labclip's time: a shuffled
    DataLoader over a TensorDataset, the captions and negatives mapped by two calls, the running loss read after
    every step (.item()), a validation pass logged after every epoch (its loss read per batch, its accuracy
    positive > negative on the host), the last epoch kept. Returns the map."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    from workflow_scripts.analyses.labclip import LabClip
    from workflow_scripts.models.losses import hnb_loss, sb_loss

    def loader(split, shuffle):
        tensors = (F.normalize(torch.as_tensor(split.image), dim=-1), torch.as_tensor(split.caption),
                   torch.as_tensor(split.negative))
        return DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=shuffle)

    def loss_of(model, image, caption, negative):
        if mode == "SB":
            return sb_loss(image, model(caption), model.t)
        return hnb_loss(image, model(caption), model(negative), model.t)

    torch.manual_seed(seed)
    model = LabClip(train.image.shape[1]).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    train_loader, val_loader = loader(train, True), loader(val, False)
    for _ in range(epochs):
        model.train()
        running = 0.0
        for batch in train_loader:
            loss = loss_of(model, *(t.to(device) for t in batch))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            running += loss.item()
        model.eval()
        val_loss, correct = 0.0, []
        with torch.no_grad():
            for image, caption, negative in val_loader:
                image, caption, negative = image.to(device), caption.to(device), negative.to(device)
                val_loss += loss_of(model, image, caption, negative).item()
                correct += ((image * model(caption)).sum(-1) > (image * model(negative)).sum(-1)).tolist()
    return model


def bench_labclip(args, data) -> dict:
    """The authors' loop against train_labclip for the full epochs and with early stopping. Returns
    {mode: (authors' seconds, ours full, ours early-stopped, test accuracies)}."""
    import torch

    from workflow_scripts.analyses.labclip import map_text, train_labclip
    from workflow_scripts.analyses.similarity import CLEAN, binding_accuracy, has_distinct_negative

    def sync():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize(args.device)

    def timed(train_fn):
        sync()
        start = time.perf_counter()
        result = train_fn()
        sync()
        return time.perf_counter() - start, result

    train, val, test = (data.subset(data.split == name) for name in ("train", "val", "test"))
    distinct = has_distinct_negative(test.items, test.vocabulary)

    def accuracy(model):  # test binding accuracy, the clean rule
        return binding_accuracy(CLEAN, test.image, map_text(model, test.caption), map_text(model, test.negative),
                                distinct)[0]

    settings = dict(lr=args.labclip_lr, batch_size=args.labclip_batch_size, seed=args.seed, device=args.device)
    vanilla = binding_accuracy(CLEAN, test.image, test.caption, test.negative, distinct)[0]
    for mode in args.modes:  # first-call costs (allocations, kernel choice, CUDA init), not in the table
        timed(lambda: authors_labclip(val, val, mode, epochs=1, **settings))
        timed(lambda: train_labclip(val, val, mode, epochs=1, **settings))
    say(f"\nLABCLIP: Adam lr {args.labclip_lr:g}, {args.labclip_epochs} epochs, batch {args.labclip_batch_size}, "
        f"device {args.device}; {len(train.image)} train / {len(val.image)} val / {len(test.image)} test scenes; "
        f"early stopping with patience {args.patience}")
    rows, summary = [], {}
    for mode in args.modes:
        t_authors, model = timed(lambda: authors_labclip(train, val, mode, epochs=args.labclip_epochs, **settings))
        t_full, (full, history) = timed(lambda: train_labclip(train, val, mode, epochs=args.labclip_epochs, **settings))
        t_early, (early, early_history) = timed(lambda: train_labclip(train, val, mode, epochs=args.labclip_epochs,
                                                                      patience=args.patience, **settings))
        best = next(h["epoch"] for h in history if h["best"])
        found = {"authors": accuracy(model), "last": accuracy(full["last_epoch"]), "best": accuracy(full["best_val"]),
                 "early best": accuracy(early["best_val"])}
        rows += [[mode, "authors' loop, last epoch", f"{args.labclip_epochs}", t_authors, "1.00x", found["authors"]],
                 [mode, "train_labclip, last epoch", f"{args.labclip_epochs}", t_full, f"{t_full / t_authors:.2f}x",
                  found["last"]],
                 [mode, "train_labclip, best_val", f"{best} of {args.labclip_epochs}", t_full,
                  f"{t_full / t_authors:.2f}x", found["best"]],
                 [mode, f"early stopping (patience {args.patience}), best_val",
                  f"{next(h['epoch'] for h in early_history if h['best'])} of {len(early_history)}", t_early,
                  f"{t_early / t_authors:.2f}x", found["early best"]]]
        summary[mode] = (t_authors, t_full, t_early, found)
    table(["mode", "run", "epoch kept", "train seconds", "time / authors'", "test acc (clean rule)"], rows)
    say(f"(vanilla CLIP, no map: test acc {vanilla:.3f}; binding accuracy: the image is closer to its caption than to "
        "its attribute-swapped one, cosine, ties half, equal-colour scenes left out; chance 0.5)")
    return summary


def main(argv=None) -> dict:
    """Runs the benchmark with command-line arguments `argv`; returns the figures: {"probes": {noise: bench_probes},
    "labclip": bench_labclip}."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=5000, help="two-object scenes, as the authors' CLEVR data")
    parser.add_argument("--dim", type=int, default=512, help="embedding size (ViT-B/32: 512; at least 59)")
    parser.add_argument("--noise", type=float, default=0.05, help="the embeddings' noise (probes near accuracy 1)")
    parser.add_argument("--hard-noise", type=float, default=0.3,
                        help="the probes' second run: image probes near the paper's 0.96 (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="for LABCLIP: auto (cuda if available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads")
    parser.add_argument("--skip-probes", action="store_true")
    parser.add_argument("--skip-labclip", action="store_true")
    parser.add_argument("--sgd-lr", type=float, default=0.1)
    parser.add_argument("--sgd-batch-size", type=int, default=32)
    parser.add_argument("--sgd-epochs", type=int, default=100)
    parser.add_argument("--labclip-lr", type=float, default=0.01)
    parser.add_argument("--labclip-epochs", type=int, default=50)
    parser.add_argument("--labclip-batch-size", type=int, default=128)
    parser.add_argument("--modes", nargs="+", choices=["SB", "HNB"], default=["SB", "HNB"])
    parser.add_argument("--patience", type=int, default=5, help="LABCLIP early stopping's patience (epochs)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(max(1, args.threads))
    from workflow_scripts.common.devices import resolve_device

    args.device = resolve_device(args.device)
    say(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"device {args.device}" + (f" ({torch.cuda.get_device_name(args.device)})" if args.device != "cpu" else ""))
    start = time.perf_counter()
    data = make_data(args)
    split = data.split
    say(f"data: synthetic known-answer embeddings (dim {args.dim}, noise {args.noise:g}, seed {args.seed}), "
        f"{len(data.items)} two-object scenes (train {(split == 'train').sum()}, val {(split == 'val').sum()}, "
        f"test {(split == 'test').sum()}), made in {time.perf_counter() - start:.1f} s")
    say("no pretrained CLIP weights here: the figures are about speed and solver agreement, not about CLIP")

    probes = None
    if not args.skip_probes:
        probes = {args.noise: bench_probes(args, data, args.noise)}
        if args.hard_noise:
            probes[args.hard_noise] = bench_probes(args, make_data(args, args.hard_noise), args.hard_noise)
    return {"probes": probes,
            "labclip": None if args.skip_labclip else bench_labclip(args, data)}


if __name__ == "__main__":
    main()
