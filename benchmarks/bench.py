"""`make bench`: every benchmark in one run, then one table of where the hours go, each figure beside its anchor
measured in the same run, and the paper config's estimated hours for rendering and embedding.

1. benchmark_render: the chosen render settings against a render at the CLEVR generator's 512 samples, for 2- and
   10-object scenes.
2. benchmark_backbone: image embedding against the model's in-memory forward; text
   embedding with the context trimmed against the full context.
3. benchmark_paper_a: scikit-learn probes against the authors' SGD; LABCLIP against the authors' loop.
4. The paper config (config.yaml, or --config): its rendered items (the DAG's counts, from each dataset kind's
   planned items) and models, times the measured per-item costs.

Run from the repository root (about 11 minutes on 2 cores): .venv/bin/python benchmarks/bench.py
Options: --quick (small sizes: a smoke test of the whole chain, figures not meaningful), --config PATH.
"""

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import benchmark_backbone, benchmark_paper_a, benchmark_render  # noqa: E402
from benchmarks.report import say, table  # noqa: E402

QUICK = {
    # Tolerances wide enough that a setting is chosen, so the quick run goes through the chosen settings' rows.
    "render": ["--scenes", "1", "--objects", "2", "3", "--resolution", "64x48", "--reference-samples", "16",
               "--samples", "2", "4", "--light-paths", "4,2,2", "--tolerance", "255", "--tolerance-p99", "255"],
    "backbone": ["--embed-images", "8", "--texts", "20", "--resolution", "64x64", "--batch-size", "4"],
    "paper_a": ["--scenes", "300", "--dim", "96", "--sgd-epochs", "3", "--labclip-epochs", "2"],
}
FULL = {"render": [], "backbone": [], "paper_a": []}


def rendered_items(config_path: Path) -> tuple[dict[str, dict[int, int]], dict[str, int], int]:
    """({dataset: {object count: rendered images}}, {dataset: texts (captions and their negatives)}, models) of a
    config: every entry whose kind renders its images and knows its item counts from the config (planned_items),
    whether or not its input folders exist here."""
    import yaml

    from workflow_scripts.config import validate_config
    from workflow_scripts.datasets.registry import dataset_kinds

    config = validate_config(yaml.safe_load(config_path.read_text()))
    kinds = dataset_kinds(config.get("kind_modules", ()))
    images, texts = {}, {}
    for name, spec in config["datasets"].items():
        kind = kinds[spec["kind"]]
        if kind.planned_items is None or not kind.images_of(name, spec):
            continue
        images[name] = kind.planned_items(name, spec)
        texts[name] = sum(images[name].values()) * (1 + spec.get("negatives_per_scene", 0))
    return images, texts, len(config["models"])


def ratio(value: float, anchor: float) -> str:
    return f"{value / anchor:.2f}x"


def render_seconds(counts: dict[int, int], measured: dict[int, float]) -> float:
    """Seconds to render images of the given {object count: images}, each image's time interpolated linearly in
    its object count between the measured {object count: s/image} (the nearest measured count outside them)."""
    import numpy as np

    known = sorted(measured)
    return sum(items * float(np.interp(n, known, [measured[k] for k in known])) for n, items in counts.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the chain, figures not meaningful")
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL

    render = benchmark_render.main(sizes["render"])
    backbone = benchmark_backbone.main(sizes["backbone"])
    paper_a = benchmark_paper_a.main(sizes["paper_a"])

    say("\n=== Where the hours go: each figure beside its anchor, measured in this run ===")
    rows = []
    for n, reference_s in render["reference_s"].items():
        reference = f"{reference_s:.1f} s/image at the reference's samples"
        if render["chosen"]:
            samples, paths, per_count = render["chosen"]
            seconds, mean, _ = per_count[n]
            rows.append([f"render, {n} objects (chosen settings)", f"{seconds:.2f} s/image ({samples} samples, "
                         f"bounces {paths['max_bounces']}/{paths['diffuse_bounces']}/{paths['glossy_bounces']}; "
                         f"mean diff {mean:.2f} levels)", reference, ratio(seconds, reference_s)])
        else:
            rows.append([f"render, {n} objects", "no candidate within the tolerance", reference, "-"])
    embed, texts = backbone["embed"], backbone["texts"]
    rows.append(["image embedding (embed_images)", f"{embed['embed_images']:.1f} img/s",
                 f"{embed['limit']:.1f} img/s model-only in-memory forward", ratio(embed["embed_images"], embed["limit"])])
    rows.append(["text embedding (trimmed context)", f"{texts['trimmed']:.0f} texts/s",
                 f"{texts['full']:.0f} texts/s full context", ratio(texts["trimmed"], texts["full"])])
    for noise, probes in paper_a["probes"].items():
        for modality, (sgd, fast, difference) in probes.items():
            rows.append([f"{modality} probes (scikit-learn), noise {noise:g}",
                         f"{fast:.3f} s/probe (acc diff {difference:+.3f})", f"{sgd:.3f} s/probe authors' SGD",
                         f"{sgd / fast:.1f}x faster"])
    for mode, (authors, full, early, accuracy) in paper_a["labclip"].items():
        rows.append([f"LABCLIP-{mode}, all epochs", f"{full:.2f} s (acc {accuracy['last']:.3f})",
                     f"{authors:.2f} s authors' loop (acc {accuracy['authors']:.3f})", ratio(full, authors)])
        rows.append([f"LABCLIP-{mode}, early stopping", f"{early:.2f} s (best_val acc {accuracy['early best']:.3f})",
                     f"{authors:.2f} s authors' loop", ratio(early, authors)])
    table(["stage", "now", "anchor", "ratio"], rows)

    images, text_counts, models = rendered_items(args.config)
    cores = os.cpu_count()
    render_s = ({n: seconds for n, (seconds, _, _) in render["chosen"][2].items()} if render["chosen"]
                else render["reference_s"])
    n_images = sum(sum(counts.values()) for counts in images.values())
    n_texts = sum(text_counts.values())
    hours = {"render": sum(render_seconds(counts, render_s) for counts in images.values()) / 3600,
             "image embedding": n_images * models / embed["embed_images"] / 3600,
             "text embedding": n_texts * models / texts["trimmed"] / 3600}
    say(f"\n=== {args.config.name}: rendered datasets "
        f"{ {name: sum(counts.values()) for name, counts in images.items()} } ({n_images} images, up to {n_texts} "
        f"texts), {models} models ===")
    table(["stage", f"hours on this {cores}-core machine", "core-hours"],
          [[stage, value, value * cores] for stage, value in hours.items()])
    say("(per-item costs measured above, on the CPU with random weights; each image's render time interpolated in its "
        f"object count between the counts measured, {sorted(render_s)}; datasets read from files, e.g. COCO, are not "
        "counted)")


if __name__ == "__main__":
    main()
