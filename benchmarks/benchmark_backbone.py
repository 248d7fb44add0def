"""Benchmark CLIP embedding, the stage after rendering: image embedding against the model's own limit, text
embedding with the context trimmed against the full context. (Rendering has its own study: benchmark_render.py.)

1. Images: on the same CLEVR scenes rendered once by the project's renderer (--embed-samples, not denoised: the
   images only need to exist; reused from --out-dir when present), images/s of (a) the model-only in-memory
   forward (every image decoded and preprocessed first, then forwards in batches of --batch-size), the limit;
   (b) the project's embed_images (DataLoader, --num-workers workers), as a ratio to (a); (c) a naive loop, one
   image at a time without a DataLoader; and the largest differences between their vectors.
2. Text: captions/s of embed_texts with the context trimmed to each batch's longest caption (the default) against
   the full context, on the same CLEVR captions and their hard negatives, and the largest difference between the
   two results.

Only prints figures; nothing is asserted. Run from the repository root:

    .venv/bin/python benchmarks/benchmark_backbone.py                       # CPU, random ViT-B-32
    .venv/bin/python benchmarks/benchmark_backbone.py --device cuda --precision bf16 --batch-size 256
    .venv/bin/python benchmarks/benchmark_backbone.py --pretrained openai   # needs cached weights

Tiny smoke test: --embed-images 8 --texts 20 --resolution 64x64
"""

import argparse
import ctypes
import os
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


def scene_rows(n: int, width: int, height: int, seed: int, objects: int = 2) -> list[dict]:
    """`n` CLEVR scenes of `objects` objects each, drawn by the authors' sampler."""
    from workflow_scripts.datasets.clevr import generate_scenes

    spec = dict(SPEC, scenes_per_count=n, objects_per_scene=[objects])
    return generate_scenes("bench", spec, width, height, seed).to_pylist()


def timed_render(rows, out_dir, samples: int, threads: int, denoise: bool = True) -> float:
    from workflow_scripts.render.shard import render_scenes

    cfg = dict(samples=samples, denoise=denoise, device="CPU", gpu_backend="CUDA")
    with quiet_stdout():
        start = time.perf_counter()
        render_scenes(rows, out_dir, cfg, threads=threads)
        return time.perf_counter() - start


def embed_paths(args, out_dir: Path) -> list[Path]:
    """--embed-images PNGs at --resolution and --embed-samples, rendered unless present."""
    (width, height), samples = args.resolution, args.embed_samples
    where = out_dir / "embed" / f"{width}x{height}-s{samples}"
    rows = scene_rows(args.embed_images, width, height, args.seed)
    paths = [where / f"{row['item_id']}.png" for row in rows]
    if not all(p.is_file() for p in paths):
        seconds = timed_render(rows, where, samples, args.render_threads, denoise=False)
        say(f"\nrendered {len(rows)} images for embedding ({width}x{height}, {samples} samples, not denoised) in "
            f"{seconds:.1f} s")
    return paths


def bench_embed(args, loaded, paths) -> dict:
    import numpy as np
    import torch
    from PIL import Image

    from workflow_scripts.models.embed import ImageFiles, autocast, embed_images

    model, preprocess, _, _ = loaded
    n, batch_size, workers = len(paths), args.batch_size, args.num_workers

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

    def forward(pixels):
        out = []
        with torch.inference_mode(), autocast(args.device, args.precision):
            for start in range(0, len(pixels), batch_size):
                out.append(model.encode_image(pixels[start:start + batch_size]).float().cpu().numpy())
        return np.concatenate(out)

    naive(paths[:1])  # warm-up: first-call allocations, cuDNN/oneDNN kernel choice
    sync()
    start = time.perf_counter()
    images = ImageFiles(paths, preprocess)
    pixels = torch.stack([images[i] for i in range(n)]).to(args.device)
    sync()
    t_decode = time.perf_counter() - start
    start = time.perf_counter()
    in_memory = forward(pixels)  # the limit: the model alone, on images decoded beforehand
    t_memory = time.perf_counter() - start
    del pixels
    start = time.perf_counter()
    batched = embed_images(model, preprocess, paths, args.device, batch_size, workers, args.precision)
    t_batched = time.perf_counter() - start
    start = time.perf_counter()
    looped = naive(paths)
    sync()
    t_naive = time.perf_counter() - start

    say(f"\nEmbed: {n} images, precision "
        f"{args.precision if args.device.startswith('cuda') else 'fp32 (autocast only on CUDA)'}; decoding and "
        f"preprocessing them in one process took {1000 * t_decode / n:.1f} ms/image (not in the in-memory row)")
    table(["path", "settings", "images", "seconds", "images/s", "of in-memory"], [
        ["in-memory forward (limit)", f"batch {batch_size}, images decoded beforehand", n, t_memory, n / t_memory, 1.0],
        ["embed_images", f"batch {batch_size}, {workers} workers", n, t_batched, n / t_batched, t_memory / t_batched],
        ["naive loop", "batch 1, no DataLoader", n, t_naive, n / t_naive, t_memory / t_naive]])
    say(f"embed_images reaches {t_memory / t_batched:.2f}x of the in-memory forward and {t_naive / t_batched:.2f}x "
        f"the naive loop's speed")
    say(f"max |embed_images - in-memory| = {np.abs(batched - in_memory).max():.2e}, max |embed_images - naive| = "
        f"{np.abs(batched - looped).max():.2e} (max |embedding| = {np.abs(looped).max():.2e}, shape {batched.shape})")
    return {"limit": n / t_memory, "embed_images": n / t_batched, "naive": n / t_naive}


def bench_texts(args, loaded) -> dict:
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
    return {"trimmed": len(texts) / timings["trimmed context (embed_texts)"],
            "full": len(texts) / timings["full context"], "max_difference": float(np.abs(trimmed - full).max())}


def main(argv=None) -> dict:
    """Runs the benchmark with command-line arguments `argv`; returns {"embed": bench_embed's figures, "texts":
    bench_texts'} (None where skipped)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embed-images", type=int, default=256)
    parser.add_argument("--texts", type=int, default=500, help="CLEVR scenes whose captions and negatives are embedded")
    parser.add_argument("--resolution", type=resolution, default=(224, 224), metavar="WxH",
                        help="of the images rendered for embedding")
    parser.add_argument("--embed-samples", type=int, default=2, help="Cycles samples of the images for embedding")
    parser.add_argument("--render-threads", type=int, default=os.cpu_count())
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--pretrained", default="none", help="open_clip tag, checkpoint path, or none")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--precision", choices=["bf16", "fp16", "fp32"], default="fp32")
    parser.add_argument("--skip-images", action="store_true")
    parser.add_argument("--out-dir", type=Path, help="keep images here (default: a temporary directory)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    from workflow_scripts.common.devices import resolve_device
    from workflow_scripts.models.loading import load_model

    args.device = resolve_device(args.device)
    loaded = load_model(args.model, args.pretrained, args.device, args.seed)
    say(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"device {args.device}" + (f" ({torch.cuda.get_device_name(args.device)})" if args.device != "cpu" else ""))
    say(f"weights: {args.model}: {loaded[3]['weights']}")
    with tempfile.TemporaryDirectory(prefix="benchmark_backbone-") as tmp:
        out_dir = args.out_dir or Path(tmp)
        embed = None if args.skip_images else bench_embed(args, loaded, embed_paths(args, out_dir))
    return {"embed": embed, "texts": bench_texts(args, loaded)}


if __name__ == "__main__":
    main()
