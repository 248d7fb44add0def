"""One dataset's scenes joined with one model's embeddings: the input of every analysis."""
from dataclasses import dataclass

import numpy as np


@dataclass
class Embedded:
    """Row i of every array belongs to scenes[i]. Embeddings are as the encoder gave them (unnormalised)."""

    scenes: list[dict]  # rows of the scene table: objects (caption order), caption, negative_captions, split, ...
    image: np.ndarray  # (n, d) image embeddings
    caption: np.ndarray  # (n, d) text embeddings of the captions
    negative: np.ndarray  # (n, d) text embeddings of each scene's first hard negative
    weights: str  # which weights produced the embeddings, for every output that reports on them

    @property
    def split(self) -> np.ndarray:
        return np.array([s["split"] for s in self.scenes])

    def subset(self, mask) -> "Embedded":
        index = np.flatnonzero(mask)
        return Embedded([self.scenes[i] for i in index], self.image[index], self.caption[index],
                        self.negative[index], self.weights)


def load_images(scenes_path, images_path) -> tuple[list[dict], np.ndarray, str]:
    """(scene rows, (n, d) image embeddings in scene order, the weights that produced them); fails naming
    the file when a scene has no embedding."""
    import pyarrow.parquet as pq

    from workflow_scripts.tables import embedding_matrix, read_provenance

    scenes = pq.read_table(scenes_path).to_pylist()
    ids = [s["scene_id"] for s in scenes]
    images = pq.read_table(images_path)
    row_of = {scene_id: i for i, scene_id in enumerate(images.column("scene_id").to_pylist())}
    missing = [i for i in ids if i not in row_of]
    if missing:
        raise ValueError(f"{images_path}: no image embedding for {len(missing)} scenes of {scenes_path}, e.g. {missing[0]}")
    image = embedding_matrix(images.column("embedding"))[[row_of[i] for i in ids]]
    return scenes, image, read_provenance(images_path)["weights"]


def load_embedded(scenes_path, images_path, texts_path) -> Embedded:
    """Join the scene table with its image and text embedding files by scene_id; fail naming the file
    when they do not cover the same scenes."""
    import pyarrow.parquet as pq

    from workflow_scripts.tables import embedding_matrix

    scenes, image, weights = load_images(scenes_path, images_path)
    ids = [s["scene_id"] for s in scenes]

    texts = pq.read_table(texts_path)
    vectors = embedding_matrix(texts.column("embedding"))
    caption_row, negative_row = {}, {}
    for row, (scene_id, role, index) in enumerate(zip(texts.column("scene_id").to_pylist(),
                                                      texts.column("role").to_pylist(),
                                                      texts.column("negative_index").to_pylist())):
        if role == "caption":
            caption_row[scene_id] = row
        elif index == 0:
            negative_row[scene_id] = row
    missing = [i for i in ids if i not in caption_row or i not in negative_row]
    if missing:
        raise ValueError(f"{texts_path}: no caption or negative embedding for scene {missing[0]} of {scenes_path}")
    return Embedded(
        scenes, image, vectors[[caption_row[i] for i in ids]], vectors[[negative_row[i] for i in ids]], weights,
    )
