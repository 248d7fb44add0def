"""What TOR's full enumeration costs: the TOR rule's own path (tor_rows: caption rendering, text embedding with each
distinct text once, ranking) timed on one protocol and name count, and from its captions per second the hours for
every caption a config asks for, per dataset of names and model.

Run from the repository root: .venv/bin/python benchmarks/benchmark_tor.py [--device cuda --precision fp16]
(about 2 minutes on 2 CPU cores with the defaults: ViT-B-32 with random weights, the 3,060 captions of 4 SIMCO
names in both templates).
"""
import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.report import say, table  # noqa: E402



def config_captions(config_path: Path) -> list[list]:
    """[dataset, names, texts per model] for every dataset of a config that runs TOR on a known name list (SIMCO's
    shapes, `kind: names` lists), from the config's TOR settings (both templates counted)."""
    import yaml

    from workflow_scripts.analyses.tor import check_caption_budget
    from workflow_scripts.config import validate_config
    from workflow_scripts.datasets.names import listed_names, listed_sizes
    from workflow_scripts.datasets.registry import dataset_kinds
    from workflow_scripts.datasets.simco import SHAPES

    config = validate_config(yaml.safe_load(config_path.read_text()))
    kinds, tor = dataset_kinds(config.get("kind_modules", ())), config["paper_b"]["tor"]
    rows = []
    for name, spec in config["datasets"].items():
        if "tor" not in kinds[spec["kind"]].analyses_of(spec) or spec["kind"] not in ("simco", "names"):
            continue  # other kinds' names (a mesh folder's categories) are known only from the data
        names = SHAPES if spec["kind"] == "simco" else listed_names(spec)
        sizes = [] if spec["kind"] == "simco" else [listed_sizes(spec).get(n, "") for n in names]
        rows.append([name, len(names), len(tor["templates"]) * check_caption_budget(tor, len(names), sizes, name)])
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--pretrained", default="none", help="open_clip tag, checkpoint path, or none")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", choices=["bf16", "fp16", "fp32"], default="fp32")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--names", choices=["simco", "coco"], default="simco")
    parser.add_argument("--objects", type=int, default=4, help="names per caption")
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    from workflow_scripts.analyses.tor import tor_rows
    from workflow_scripts.common.devices import resolve_device
    from workflow_scripts.datasets.names import COCO_TOR_NAMES
    from workflow_scripts.datasets.simco import SHAPES
    from workflow_scripts.models.embed import embed_texts
    from workflow_scripts.models.loading import load_model

    args.device = resolve_device(args.device)
    model, _, tokenizer, provenance = load_model(args.model, args.pretrained, args.device, args.seed)
    say(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"device {args.device}" + (f" ({torch.cuda.get_device_name(args.device)})" if args.device != "cpu" else ""))
    say(f"weights: {args.model}: {provenance['weights']}; precision {args.precision}")

    def encode(texts):
        return embed_texts(model, tokenizer, texts, args.device, args.batch_size, args.precision)

    names = SHAPES if args.names == "simco" else COCO_TOR_NAMES
    settings = {"protocols": ["authors"], "objects_per_caption": [args.objects], "captions_per_count": None,
                "templates": ["short", "long"], "aggregations": ["authors_sum"]}
    encode(list(names))  # warm-up
    start = time.perf_counter()
    rows = tor_rows(encode, names, settings, args.seed)
    seconds = time.perf_counter() - start
    texts = sum(row["n_captions"] for row in rows if row["method"] == "caption")
    rate = texts / seconds
    say(f"\nTOR, protocol authors, {len(names)} {args.names} names, {args.objects} per caption, short and long "
        f"templates: every one of {rows[0]['n_possible']} combinations")
    table(["texts", "seconds", "texts/s"], [[texts, seconds, rate]])
    planned = config_captions(args.config)
    say(f"\n{args.config.name}: every TOR text it asks for, per model, at {rate:.0f} texts/s")
    table(["dataset", "names", "texts", "hours"], [[*row, row[2] / rate / 3600] for row in planned])
    return {"rate": rate, "planned": planned}


if __name__ == "__main__":
    main()
