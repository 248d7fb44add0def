"""Rule `recall`: text-to-image and image-to-text Recall@K on a captioned image set's test split (COCO's 5k
images with five captions each), by the cosine of L2-normalised embeddings, for CLIP, for CLIP with each of this
dataset's LABCLIP maps and with each published map that fits the model.

- text-to-image: per caption, whether its image is among the K images most similar to it (queries: captions).
- image-to-text: per image, whether one of its captions is among the K captions most similar to it (queries:
  images), as the retrieval evaluations of CLIP, BLIP and paper A's alignment utilities count it.
The images are the items' `image_group`s (items without one each have their own image). A rank is the number of
candidates strictly more similar than the right one, so a tie is broken in the right one's favour.
"""
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import numpy as np

from workflow_scripts.analyses.similarity import normalise

KS = (1, 5, 10)
CHUNK = 2048  # queries scored at a time: a 25k x 5k similarity matrix is never held whole


def recall_ranks(captions, images, image_of_caption: np.ndarray, chunk: int = CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """(rank of each caption's image among the images, best rank of each image's captions among the captions),
    from the cosines of `captions` (n, d) and `images` (m, d); image_of_caption[i] is caption i's image."""
    captions, images = normalise(np.asarray(captions, float)), normalise(np.asarray(images, float))
    caption_rank = np.empty(len(captions), int)
    for start in range(0, len(captions), chunk):
        index = np.arange(start, min(start + chunk, len(captions)))
        rows = captions[index] @ images.T
        right = rows[np.arange(len(index)), image_of_caption[index]]
        caption_rank[index] = (rows > right[:, None]).sum(axis=1)
    image_rank = np.empty(len(images), int)
    for start in range(0, len(images), chunk):
        index = np.arange(start, min(start + chunk, len(images)))
        rows = images[index] @ captions.T
        own = image_of_caption[None, :] == index[:, None]
        best_own = np.where(own, rows, -np.inf).max(axis=1)  # -inf for an image without a caption: never found
        image_rank[index] = (rows > best_own[:, None]).sum(axis=1)
    return caption_rank, image_rank


def recall_rows(captions, images, image_of_caption, ks=KS) -> list[dict]:
    """Rows of Recall@K per direction and K, each with its count of queries."""
    caption_rank, image_rank = recall_ranks(captions, images, np.asarray(image_of_caption))
    rows = []
    for direction, ranks in (("text-to-image", caption_rank), ("image-to-text", image_rank)):
        for k in ks:
            rows.append({"direction": direction, "k": int(k), "recall": float((ranks < k).mean()),
                         "n_queries": int(len(ranks))})
    return rows


def image_groups(items: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(index of each distinct image's first item, each item's image number) by `image_group`."""
    number, first, of_item = {}, [], []
    for i, item in enumerate(items):
        group = item.get("image_group") or item["item_id"]
        if group not in number:
            number[group] = len(first)
            first.append(i)
        of_item.append(number[group])
    return np.array(first), np.array(of_item)


def main(snakemake) -> None:
    import pyarrow as pa

    from workflow_scripts.analyses.embedded import embedded_for_rule
    from workflow_scripts.analyses.labclip import map_text, text_maps
    from workflow_scripts.common.logs import start_job
    from workflow_scripts.common.parquet import write_table

    logger = start_job(snakemake)
    data, provenance = embedded_for_rule(snakemake)
    test = data.subset(data.split == "test")
    first, image_of_caption = image_groups(test.items)
    images = test.image[first]
    logger.info("%d test captions of %d images", len(test.items), len(images))
    maps = text_maps({path: "" for path in snakemake.input.labclip}, snakemake.params.published_maps,
                     test.caption.shape[1], snakemake.wildcards.model, logger)
    variants = [("CLIP", "none", None, test.caption)] + [(name, selection, negatives, map_text(model, test.caption))
                                                         for name, selection, _, negatives, model in maps]
    rows = []
    for variant, selection, negatives, captions in variants:
        for row in recall_rows(captions, images, image_of_caption):
            rows.append({"variant": variant, "selection": selection, "train_negatives": negatives, **row})
            logger.info("%s %s R@%d: %.3f of %d", variant, row["direction"], row["k"], row["recall"],
                        row["n_queries"])
    write_table(pa.Table.from_pylist(rows), snakemake.output.recall, provenance)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
