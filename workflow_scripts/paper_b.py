"""Paper B's text-side analysis for one model: text-based object retrieval (TOR) over SIMCO object names,
with short and long caption templates, and the per-object mitigation."""
import sys
from collections.abc import Callable
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

import numpy as np

from workflow_scripts.retrieval import (
    MAX_OBJECTS,
    aggregate_object_embeddings,
    render_caption,
    tor_captions,
    tor_metrics,
)


def tor_rows(encode_text: Callable[[list[str]], np.ndarray], tor_cfg: dict, seed: int) -> list[dict]:
    """One row per (template, object count, method): 'caption' embeds the whole caption; 'split-<how>'
    embeds each object's phrase alone and aggregates them (the mitigation)."""
    objects = list(tor_cfg["objects"])
    object_emb = encode_text(objects)
    rows = []
    for template in tor_cfg["templates"]:
        per_object = dict(zip(objects, encode_text([render_caption([o], template) for o in objects])))
        for n in tor_cfg["objects_per_caption"]:
            captions = tor_captions(objects, n, template, limit=tor_cfg["captions_per_count"], seed=seed)
            tuples = np.array([t for _, t in captions])
            methods = {"caption": encode_text([text for text, _ in captions])}
            stacked = np.stack([[per_object[objects[i]] for i in t] for t in tuples])
            for how in tor_cfg["aggregations"]:
                methods[f"split-{how}"] = aggregate_object_embeddings(stacked, how)
            for method, caption_emb in methods.items():
                metrics = tor_metrics(caption_emb, object_emb, tuples)
                shares = list(metrics["first_retrieved_share"]) + [np.nan] * (MAX_OBJECTS - n)
                rows.append({
                    "template": template, "n_objects": n, "method": method, "n_captions": len(captions),
                    "top_n_accuracy": metrics["top_n_accuracy"],
                    "not_mentioned_share": metrics["not_mentioned_share"],
                    **{f"first_retrieved_share_{p + 1}": float(s) for p, s in enumerate(shares)},
                })
    return rows


def main(snakemake) -> None:
    import pyarrow as pa

    from workflow_scripts.embed import embed_texts, load_configured_model
    from workflow_scripts.rule_logging import log_to
    from workflow_scripts.tables import write_table

    logger = log_to(snakemake.log[0])
    settings = snakemake.params.embedding
    model, _, tokenizer, provenance, device = load_configured_model(snakemake)

    def encode_text(texts):
        return embed_texts(model, tokenizer, texts, device, settings["batch_size"], settings["precision"])

    rows = tor_rows(encode_text, snakemake.params.tor, snakemake.params.seed)
    write_table(pa.Table.from_pylist(rows), snakemake.output.tor, {**provenance, "tor": snakemake.params.tor})
    logger.info("%d TOR rows", len(rows))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
