"""One dataset's items joined with one model's embeddings: the input of every analysis."""
from dataclasses import dataclass

import numpy as np

from workflow_scripts.datasets.items import Vocabulary, read_items


@dataclass
class Embedded:
    """Row i of every array belongs to items[i]. Embeddings are as the encoder gave them (unnormalised)."""

    items: list[dict]  # rows of the item table: caption, negative_captions, split, objects (caption order), ...
    image: np.ndarray  # (n, d) image embeddings
    caption: np.ndarray  # (n, d) text embeddings of the captions
    negative: np.ndarray  # (n, d) text embeddings of each item's first negative caption
    weights: str  # which weights produced the embeddings, for every output that reports on them
    vocabulary: Vocabulary
    precision: str = "unrecorded"  # the embeddings' precision (parquet.joint_precision of images and texts)
    negatives: np.ndarray | None = None  # (n, k, d): all k negatives of each item, where every item has k

    @property
    def split(self) -> np.ndarray:
        return np.array([s["split"] for s in self.items])

    def subset(self, mask) -> "Embedded":
        index = np.flatnonzero(mask)
        return Embedded([self.items[i] for i in index], self.image[index], self.caption[index],
                        self.negative[index], self.weights, self.vocabulary, self.precision,
                        None if self.negatives is None else self.negatives[index])

    def with_text(self, caption: np.ndarray, negative: np.ndarray) -> "Embedded":
        """The same items and images with other caption and negative embeddings (e.g. mapped by LABCLIP)."""
        return Embedded(self.items, self.image, caption, negative, self.weights, self.vocabulary, self.precision)


def load_images(items_path, images_path) -> tuple[list[dict], np.ndarray, dict, Vocabulary]:
    """(item rows, (n, d) image embeddings in item order, the image file's provenance (weights, precision, ...),
    vocabulary); fails naming the file when an item has no embedding."""
    from workflow_scripts.common.parquet import embedding_matrix, read_provenance, read_table

    items, vocabulary = read_items(items_path)
    ids = [s["item_id"] for s in items]
    images = read_table(images_path, ["item_id", "embedding"], what="image embeddings")
    row_of = {item_id: i for i, item_id in enumerate(images.column("item_id").to_pylist())}
    missing = [i for i in ids if i not in row_of]
    if missing:
        raise ValueError(f"{images_path}: no image embedding for {len(missing)} items of {items_path}, e.g. {missing[0]}")
    image = embedding_matrix(images.column("embedding"))[[row_of[i] for i in ids]]
    return items, image, read_provenance(images_path, "image embeddings"), vocabulary


def load_embedded(items_path, images_path, texts_path) -> Embedded:
    """Join the item table with its image and text embedding files by item_id; fail naming the file when they
    do not cover the same items."""
    from workflow_scripts.common.parquet import embedding_matrix, joint_precision, read_provenance, read_table

    items, image, image_provenance, vocabulary = load_images(items_path, images_path)
    ids = [s["item_id"] for s in items]

    texts = read_table(texts_path, ["item_id", "role", "negative_index", "embedding"], what="text embeddings")
    vectors = embedding_matrix(texts.column("embedding"))
    caption_row, negative_rows = {}, {}
    for row, (item_id, role, index) in enumerate(zip(texts.column("item_id").to_pylist(),
                                                     texts.column("role").to_pylist(),
                                                     texts.column("negative_index").to_pylist())):
        if role == "caption":
            caption_row[item_id] = row
        else:
            negative_rows.setdefault(item_id, {})[index] = row
    missing = [i for i in ids if i not in caption_row or 0 not in negative_rows.get(i, {})]
    if missing:
        raise ValueError(f"{texts_path}: no caption or negative embedding for item {missing[0]} of {items_path}")
    precision = joint_precision(image_provenance.get("precision", "unrecorded"),
                                read_provenance(texts_path, "text embeddings").get("precision", "unrecorded"))
    counts = {len(negative_rows[i]) for i in ids}
    negatives = None
    if len(counts) == 1:
        k = counts.pop()
        negatives = vectors[[[negative_rows[i][j] for j in range(k)] for i in ids]]
    return Embedded(items, image, vectors[[caption_row[i] for i in ids]],
                    vectors[[negative_rows[i][0] for i in ids]], image_provenance["weights"], vocabulary, precision,
                    negatives)


def embedded_for_rule(snakemake) -> tuple[Embedded, dict]:
    """The rule's dataset joined with its model's embeddings (inputs item_table, images, texts), and the
    provenance every output of the rule carries (with the activation the image embedding file records); logged."""
    import logging

    from workflow_scripts.common.parquet import read_provenance

    data = load_embedded(snakemake.input.item_table, snakemake.input.images, snakemake.input.texts)
    logging.getLogger("clip_binding").info("%s with %s: %d items", snakemake.wildcards.dataset, data.weights,
                                           len(data.items))
    provenance = {"dataset": snakemake.wildcards.dataset, "model_id": snakemake.wildcards.model,
                  "weights": data.weights, "precision": data.precision, "seed": snakemake.params.seed,
                  "activation": read_provenance(snakemake.input.images).get("activation", "unrecorded")}
    return data, provenance
