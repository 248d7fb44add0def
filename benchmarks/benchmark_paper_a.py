"""Benchmark Paper A's two trained analyses, linear probes and LABCLIP, on synthetic known-answer embeddings.

1. Probes: for the image and the text modality, seconds and mean test accuracy (over the shape
   categories) of the authors' solver (SGD lr 0.1, batch 32, 100 epochs) and of the fast one (L-BFGS
   with its default l2 grid), through the project's run_probes; then the speed-up and the accuracy
   difference between the two.
2. LABCLIP: for SB and HNB with the authors' CLEVR setting (Adam lr 0.01, 50 epochs, batch 128), through
   train_labclip: training seconds, seconds per epoch, the epoch kept, and test binding accuracy
   (image-to-text, with the map) beside the vanilla one (no map).

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

SPEC = dict(objects_per_scene=[2], negatives_per_scene=1, shards=1, splits=dict(train=.8, val=.1, test=.1))
WIDTH, HEIGHT = 320, 240  # only constrain object placement; nothing is rendered
MODALITIES = ("image", "text")

from benchmarks.report import say, table  # noqa: E402






def make_data(args):
    from synthetic import synthetic_embedded
    from workflow_scripts.datasets.clevr import generate_scenes

    rows = generate_scenes("bench", dict(SPEC, scenes_per_count=args.scenes), WIDTH, HEIGHT, args.seed).to_pylist()
    return synthetic_embedded(rows, args.dim, args.noise, args.seed)


def bench_probes(args, data) -> None:
    import numpy as np

    from workflow_scripts.analyses.probes import run_probes, train_probe_lbfgs, train_probe_sgd
    from workflow_scripts.config import validate_config

    minimal = {"datasets": {"d": {"objects_per_scene": [2], "scenes_per_count": 1}},
               "models": [{"id": "m", "name": "ViT-B-32", "pretrained": "none"}]}
    l2_grid = validate_config(minimal)["paper_a"]["probes"]["lbfgs"]["l2_grid"]  # the schema's default
    settings = {
        "sgd": dict(lr=args.sgd_lr, batch_size=args.sgd_batch_size, epochs=args.sgd_epochs),
        "lbfgs": dict(l2_grid=l2_grid, max_iter=args.lbfgs_max_iter),
    }
    classes = len(data.vocabulary.attributes)
    described = {
        "sgd": f"SGD lr {args.sgd_lr:g}, batch {args.sgd_batch_size}, {args.sgd_epochs} epochs, best val epoch",
        "lbfgs": f"L-BFGS full batch, default l2 grid, max_iter {args.lbfgs_max_iter}, best val l2",
    }
    say("\nProbes: one per shape on the train split, chosen on val, scored on test (run_probes; "
        "the solvers run single-threaded by design)")
    for solver, text in described.items():
        say(f"  {solver}: {text}")
    start = time.perf_counter()  # warm-up: first-call costs of torch's autograd, SGD and L-BFGS
    x, y = data.image[:64], np.eye(classes, dtype=np.float32)[np.arange(64) % classes]
    train_probe_sgd(x, y, x, y, **dict(settings["sgd"], epochs=1), seed=args.seed)
    train_probe_lbfgs(x, y, x, y, **settings["lbfgs"])
    say(f"warm-up (both solvers once on {len(x)} rows, not in the table): {time.perf_counter() - start:.2f} s")
    rows, results = [], {}
    for modality in MODALITIES:
        for solver in ("sgd", "lbfgs"):
            start = time.perf_counter()
            found, _ = run_probes(data, modality, solver, args.seed, **settings[solver])
            seconds = time.perf_counter() - start
            accuracy = {r["object"]: r["test_accuracy"] for r in found}
            results[modality, solver] = seconds, accuracy
            n_train = sorted(r["n_train"] for r in found)
            rows.append([modality, solver, len(found), f"{n_train[0]}-{n_train[-1]}" if found else "-", seconds,
                         float(np.mean(list(accuracy.values()))) if found else "-",
                         float(np.mean([r["chance"] for r in found])) if found else "-",
                         ", ".join(f"{r['object']}: {r['chosen']}" for r in found)])
    table(["modality", "solver", "probes", "n_train", "seconds", "mean test acc", "chance", "chosen on val"], rows)

    say("\nsgd against lbfgs (difference: lbfgs - sgd)")
    rows = []
    for modality in MODALITIES:
        (t_sgd, a_sgd), (t_lbfgs, a_lbfgs) = results[modality, "sgd"], results[modality, "lbfgs"]
        shapes = sorted(set(a_sgd) & set(a_lbfgs))
        if not shapes:
            rows.append([modality, "-", "-", "-"])
            continue
        diffs = [a_lbfgs[s] - a_sgd[s] for s in shapes]
        rows.append([modality, f"{t_sgd / t_lbfgs:.3g}x", float(np.mean(diffs)), float(max(map(abs, diffs)))])
    table(["modality", "speed-up", "mean acc diff", "max |acc diff| per shape"], rows)


def bench_labclip(args, data) -> None:
    import torch

    from workflow_scripts.analyses.labclip import map_text, train_labclip
    from workflow_scripts.analyses.similarity import image_to_text_accuracy

    def sync():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize(args.device)

    train, val, test = (data.subset(data.split == name) for name in ("train", "val", "test"))
    settings = dict(lr=args.labclip_lr, batch_size=args.labclip_batch_size, seed=args.seed, device=args.device)
    vanilla = image_to_text_accuracy(test.image, test.caption, test.negative)

    sync()
    start = time.perf_counter()
    train_labclip(val, val, args.modes[0], epochs=1, **settings)  # first-call allocations, kernel choice, CUDA init
    sync()
    say(f"\nLABCLIP: Adam lr {args.labclip_lr:g}, {args.labclip_epochs} epochs, batch {args.labclip_batch_size}, "
        f"device {args.device}; {len(train.image)} train / {len(val.image)} val / {len(test.image)} test scenes")
    say(f"warm-up (1 epoch on the val split, not in the table): {time.perf_counter() - start:.2f} s")
    rows = []
    for mode in args.modes:
        sync()
        start = time.perf_counter()
        model, history = train_labclip(train, val, mode, epochs=args.labclip_epochs, **settings)
        sync()
        seconds = time.perf_counter() - start
        best = next(h for h in history if h["best"])
        mapped = image_to_text_accuracy(test.image, map_text(model, test.caption), map_text(model, test.negative))
        rows.append([mode, seconds, seconds / args.labclip_epochs, f"{best['epoch']}/{args.labclip_epochs}",
                     best["val_binding_accuracy"], mapped, vanilla])
    table(["mode", "train seconds", "s/epoch", "best epoch", "val acc (best)", "test acc LABCLIP",
           "test acc vanilla"], rows)
    say("(s/epoch includes the per-epoch validation pass; binding accuracy is image-to-text: the image is "
        "closer to its caption than to the attribute-swapped one; chance 0.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=5000, help="two-object scenes, as the authors' CLEVR data")
    parser.add_argument("--dim", type=int, default=512, help="embedding size (ViT-B/32: 512; at least 59)")
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="for LABCLIP: auto (cuda if available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads")
    parser.add_argument("--skip-probes", action="store_true")
    parser.add_argument("--skip-labclip", action="store_true")
    parser.add_argument("--sgd-lr", type=float, default=0.1)
    parser.add_argument("--sgd-batch-size", type=int, default=32)
    parser.add_argument("--sgd-epochs", type=int, default=100)
    parser.add_argument("--lbfgs-max-iter", type=int, default=500)
    parser.add_argument("--labclip-lr", type=float, default=0.01)
    parser.add_argument("--labclip-epochs", type=int, default=50)
    parser.add_argument("--labclip-batch-size", type=int, default=128)
    parser.add_argument("--modes", nargs="+", choices=["SB", "HNB"], default=["SB", "HNB"])
    args = parser.parse_args()

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

    if not args.skip_probes:
        bench_probes(args, data)
    if not args.skip_labclip:
        bench_labclip(args, data)


if __name__ == "__main__":
    main()
