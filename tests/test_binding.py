"""Binding measures on hand-made inputs and on synthetic embeddings whose answer is known."""
import numpy as np
import pyarrow as pa
import pytest

from synthetic import PAIRS, _basis, synthetic_embedded
from workflow_scripts.analyses.binding import Variant, binding_rows, caption_candidates, text_to_image_accuracy, twin_pairs
from workflow_scripts.analyses.embedded import load_embedded
from workflow_scripts.analyses.similarity import (
    AUTHORS_CLEVR,
    AUTHORS_OTHER,
    CLEAN,
    binding_accuracy,
    binding_rule,
    has_distinct_negative,
    image_dot_raw_text,
    image_to_text_accuracy,
    image_to_text_preference,
    modality_gap,
    preference,
    recall_at_k,
)
from workflow_scripts.common.parquet import embedding_array, write_table
from workflow_scripts.datasets.clevr import VOCABULARY, generate_scenes
from workflow_scripts.datasets.items import item_table, write_items

SPEC = {"sampling": "distinct", "objects_per_scene": [2], "scenes_per_count": 800, "negatives_per_scene": 1, "shards": 1,
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


# Three hand-made items, d = 2: image i, caption i, negative i.
#   item 0: caption [3, 0] is long and points at the image; negative [0, 1] short and orthogonal: both rules right.
#   item 1: caption [1, 1] has cosine 0.707 with image [1, 0], negative [4, 4] the same cosine but 4 times the norm:
#           a cosine tie (clean: 0.5), while normalised image . raw text is 1 vs 4 (authors: wrong).
#   item 2: caption [0.6, 0.8] has cosine 0.6 with image [1, 0], negative [1, 3] cosine 0.316 but dot 1 vs 0.6:
#           cosine right, the authors' score wrong.
#   item 3: an exact tie in both scores (negative = caption): authors' CLEVR rule correct, clean 0.5, PUG wrong.
IMAGE = np.array([[2.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 5.0]])
CAPTION = np.array([[3.0, 0.0], [1.0, 1.0], [0.6, 0.8], [1.0, 2.0]])
NEGATIVE = np.array([[0.0, 1.0], [4.0, 4.0], [1.0, 3.0], [1.0, 2.0]])


def test_image_dot_raw_text_by_hand():
    np.testing.assert_allclose(image_dot_raw_text(IMAGE, CAPTION), [3.0, 1.0, 0.6, 2.0])
    np.testing.assert_allclose(image_dot_raw_text(IMAGE, NEGATIVE), [0.0, 4.0, 1.0, 2.0])


def test_binding_rules_by_hand():
    all_distinct = np.ones(4, bool)
    # authors on CLEVR: scores 3>0 right, 1<4 wrong, 0.6<1 wrong, 2=2 tie correct
    assert binding_accuracy(AUTHORS_CLEVR, IMAGE, CAPTION, NEGATIVE, all_distinct) == (pytest.approx(2 / 4), 4)
    # clean: cosine 1>0 right, 0.707=0.707 tie half, 0.6>0.316 right, tie half
    assert binding_accuracy(CLEAN, IMAGE, CAPTION, NEGATIVE, all_distinct) == (pytest.approx(3 / 4), 4)
    # authors elsewhere (PUG): cosine, strict >: right, tie wrong, right, tie wrong
    assert binding_accuracy(AUTHORS_OTHER, IMAGE, CAPTION, NEGATIVE, all_distinct) == (pytest.approx(2 / 4), 4)
    # item 3 without a distinct negative: left out by the CLEVR and the clean rule, scored (wrong) on PUG
    distinct = np.array([True, True, True, False])
    assert binding_accuracy(AUTHORS_CLEVR, IMAGE, CAPTION, NEGATIVE, distinct) == (pytest.approx(1 / 3), 3)
    assert binding_accuracy(CLEAN, IMAGE, CAPTION, NEGATIVE, distinct) == (pytest.approx(2.5 / 3), 3)
    assert binding_accuracy(AUTHORS_OTHER, IMAGE, CAPTION, NEGATIVE, distinct) == (pytest.approx(2 / 4), 4)
    assert np.isnan(binding_accuracy(CLEAN, IMAGE, CAPTION, NEGATIVE, np.zeros(4, bool))[0])


def test_binding_rule_by_kind():
    assert binding_rule("authors", "clevr") is AUTHORS_CLEVR
    assert binding_rule("authors", "pug_spar") is AUTHORS_OTHER  # every other kind: the authors' PUG rule
    assert binding_rule("clean", "clevr") is binding_rule("clean", "simco") is CLEAN
    with pytest.raises(ValueError, match="protocol"):
        binding_rule("mine", "clevr")


def test_recall_at_k_by_hand():
    image = np.array([[1.0, 0.0], [0.0, 1.0]])
    # candidates: cosines with image 0: 1, 0.707, 0, -1; with image 1: 0, 0.707, 1, 0
    candidates = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0], [-1.0, 0.0]])
    # image 0's own caption is candidate 1 (one above it), image 1's is candidate 3 (tied with candidate 0, two above)
    recall = recall_at_k(image, candidates, np.array([1, 3]), ks=(1, 2, 3, 4))
    # image 0: rank 2 -> hits at k >= 2; image 1: ranks 3 or 4 at random -> k=3: 0.5, k=4: 1
    assert recall == {1: 0.0, 2: 0.5, 3: pytest.approx(0.75), 4: 1.0}
    assert recall_at_k(image, candidates, np.array([1, 3]), ks=(3,), tie=1.0) == {3: 1.0}
    assert recall_at_k(image, candidates, np.array([1, 3]), ks=(3,), tie=0.0) == {3: 0.5}
    # by normalised image . raw text, candidate 2 ([0, 2]) scores 2 for image 1: with candidate [0, 1] its own, it
    # falls from first (cosine tie, random: 0.5 at k=1) to second
    own = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 2.0]])
    assert recall_at_k(image, own, np.array([0, 1]), ks=(1,)) == {1: 0.75}
    assert recall_at_k(image, own, np.array([0, 1]), ks=(1,), similarity="image_dot_raw_text") == {1: 0.5}


def test_caption_candidates_are_the_distinct_captions():
    items = [{"caption": c} for c in ["a", "b", "a", "c", "b"]]
    rows, correct = caption_candidates(items)
    assert rows.tolist() == [0, 1, 3] and correct.tolist() == [0, 1, 0, 2, 1]


@pytest.fixture(scope="module")
def authors_scenes():
    """The authors' sampler: about one two-object scene in eight has two equal colours and a negative equal to its
    caption."""
    return generate_scenes("syn", {**SPEC, "sampling": "authors"}, 320, 240, seed=0).to_pylist()


def test_equal_colour_scenes_have_no_distinct_negative(authors_scenes):
    distinct = has_distinct_negative(authors_scenes, VOCABULARY)
    equal = np.array([s["objects"][0]["attribute"] == s["objects"][1]["attribute"] for s in authors_scenes])
    np.testing.assert_array_equal(distinct, ~equal)
    assert 0.06 < equal.mean() < 0.2  # 1/8 expected
    pairs = twin_pairs(authors_scenes, VOCABULARY)
    assert pairs and not any(equal[i] for i, _ in pairs)


def test_binding_rows_count_and_leave_out_equal_colour_scenes(authors_scenes):
    data = synthetic_embedded(authors_scenes)
    rows, cosines = binding_rows(data, [Variant("CLIP")], {"solver": "sklearn", "sklearn": {"Cs": [1.0]}},
                                 _probe_weights(data), seed=0, kind="clevr",
                                 cosine_cfg={"l2": 0.01, "resamples": 0})
    rows = {r["protocol"]: r for r in rows.to_pylist()}
    test = [s for s in authors_scenes if s["split"] == "test"]
    n_equal = sum(s["objects"][0]["attribute"] == s["objects"][1]["attribute"] for s in test)
    assert n_equal > 0
    for protocol in ("authors", "clean"):
        assert rows[protocol]["n_test"] == len(test)
        assert rows[protocol]["n_same_binding"] == n_equal
        assert rows[protocol]["n_scored"] == len(test) - n_equal
        assert rows[protocol]["n_recall_images"] == len(test)
    assert rows["authors"]["similarity"] == "image_dot_raw_text" and rows["authors"]["ties"] == "correct"
    assert rows["clean"]["similarity"] == "cosine" and rows["clean"]["ties"] == "half"
    # on another kind the authors' rule scores every item
    other, _ = binding_rows(data, [Variant("CLIP")], {"solver": "sklearn", "sklearn": {"Cs": [1.0]}},
                            _probe_weights(data), seed=0, kind="simco", cosine_cfg={"l2": 0.01, "resamples": 0})
    other = {r["protocol"]: r for r in other.to_pylist()}
    assert other["authors"]["n_scored"] == len(test) and other["authors"]["ties"] == "wrong"
    assert str(other["clean"]) == str({**rows["clean"], "dataset_kind": "simco"})  # str: nan equals nan
    assert cosines.num_rows == len(test) and sum(cosines.column("distinct_negative").to_pylist()) == len(test) - n_equal


def _synthetic_text(texts, dim=96, noise=0.05, seed=0):
    """synthetic_embedded's text encoder (its defaults), for captions no item has."""
    import zlib

    from synthetic import _encode

    basis = _basis(dim, seed)
    jitter = [np.random.default_rng([seed, zlib.crc32(t.encode())]).standard_normal(dim) for t in texts]
    return np.stack([_encode(VOCABULARY.parse(t), basis, "text_binding") + noise * j for t, j in zip(texts, jitter)])


def test_binding_rows_rank_the_authors_pair_labels_and_the_clean_bindings(authors_scenes):
    data = synthetic_embedded(authors_scenes)
    np.testing.assert_allclose(_synthetic_text([authors_scenes[0]["caption"]])[0], data.caption[0], rtol=1e-5)
    asked = []

    def encode(texts):
        asked.extend(texts)
        return _synthetic_text(texts)

    rows, _ = binding_rows(data, [Variant("CLIP")], {"solver": "sklearn", "sklearn": {"Cs": [1.0]}},
                           _probe_weights(data), seed=0, kind="clevr", cosine_cfg={"l2": 0.01, "resamples": 0},
                           encode_text=encode)
    rows = {r["protocol"]: r for r in rows.to_pylist()}
    test = [s for s in authors_scenes if s["split"] == "test"]
    known = {s["caption"] for s in authors_scenes} | {s["negative_captions"][0] for s in authors_scenes}
    assert asked and not set(asked) & known  # only the pair labels that no item's text words alike are embedded
    assert rows["authors"]["n_recall_captions"] == 192 and rows["authors"]["n_recall_images"] == len(test)
    assert rows["authors"]["recall_candidates"].startswith("every binding of two attribute-object pairs")
    assert rows["clean"]["n_recall_captions"] == len({VOCABULARY.binding(s["caption"]) for s in test})
    assert rows["clean"]["recall_candidates"] == "the test split's bindings, one wording each"
    # bag-of-words embeddings: the right binding and its swap tie on cosine, so R@1 is about a half and R@10 high
    assert rows["clean"]["recall_at_1"] == pytest.approx(0.5, abs=0.2) and rows["clean"]["recall_at_10"] > 0.9
    # without an encoder, a pair label no item words alike borrows its other word order's embedding, and says so
    borrowed, _ = binding_rows(data, [Variant("CLIP")], {"solver": "sklearn", "sklearn": {"Cs": [1.0]}},
                               _probe_weights(data), seed=0, kind="clevr", cosine_cfg={"l2": 0.01, "resamples": 0})
    assert f"; {len(set(asked))} without an embedding took that of the other word order" in \
        borrowed.to_pylist()[0]["recall_candidates"]


def _probe_weights(data):
    from workflow_scripts.analyses.probes import run_probes

    return {modality: run_probes(data, modality, "sklearn", Cs=[1.0])[1] for modality in ("image", "text")}
