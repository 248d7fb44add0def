"""Choose the render settings by measurement: seconds per image and pixel error against a high-sample reference.

For a few CLEVR scenes of each object count (--objects, default 2 and 10: config.yaml renders 2 to 10; the project's
generate_scenes, at the paper config's 320x240), each rendered by the project's render_scenes in one process as a
shard job renders them (Cycles on the CPU, OpenImageDenoise on):

1. a reference at --reference-samples (default 512) with generous bounce limits (8 / 4 / 4);
2. every candidate (samples x light paths): seconds per image, and its difference from the reference in 8-bit
   levels: the mean over pixels and channels, and the 99th percentile.

The settings to use are the cheapest candidate whose mean difference is at most --tolerance levels (default 1.0)
and whose 99th percentile is at most --tolerance-p99 levels (default 8) at every object count, where candidates
within --time-ties (default 5%) of its time count as tied and the lowest mean difference wins; the script names
it. With --model (an open_clip name, or local-dir:<folder> of a CLIP the workflow trained, with --pretrained), each
candidate also gets its embedding difference: the mean over scenes of 1 - cosine(candidate, reference) of that CLIP's image
embeddings, beside the same measure between different scenes' references for scale. Only prints; nothing is
asserted. Run from the repository root:

    .venv/bin/python benchmarks/benchmark_render.py                           # about 9 minutes on 2 cores
    .venv/bin/python benchmarks/benchmark_render.py --device GPU --gpu-backend OPTIX

Tiny smoke test: --scenes 1 --objects 2 3 --resolution 64x48 --reference-samples 16 --samples 2 4 --light-paths 4,2,2
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root

from benchmarks.benchmark_backbone import quiet_stdout, resolution, scene_rows  # noqa: E402
from benchmarks.report import say, table  # noqa: E402

REFERENCE_LIGHT_PATHS = {"max_bounces": 8, "diffuse_bounces": 4, "glossy_bounces": 4}


def light_paths(text: str) -> dict:
    """'4,2,2' -> {max_bounces: 4, diffuse_bounces: 2, glossy_bounces: 2}."""
    total, diffuse, glossy = (int(v) for v in text.split(","))
    return {"max_bounces": total, "diffuse_bounces": diffuse, "glossy_bounces": glossy}


def render(rows, out_dir: Path, samples: int, paths: dict, args) -> tuple[float, "np.ndarray"]:
    """(seconds per image, the images as one float array in 8-bit levels)."""
    import numpy as np
    from PIL import Image

    from workflow_scripts.render.shard import render_scenes

    cfg = dict(samples=samples, denoise=True, device=args.device, gpu_backend=args.gpu_backend, light_paths=paths)
    with quiet_stdout():
        start = time.perf_counter()
        render_scenes(rows, out_dir, cfg, threads=args.threads)
        seconds = time.perf_counter() - start
    images = [np.asarray(Image.open(out_dir / f"{row['item_id']}.png").convert("RGB"), dtype=float) for row in rows]
    return seconds / len(rows), np.stack(images)


def embedding_distance(model_name: str, pretrained: str, found_images: dict, reference, seed: int) -> tuple[dict, float]:
    """({candidate key: mean over scenes of 1 - cosine(candidate, reference)}, the mean 1 - cosine between
    different scenes' references), with the CLIP's image embeddings of the rendered images."""
    import numpy as np
    import torch
    from PIL import Image

    from workflow_scripts.models.loading import load_model

    model, preprocess, _, provenance = load_model(model_name, pretrained, "cpu", seed)
    say(f"embedding difference with {model_name}: {provenance['weights']}")

    def embed(images):
        pixels = torch.stack([preprocess(Image.fromarray(image.astype(np.uint8))) for image in images])
        with torch.inference_mode():
            vectors = model.encode_image(pixels).float()
        return torch.nn.functional.normalize(vectors, dim=-1).numpy()

    anchor = embed(reference)
    between = 1 - anchor @ anchor.T
    scale = float(between[~np.eye(len(anchor), dtype=bool)].mean()) if len(anchor) > 1 else float("nan")
    return {key: float((1 - (embed(images) * anchor).sum(axis=1)).mean()) for key, images in found_images.items()}, scale


def main(argv=None) -> dict:
    """Runs the study with command-line arguments `argv`; returns {"chosen": the chosen candidate or None,
    "reference_s": {object count: seconds per reference image}, "rows": every candidate, each (samples, light paths,
    {object count: (s/image, mean, p99)}), "bpy_startup_s": seconds to start one bpy process}."""
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=3, help="scenes per object count")
    parser.add_argument("--objects", type=int, nargs="+", default=[2, 10],
                        help="object counts (config.yaml renders CLEVR scenes of 2 to 10 objects)")
    parser.add_argument("--resolution", type=resolution, default=(320, 240), metavar="WxH")
    parser.add_argument("--reference-samples", type=int, default=512)
    parser.add_argument("--samples", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    parser.add_argument("--light-paths", type=light_paths, nargs="+", metavar="MAX,DIFFUSE,GLOSSY",
                        default=[light_paths("4,2,2"), light_paths("2,1,1")])
    parser.add_argument("--tolerance", type=float, default=1.0, help="largest mean difference, in 8-bit levels")
    parser.add_argument("--tolerance-p99", type=float, default=8.0, help="largest 99th percentile, in 8-bit levels")
    parser.add_argument("--time-ties", type=float, default=0.05,
                        help="candidates within this fraction of the cheapest's time are tied; the lower error wins")
    parser.add_argument("--device", choices=["CPU", "GPU"], default="CPU")
    parser.add_argument("--gpu-backend", default="CUDA")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", help="a CLIP for the embedding difference: open_clip name or local-dir:<folder>")
    parser.add_argument("--pretrained", default=None, help="with --model: an open_clip tag or checkpoint path")
    args = parser.parse_args(argv)

    width, height = args.resolution
    scenes = {n: scene_rows(args.scenes, width, height, args.seed, objects=n) for n in args.objects}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import bpy"], check=True, capture_output=True)
    startup = time.perf_counter() - start
    say(f"\nstarting one bpy process (python -c 'import bpy'), paid once per shard: {startup:.2f} s")
    say(f"Render settings: {args.scenes} CLEVR scenes of each object count {args.objects} at {width}x{height}, "
        f"Cycles on the {args.device} with {args.threads} threads, OpenImageDenoise on, one process")
    reference_s, reference, found, found_images = {}, {}, [], {}
    with tempfile.TemporaryDirectory(prefix="benchmark_render-") as tmp:
        tmp = Path(tmp)
        render(scenes[args.objects[0]][:1], tmp / "warmup", 1, REFERENCE_LIGHT_PATHS, args)  # first-call costs
        for n, rows in scenes.items():
            reference_s[n], reference[n] = render(rows, tmp / f"reference-{n}", args.reference_samples,
                                                  REFERENCE_LIGHT_PATHS, args)
            say(f"reference, {n} objects: {args.reference_samples} samples, bounces {REFERENCE_LIGHT_PATHS}: "
                f"{reference_s[n]:.1f} s/image")
        for paths in args.light_paths:
            bounces = f"{paths['max_bounces']}-{paths['diffuse_bounces']}-{paths['glossy_bounces']}"
            for samples in args.samples:
                per_count, images_of = {}, []
                for n, rows in scenes.items():
                    seconds, images = render(rows, tmp / f"s{samples}-{bounces}-{n}", samples, paths, args)
                    difference = np.abs(images - reference[n])
                    per_count[n] = (seconds, float(difference.mean()), float(np.percentile(difference, 99)))
                    images_of.append(images)
                found.append((samples, paths, per_count))
                found_images[len(found) - 1] = np.concatenate(images_of)
    distances, scale = ({}, None) if not args.model else embedding_distance(
        args.model, args.pretrained, found_images, np.concatenate(list(reference.values())), args.seed)
    table(["samples", "bounces (max, diffuse, glossy)", "objects", "s/image", "x reference time",
           "mean |diff| (levels)", "p99 |diff|"] + (["1 - cos to reference"] if distances else []),
          [[s, f"{p['max_bounces']}, {p['diffuse_bounces']}, {p['glossy_bounces']}", n, t,
            f"{t / reference_s[n]:.3f}", m, q] + ([f"{distances[i]:.2e}"] if distances else [])
           for i, (s, p, per_count) in enumerate(found) for n, (t, m, q) in per_count.items()])
    if distances:
        say(f"(for scale: 1 - cos between different scenes' references, mean {scale:.2e})")
    chosen = choose_settings(found, args.tolerance, args.tolerance_p99, args.time_ties)
    if chosen:
        samples, paths, per_count = chosen
        say(f"chosen (cheapest within mean {args.tolerance:g} and p99 {args.tolerance_p99:g} levels at every object "
            f"count, times within {args.time_ties:.0%} tied): {samples} samples, bounces {paths}: " + "; ".join(
                f"{n} objects {t:.2f} s/image, mean {m:.2f}, p99 {q:.1f} levels" for n, (t, m, q) in per_count.items()))
    else:
        say(f"no candidate within mean {args.tolerance:g} and p99 {args.tolerance_p99:g} levels at every object count")
    return {"chosen": chosen, "reference_s": reference_s, "rows": found, "bpy_startup_s": startup}


def choose_settings(found: list, tolerance: float, tolerance_p99: float, time_ties: float):
    """The candidate (samples, paths, {object count: (s/image, mean, p99)}) to use, or None: among those within
    `tolerance` (mean) and `tolerance_p99` levels at every object count, the cheapest (summed s/image over the counts);
    candidates within `time_ties` (a fraction) of its time are tied with it, since one run's timings differ by a few
    percent, and the tie goes to the smallest largest mean difference."""
    passing = [row for row in found if all(m <= tolerance and q <= tolerance_p99 for _, m, q in row[2].values())]
    if not passing:
        return None

    def seconds(row):
        return sum(t for t, _, _ in row[2].values())

    fastest = min(seconds(row) for row in passing)
    tied = [row for row in passing if seconds(row) <= fastest * (1 + time_ties)]
    return min(tied, key=lambda row: (max(m for _, m, _ in row[2].values()), seconds(row)))


if __name__ == "__main__":
    main()
