"""Paper A's analyses for one dataset and one model: linear probes, LABCLIP training, and the binding
diagnostics of CLIP and of each LABCLIP map."""
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

import numpy as np
import pyarrow as pa

from workflow_scripts.binding import (
    image_to_text_accuracy,
    modality_gap,
    rowwise_cosine,
    text_to_image_accuracy,
    twin_pairs,
)
from workflow_scripts.embedded import Embedded, load_embedded
from workflow_scripts.files import write_atomically
from workflow_scripts.probes import probe_weight_cosine, run_probes


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


def binding_rows(data: Embedded, variants: dict, probes_cfg: dict, probe_weights: dict, seed: int):
    """One row per variant (CLIP and each LABCLIP map) of test-split binding diagnostics, and the
    per-scene cosine between each test caption and its hard negative. `variants` maps a name to a
    function of text embeddings; CLIP's text probes are those in `probe_weights`, the maps' are trained here."""
    is_test = data.split == "test"
    test = data.subset(is_test)
    pairs = twin_pairs(test.scenes)
    rows, cosines = [], []
    for variant, map_text in variants.items():
        mapped = Embedded(data.scenes, data.image, map_text(data.caption), map_text(data.negative), data.weights)
        if variant == "CLIP":
            text_weights = probe_weights["text"]
        else:
            _, text_weights = run_probes(mapped, "text", probes_cfg["solver"], seed, **probe_settings(probes_cfg))
        caption, negative = mapped.caption[is_test], mapped.negative[is_test]
        pair_cosine = rowwise_cosine(caption, negative)
        rows.append({
            "variant": variant,
            "n_test": len(test.scenes),
            "image_to_text_accuracy": image_to_text_accuracy(test.image, caption, negative),
            "text_to_image_accuracy": text_to_image_accuracy(test.image, caption, pairs),
            "n_twin_pairs": len(pairs),
            "modality_gap": modality_gap(test.image, caption),
            "caption_negative_cosine": float(pair_cosine.mean()),
            "probe_weight_cosine": probe_weight_cosine(probe_weights["image"], text_weights),
        })
        cosines += [{"variant": variant, "scene_id": s["scene_id"], "cosine": float(c)}
                    for s, c in zip(test.scenes, pair_cosine)]
    return pa.Table.from_pylist(rows), pa.Table.from_pylist(cosines)


def save_probe_weights(weights: dict, path) -> None:
    """Probe weight matrices as an .npz with keys 'modality/n_objects/shape'."""
    arrays = {f"{modality}/{n}/{shape}": w for modality, found in weights.items() for (n, shape), w in found.items()}

    def write(partial):
        with open(partial, "wb") as handle:  # a file object: np.savez would add ".npz" to a path
            np.savez(handle, **arrays)

    write_atomically(path, write)


def load_probe_weights(path) -> dict:
    weights = {}
    with np.load(path) as stored:
        for key in stored.files:
            modality, n, shape = key.split("/")
            weights.setdefault(modality, {})[(int(n), shape)] = stored[key]
    return weights


def main(snakemake) -> None:
    from workflow_scripts.rule_logging import log_to
    from workflow_scripts.tables import write_table

    logger = log_to(snakemake.log[0])
    data = load_embedded(snakemake.input.scenes, snakemake.input.images, snakemake.input.texts)
    provenance = {"dataset": snakemake.wildcards.dataset, "model_id": snakemake.wildcards.model,
                  "weights": data.weights, "seed": snakemake.params.seed}
    logger.info("%s with %s: %d scenes", snakemake.wildcards.dataset, data.weights, len(data.scenes))

    if snakemake.rule == "paper_a_probes":
        probes_cfg = snakemake.params.probes
        table, weights = probe_table(data, probes_cfg, snakemake.params.seed)
        write_table(table, snakemake.output.probes, {**provenance, "probes": probes_cfg})
        save_probe_weights(weights, snakemake.output.weights)

    elif snakemake.rule == "labclip_train":
        import torch

        from workflow_scripts.devices import resolve_device
        from workflow_scripts.labclip import save_labclip, train_labclip

        settings, mode = snakemake.params.labclip, snakemake.wildcards.mode
        torch.set_num_threads(max(1, snakemake.threads))
        model, history = train_labclip(
            data.subset(data.split == "train"), data.subset(data.split == "val"), mode,
            lr=settings["lr"], epochs=settings["epochs"], batch_size=settings["batch_size"],
            seed=snakemake.params.seed, device=resolve_device(settings["device"]), progress=True,
        )
        best = next(h for h in history if h["best"])
        logger.info("LABCLIP %s: best epoch %d, val binding accuracy %.3f", mode, best["epoch"],
                    best["val_binding_accuracy"])
        write_table(pa.Table.from_pylist(history), snakemake.output.history, {**provenance, "mode": mode})
        save_labclip(model, snakemake.output.weights, {**provenance, "mode": mode, "settings": settings,
                                                       "best_epoch": best["epoch"]})

    elif snakemake.rule == "paper_a_binding":
        from workflow_scripts.labclip import load_labclip, map_text

        from workflow_scripts.labclip import import_authors_weights

        variants = {"CLIP": lambda text: text}
        for path in snakemake.input.labclip:
            model, saved = load_labclip(path)
            variants[f"LABCLIP-{saved['mode']}"] = lambda text, model=model: map_text(model, text)
        for name, path in snakemake.params.published_maps.items():
            model = import_authors_weights(path)
            if model.dim != data.caption.shape[1]:
                logger.warning("published map %s (%s) is %d x %d; model %s embeds in %d dimensions: skipped", name,
                               path, model.dim, model.dim, snakemake.wildcards.model, data.caption.shape[1])
                continue
            variants[f"published:{name}"] = lambda text, model=model: map_text(model, text)
        rows, cosines = binding_rows(data, variants, snakemake.params.probes,
                                     load_probe_weights(snakemake.input.probe_weights), snakemake.params.seed)
        write_table(rows, snakemake.output.binding, provenance)
        write_table(cosines, snakemake.output.cosines, provenance)
        for row in rows.to_pylist():
            logger.info("%s", row)
    else:
        raise ValueError(f"paper_a.py does not run rule {snakemake.rule}")


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
