"""Benchmark the expensive stages of the workflow: Blender rendering, CLIP image embedding and text embedding.

1. Render: seconds per image with Cycles for each (resolution, samples) in a small grid, using the
   project's own generate_scenes and render_scenes (denoise on), all in one process as a shard job
   renders; and the start-up of one bpy process (`python -c "import bpy"`), paid once per shard.
2. Embed: images/s of the project's batched path (embed_images: DataLoader, batches, workers) against
   a naive loop (one image at a time, no DataLoader) on the same rendered images, and the largest
   absolute difference between the two results. The images are rendered once for this part at the
   first resolution and the first sample count of the grid (reused if --out-dir already holds them).

3. Text: captions/s of embed_texts with the context trimmed to each batch's longest caption (the default) against
   the full context, on the same CLEVR captions and their hard negatives, and the largest difference between the
   two results.

Only prints figures; nothing is asserted. Run from the repository root:

    .venv/bin/python benchmarks/benchmark_backbone.py                       # CPU, random ViT-B-32
    .venv/bin/python benchmarks/benchmark_backbone.py --device cuda --precision bf16 --batch-size 256
    .venv/bin/python benchmarks/benchmark_backbone.py --pretrained openai   # needs cached weights

Tiny smoke test: --scenes 2 --embed-images 8 --texts 20 --resolutions 64x64 --samples 4
"""

import argparse
import ctypes
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root

from benchmarks.report import say, table  # noqa: E402

SPEC = dict(objects_per_scene=[2], negatives_per_scene=1, shards=1, splits=dict(train=.8, val=.1, test=.1),
            sampling="authors")


@contextmanager
def quiet_stdout():
    """Send file descriptor 1 (Blender's C-level prints) to /dev/null for the duration."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        ctypes.CDLL(None).fflush(None)  # C stdio buffers must empty into /dev/null, not later
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)



def resolution(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


def scene_rows(n: int, width: int, height: int, seed: int) -> list[dict]:
    from workflow_scripts.datasets.clevr import generate_scenes

    return generate_scenes("bench", dict(SPEC, scenes_per_count=n), width, height, seed).to_pylist()


def timed_render(rows, out_dir, samples: int, threads: int) -> float:
    from workflow_scripts.render.shard import render_scenes

    cfg = dict(samples=samples, denoise=True, device="CPU", gpu_backend="CUDA")
    with quiet_stdout():
        start = time.perf_counter()
        render_scenes(rows, out_dir, cfg, threads=threads)
        return time.perf_counter() - start


def bench_render(args, out_dir: Path) -> None:
    n = args.scenes
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import bpy"], check=True, capture_output=True)
    say(f"\nstarting one bpy process (python -c 'import bpy'), paid once per shard: "
        f"{time.perf_counter() - start:.2f} s")
    say(f"Render: Cycles on the CPU, denoise on, threads {args.render_threads}, {n} scene(s) per setting")
    warmup = timed_render(scene_rows(1, 64, 64, args.seed), out_dir / "warmup", 1, args.render_threads)
    say(f"first render call in this process (64x64, 1 sample, not in the table): {warmup:.2f} s")
    rows = []
    for width, height in args.resolutions:
        scenes = scene_rows(n, width, height, args.seed)
        for samples in args.samples:
            where = out_dir / "render" / f"{width}x{height}-s{samples}"
            seconds = timed_render(scenes, where, samples, args.render_threads)
            rows.append([f"{width}x{height}", samples, n, seconds, seconds / n])
    table(["resolution", "samples", "images", "seconds", "s/image"], rows)


def embed_paths(args, out_dir: Path) -> list[Path]:
    """--embed-images PNGs at the grid's first resolution and sample count, rendered unless present."""
    (width, height), samples = args.resolutions[0], args.samples[0]
    where = out_dir / "embed" / f"{width}x{height}-s{samples}"
    rows = scene_rows(args.embed_images, width, height, args.seed)
    paths = [where / f"{row['item_id']}.png" for row in rows]
    if not all(p.is_file() for p in paths):
        seconds = timed_render(rows, where, samples, args.render_threads)
        say(f"\nrendered {len(rows)} images for embedding ({width}x{height}, {samples} samples) in {seconds:.1f} s")
    return paths


def bench_embed(args, loaded, paths) -> None:
    import numpy as np
    import torch
    from PIL import Image

    from workflow_scripts.models.embed import autocast, embed_images

    model, preprocess, _, _ = loaded

    def sync():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    def naive(some_paths):
        out = []
        with torch.no_grad(), autocast(args.device, args.precision):
            for path in some_paths:
                with Image.open(path) as image:
                    pixels = preprocess(image.convert("RGB")).unsqueeze(0).to(args.device)
                out.append(model.encode_image(pixels).float().cpu().numpy())
        return np.concatenate(out)

    naive(paths[:1])  # warm-up: first-call allocations, cuDNN/oneDNN kernel choice
    sync()
    start = time.perf_counter()
    batched = embed_images(model, preprocess, paths, args.device, args.batch_size, args.num_workers, args.precision)
    t_batched = time.perf_counter() - start
    start = time.perf_counter()
    looped = naive(paths)
    sync()
    t_naive = time.perf_counter() - start

    n = len(paths)
    say(f"\nEmbed: {n} images, batch size {args.batch_size}, {args.num_workers} workers, "
        f"precision {args.precision if args.device.startswith('cuda') else 'fp32 (autocast only on CUDA)'}")
    table(["path", "images", "seconds", "images/s"],
          [["batched (embed_images)", n, t_batched, n / t_batched], ["naive loop", n, t_naive, n / t_naive]])
    say(f"speed-up of batched over naive: {t_naive / t_batched:.2f}x")
    say(f"max |batched - naive| = {np.abs(batched - looped).max():.2e} "
        f"(max |embedding| = {np.abs(looped).max():.2e}, shape {batched.shape})")


def bench_texts(args, loaded) -> None:
    import numpy as np

    from workflow_scripts.models.embed import embed_texts, trimmable_tower

    model, _, tokenizer, _ = loaded
    rows = scene_rows(args.texts, 320, 240, args.seed)
    texts = sorted({text for row in rows for text in [row["caption"], *row["negative_captions"]]})
    embed_texts(model, tokenizer, texts[:args.batch_size], args.device, args.batch_size, args.precision)  # warm-up
    timings, vectors = {}, {}
    for label, trim in (("trimmed context (embed_texts)", True), ("full context", False)):
        start = time.perf_counter()
        vectors[label] = embed_texts(model, tokenizer, texts, args.device, args.batch_size, args.precision, trim=trim)
        timings[label] = time.perf_counter() - start
    full, trimmed = vectors["full context"], vectors["trimmed context (embed_texts)"]
    say(f"\nText: {len(texts)} distinct CLEVR captions and negatives, batch size {args.batch_size}; trimming "
        f"{'applies' if trimmable_tower(model) is not None else 'does not apply (full context)'} to this tower")
    table(["path", "texts", "seconds", "texts/s"], [[label, len(texts), s, len(texts) / s] for label, s in timings.items()])
    say(f"speed-up of trimmed over full context: {timings['full context'] / timings['trimmed context (embed_texts)']:.2f}x")
    say(f"max |trimmed - full| = {np.abs(trimmed - full).max():.2e} (max |embedding| = {np.abs(full).max():.2e})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=4, help="images per render setting")
    parser.add_argument("--embed-images", type=int, default=64)
    parser.add_argument("--texts", type=int, default=500, help="CLEVR scenes whose captions and negatives are embedded")
    parser.add_argument("--resolutions", type=resolution, nargs="+", default=[(224, 224), (320, 240)],
                        metavar="WxH")
    parser.add_argument("--samples", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--render-threads", type=int, default=os.cpu_count())
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--pretrained", default="none", help="open_clip tag, checkpoint path, or none")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--precision", choices=["bf16", "fp16", "fp32"], default="fp32")
    parser.add_argument("--skip-render", action="store_true", help="skip the render grid")
    parser.add_argument("--skip-embed", action="store_true")
    parser.add_argument("--out-dir", type=Path, help="keep images here (default: a temporary directory)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from workflow_scripts.common.devices import resolve_device
    from workflow_scripts.models.loading import load_model

    args.device = resolve_device(args.device)
    loaded = None if args.skip_embed else load_model(args.model, args.pretrained, args.device, args.seed)
    say(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"device {args.device}" + (f" ({torch.cuda.get_device_name(args.device)})" if args.device != "cpu" else ""))
    say(f"weights: {args.model}: " + (loaded[3]["weights"] if loaded else "(embedding skipped)"))

    with tempfile.TemporaryDirectory(prefix="benchmark_backbone-") as tmp:
        out_dir = args.out_dir or Path(tmp)
        if not args.skip_render:
            bench_render(args, out_dir)
        if not args.skip_embed:
            bench_embed(args, loaded, embed_paths(args, out_dir))
            bench_texts(args, loaded)


if __name__ == "__main__":
    main()
