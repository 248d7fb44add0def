"""Rule `binding`: cross-modal binding diagnostics of CLIP and of each LABCLIP map (ours and published ones) on
the test split: does similarity prefer the right binding of attributes to objects?"""
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import numpy as np
import pyarrow as pa

from workflow_scripts.analyses.embedded import Embedded
from workflow_scripts.analyses.probes import probe_settings, probe_weight_cosine, run_probes
from workflow_scripts.analyses.similarity import image_to_text_accuracy, modality_gap, preference, rowwise_cosine
from workflow_scripts.datasets.items import Vocabulary


def twin_pairs(items: list[dict], vocabulary: Vocabulary) -> list[tuple[int, int]]:
    """(i, j) where item j's caption binds exactly as item i's first negative caption (the vocabulary's
    grammar says which attribute goes with which object)."""
    items_of = {}
    for j, item in enumerate(items):
        items_of.setdefault(vocabulary.binding(item["caption"]), []).append(j)
    return [(i, j) for i, item in enumerate(items)
            for j in items_of.get(vocabulary.binding(item["negative_captions"][0]), [])]


def text_to_image_accuracy(image, caption, pairs) -> float:
    """Share of (i, j) twin pairs where caption i is more similar to image i than to image j, whose scene
    is its attribute-swapped version. NaN when no pair exists."""
    if not pairs:
        return float("nan")
    i, j = np.array(pairs).T
    return float(preference(rowwise_cosine(caption[i], image[i]), rowwise_cosine(caption[i], image[j])).mean())


def binding_rows(data: Embedded, variants: dict, probes_cfg: dict, probe_weights: dict, seed: int):
    """One row per variant (CLIP and each LABCLIP map) of test-split binding diagnostics, and the
    per-item cosine between each test caption and its hard negative. `variants` maps a name to a
    function of text embeddings; CLIP's text probes are those in `probe_weights`, the maps' are trained here."""
    is_test = data.split == "test"
    test = data.subset(is_test)
    pairs = twin_pairs(test.items, data.vocabulary)
    rows, cosines = [], []
    for variant, map_text in variants.items():
        mapped = data.with_text(map_text(data.caption), map_text(data.negative))
        if variant == "CLIP":
            text_weights = probe_weights["text"]
        else:
            _, text_weights = run_probes(mapped, "text", probes_cfg["solver"], seed, **probe_settings(probes_cfg))
        caption, negative = mapped.caption[is_test], mapped.negative[is_test]
        pair_cosine = rowwise_cosine(caption, negative)
        rows.append({
            "variant": variant,
            "n_test": len(test.items),
            "image_to_text_accuracy": image_to_text_accuracy(test.image, caption, negative),
            "text_to_image_accuracy": text_to_image_accuracy(test.image, caption, pairs),
            "n_twin_pairs": len(pairs),
            "modality_gap": modality_gap(test.image, caption),
            "caption_negative_cosine": float(pair_cosine.mean()),
            "probe_weight_cosine": probe_weight_cosine(probe_weights["image"], text_weights),
        })
        cosines += [{"variant": variant, "item_id": s["item_id"], "cosine": float(c)}
                    for s, c in zip(test.items, pair_cosine)]
    return pa.Table.from_pylist(rows), pa.Table.from_pylist(cosines)


def main(snakemake) -> None:
    from workflow_scripts.analyses.embedded import embedded_for_rule
    from workflow_scripts.analyses.labclip import import_authors_weights, load_labclip, map_text
    from workflow_scripts.analyses.probes import load_probe_weights
    from workflow_scripts.common.logs import log_to
    from workflow_scripts.common.parquet import write_table

    logger = log_to(snakemake.log[0])
    data, provenance = embedded_for_rule(snakemake)
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


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
