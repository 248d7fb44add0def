"""Binding measures on hand-made inputs and on synthetic embeddings whose answer is known."""
import numpy as np
import pyarrow as pa
import pytest

from synthetic import PAIRS, _basis, synthetic_embedded
from workflow_scripts.analyses.binding import text_to_image_accuracy, twin_pairs
from workflow_scripts.analyses.embedded import load_embedded
from workflow_scripts.analyses.similarity import image_to_text_accuracy, image_to_text_preference, modality_gap, preference
from workflow_scripts.common.parquet import embedding_array, write_table
from workflow_scripts.datasets.clevr import VOCABULARY, generate_scenes
from workflow_scripts.datasets.items import item_table, write_items

SPEC = {"objects_per_scene": [2], "scenes_per_count": 800, "negatives_per_scene": 1, "shards": 1,
        "splits": {"train": 0.8, "val": 0.1, "test": 0.1}}


@pytest.fixture(scope="module")
def scenes():
    return generate_scenes("syn", SPEC, 320, 240, seed=0).to_pylist()


def test_preference_scores_ties_as_half():
    assert preference(np.array([2.0, 1.0, 1.0]), np.array([1.0, 2.0, 1.0])).tolist() == [1.0, 0.0, 0.5]


def test_image_to_text_on_hand_made_vectors():
    image = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    caption = np.array([[2.0, 0.1], [1.0, 0.0], [1.0, 1.0]])  # right, wrong, tie
    negative = np.array([[0.0, 1.0], [0.0, 3.0], [2.0, 2.0]])
    assert image_to_text_accuracy(image, caption, negative) == pytest.approx(1.5 / 3)


def test_image_to_text_preference_scores_each_image():
    image = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    caption = np.array([[1.0, 0.1], [1.0, 0.0], [1.0, 1.0]])  # right, wrong, tie
    distractor = np.array([[0.0, 1.0], [0.0, 1.0], [2.0, 2.0]])
    assert image_to_text_preference(image, caption, distractor).tolist() == [1.0, 0.0, 0.5]


def test_text_to_image_on_hand_made_vectors():
    image = np.array([[1.0, 0.0], [0.0, 1.0]])
    caption = np.array([[1.0, 0.2], [1.0, 0.0]])
    assert text_to_image_accuracy(image, caption, [(0, 1), (1, 0)]) == 0.5
    assert np.isnan(text_to_image_accuracy(image, caption, []))


def test_modality_gap_of_orthogonal_clusters():
    image = np.array([[2.0, 0.0], [3.0, 0.0]])
    text = np.array([[0.0, 1.0], [0.0, 5.0]])
    assert modality_gap(image, text) == pytest.approx(np.sqrt(2))
    assert modality_gap(image, image * 7) == pytest.approx(0.0)


def test_twin_pairs_join_a_negative_to_the_scene_that_shows_it(scenes):
    pairs = twin_pairs(scenes, VOCABULARY)
    assert pairs
    for i, j in pairs:
        assert VOCABULARY.binding(scenes[j]["caption"]) == VOCABULARY.binding(scenes[i]["negative_captions"][0])
        assert scenes[i]["split"] == scenes[j]["split"]


def test_synthetic_binding_is_invisible_to_cosine_but_a_linear_text_map_restores_it(scenes):
    data = synthetic_embedded(scenes)
    pairs = twin_pairs(scenes, VOCABULARY)
    assert image_to_text_accuracy(data.image, data.caption, data.negative) == pytest.approx(0.5, abs=0.1)
    assert text_to_image_accuracy(data.image, data.caption, pairs) == pytest.approx(0.5, abs=0.1)
    # The oracle map sends each text binding direction onto its image twin.
    basis = _basis(data.image.shape[1], seed=0)
    oracle = np.eye(data.image.shape[1])
    for pair in PAIRS:
        oracle += np.outer(basis["image_binding"][pair] - basis["text_binding"][pair], basis["text_binding"][pair])
    assert image_to_text_accuracy(data.image, data.caption @ oracle.T, data.negative @ oracle.T) == 1.0
    assert text_to_image_accuracy(data.image, data.caption @ oracle.T, pairs) == 1.0


def test_load_embedded_joins_by_item_id_and_names_what_is_missing(scenes, tmp_path):
    few = scenes[:3]
    write_items(item_table(few), VOCABULARY, tmp_path / "items.parquet", {})
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    order = [2, 0, 1]  # stored out of order on purpose
    write_table(pa.table({"item_id": [few[i]["item_id"] for i in order], "embedding": embedding_array(image[order])}),
                tmp_path / "images.parquet", {"weights": "test weights"})
    texts = {"item_id": [], "role": [], "negative_index": [], "embedding": []}
    for k, scene in enumerate(few):
        for role, index, value in [("caption", None, k), ("negative", 0, 10 + k)]:
            texts["item_id"].append(scene["item_id"])
            texts["role"].append(role)
            texts["negative_index"].append(index)
            texts["embedding"].append([float(value)] * 4)
    texts["embedding"] = embedding_array(np.array(texts["embedding"]))
    write_table(pa.table(texts), tmp_path / "texts.parquet", {})

    data = load_embedded(tmp_path / "items.parquet", tmp_path / "images.parquet", tmp_path / "texts.parquet")
    np.testing.assert_array_equal(data.image, image)
    assert data.caption[:, 0].tolist() == [0, 1, 2] and data.negative[:, 0].tolist() == [10, 11, 12]
    assert data.weights == "test weights"

    write_table(pa.table({"item_id": [few[0]["item_id"]], "embedding": embedding_array(image[:1])}),
                tmp_path / "short.parquet", {"weights": "w"})
    with pytest.raises(ValueError, match="short.parquet: no image embedding for 2 items"):
        load_embedded(tmp_path / "items.parquet", tmp_path / "short.parquet", tmp_path / "texts.parquet")
