"""Paper B retrieval measures on hand-made inputs and on synthetic embeddings with a planted, known bias."""
import numpy as np
import pytest

from workflow_scripts.analyses.ior import ior_metrics
from workflow_scripts.analyses.retrieval import aggregate_object_embeddings, move_object, replace_object, retrieve
from workflow_scripts.analyses.tor import protocol_tuples, tor_metrics
from workflow_scripts.datasets.simco import SHAPES as SIMCO_SHAPES

D = 64
N = 4
CAPTIONS = 2000


@pytest.fixture(scope="module")
def objects() -> np.ndarray:
    """18 orthonormal unit vectors in 64 dimensions, one per SIMCO shape."""
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(D, len(SIMCO_SHAPES))))
    return q.T


@pytest.fixture(scope="module")
def tuples() -> np.ndarray:
    return np.array(protocol_tuples("clean", len(SIMCO_SHAPES), N, CAPTIONS, seed=0))


def weighted(objects: np.ndarray, tuples: np.ndarray, weights, noise: float, seed: int = 1) -> np.ndarray:
    """One embedding per row: sum over positions p of weights[p] * objects[tuples[:, p]], plus Gaussian noise."""
    clean = np.einsum("p,mpd->md", np.asarray(weights, float), objects[tuples])
    return clean + np.random.default_rng(seed).normal(scale=noise, size=clean.shape)


# --- retrieval and metrics on hand-made vectors ------------------------------------------------------------

def test_retrieve_ranks_by_cosine_with_ties_to_lower_index():
    queries = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    candidates = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [2.0, 0.0]])
    assert retrieve(queries, candidates).tolist() == [[0, 3, 2, 1], [1, 2, 0, 3], [2, 0, 1, 3]]


def test_tor_metrics_on_hand_made_vectors():
    object_emb = np.eye(4)
    tuples = np.array([[0, 1], [2, 3], [1, 2]])
    caption_emb = np.array([[0.6, 0.8, 0.0, 0.0],   # top-1 = object 1 (slot 1), top-2 right
                            [0.0, 0.0, 0.9, 0.1],   # top-1 = object 2 (slot 0), top-2 right
                            [0.5, 0.1, 0.2, 0.0]])  # top-1 = object 0, not mentioned; top-2 wrong
    got = tor_metrics(caption_emb, object_emb, tuples, "clean")
    assert got["top_n_correct"].tolist() == [True, True, False]
    assert got["first_slot"].tolist() == [1, 0, -1]


def test_ior_metrics_on_hand_made_vectors():
    reference_emb = np.eye(5)
    objects = np.array([[0, 1, 2], [3, 4, 0], [1, 2, 3]])
    large = np.array([1, 0, -1])
    image_emb = np.array([[0.1, 0.2, 0.9, 0.0, 0.0],    # large = 1; top-1 = 2, the 2nd small one
                          [0.05, 0.0, 0.0, 0.9, 0.1],   # large = 3; top-1 = 3
                          [0.0, 0.5, 0.2, 0.1, 0.3]])   # no large; top-1 = 1 (position 0); top-3 wrong
    got = ior_metrics(image_emb, reference_emb, objects, large)
    assert got["top_n_accuracy"] == pytest.approx(2 / 3)
    assert got["large_first_share"] == pytest.approx(1 / 2)
    assert got["small_first_share"] == pytest.approx([0.0, 1 / 2])
    assert got["first_retrieved_share_by_position"] == pytest.approx([2 / 3, 0.0, 1 / 3])


def test_ior_metrics_without_large_objects_gives_nan():
    got = ior_metrics(np.eye(3)[:2], np.eye(3), np.array([[0, 1], [1, 2]]), np.array([-1, -1]))
    assert np.isnan(got["large_first_share"]) and np.isnan(got["small_first_share"]).all()
    assert got["first_retrieved_share_by_position"] == pytest.approx([1.0, 0.0])


def test_ior_metrics_rejects_bad_large_position():
    with pytest.raises(ValueError, match="large"):
        ior_metrics(np.eye(3)[:1], np.eye(3), np.array([[0, 1]]), np.array([2]))


def test_move_object():
    assert move_object((0, 1, 2, 3), 2, "first") == (2, 0, 1, 3)
    assert move_object((0, 1, 2, 3), 1, "last") == (0, 2, 3, 1)
    assert move_object((0, 1, 2), 0, "first") == (0, 1, 2)
    with pytest.raises(ValueError, match="middle"):
        move_object((0, 1, 2), 1, "middle")
    with pytest.raises(ValueError, match="k=3"):
        move_object((0, 1, 2), 3, "first")


def test_replace_object():
    assert replace_object((0, 1, 2), 1, 7) == (0, 7, 2)
    assert replace_object(("cube", "star"), 0, "moon") == ("moon", "star")
    with pytest.raises(ValueError, match="already"):
        replace_object((0, 1, 2), 0, 2)


def test_aggregate_object_embeddings_on_hand_made_vectors():
    per_object = np.array([[[3.0, 0.0], [0.0, 1.0]]])
    assert aggregate_object_embeddings(per_object, "authors_sum").tolist() == [[1.0, 1.0]]  # not the raw [3, 1]
    assert aggregate_object_embeddings(per_object, "max").tolist() == [[1.0, 1.0]]
    for gone in ("median", "mean", "sum"):  # "sum" of raw embeddings is not the authors' Sum: no such name
        with pytest.raises(ValueError, match=gone):
            aggregate_object_embeddings(per_object, gone)


# --- known answers: planted biases ---------------------------------------------------------------------------

def slot_shares(objects, tuples, weights, noise):
    got = tor_metrics(weighted(objects, tuples, weights, noise=noise), objects, tuples, "clean")
    return np.array([(got["first_slot"] == p).mean() for p in range(N)]), got


def test_tor_finds_a_planted_first_mention_bias(objects, tuples):
    shares, got = slot_shares(objects, tuples, (0.4, 0.3, 0.2, 0.1), noise=0.01)
    assert shares[0] >= 0.95 and shares[3] <= 0.02
    assert got["top_n_correct"].mean() >= 0.95 and (got["first_slot"] == -1).mean() <= 0.02


def test_tor_shares_are_even_without_a_bias(objects, tuples):
    shares, got = slot_shares(objects, tuples, (0.25,) * 4, noise=0.02)
    assert shares == pytest.approx([0.25] * 4, abs=0.1)
    assert shares.sum() + (got["first_slot"] == -1).mean() == pytest.approx(1.0)


def test_tor_share_ordering_follows_a_small_bias(objects, tuples):
    small, _ = slot_shares(objects, tuples, (0.28, 0.25, 0.24, 0.23), noise=0.02)
    large, _ = slot_shares(objects, tuples, (0.4, 0.3, 0.2, 0.1), noise=0.02)
    assert (np.diff(small) < 0).all()
    assert 0.3 < small[0] < 0.9
    assert small[0] < large[0]


def test_ior_finds_a_planted_large_object_bias(objects, tuples):
    large = np.arange(len(tuples)) % N
    weights = np.where(np.arange(N)[None, :] == large[:, None], 0.7, 0.1)
    clean = np.einsum("mp,mpd->md", weights, objects[tuples])
    image = clean + np.random.default_rng(5).normal(scale=0.01, size=clean.shape)
    got = ior_metrics(image, objects, tuples, large)
    assert got["large_first_share"] >= 0.95
    assert (got["small_first_share"] <= 0.02).all() and got["small_first_share"].shape == (N - 1,)
    assert got["top_n_accuracy"] >= 0.95
    # the large object sits at every position equally often, so by position the shares are even
    assert got["first_retrieved_share_by_position"] == pytest.approx([0.25] * N, abs=0.1)


def test_ior_shares_are_even_without_a_large_object(objects, tuples):
    image = weighted(objects, tuples, (0.25,) * N, noise=0.02, seed=6)
    got = ior_metrics(image, objects, tuples, np.full(len(tuples), -1))
    assert got["first_retrieved_share_by_position"] == pytest.approx([0.25] * N, abs=0.1)
    assert np.isnan(got["large_first_share"])


@pytest.mark.parametrize("how", ["authors_sum"])
def test_per_object_aggregation_removes_a_planted_order_bias(objects, tuples, how):
    biased, _ = slot_shares(objects, tuples, (0.4, 0.3, 0.2, 0.1), noise=0.02)
    per_object = objects[tuples] + np.random.default_rng(7).normal(scale=0.02, size=(len(tuples), N, D))
    mitigated = tor_metrics(aggregate_object_embeddings(per_object, how), objects, tuples, "clean")
    assert biased[0] >= 0.95
    assert (mitigated["first_slot"] == 0).mean() == pytest.approx(1 / N, abs=0.1)
    assert mitigated["top_n_correct"].mean() >= 0.95


def test_authors_sum_is_the_sum_of_normalised_embeddings(objects):
    """The authors' Sum adds L2-normalised per-object embeddings (TOR_SimCO_CLIP_Sum): the same vectors, so the same
    ranking, and not the ranking of a sum of raw embeddings, whose norms weight the names."""
    rng = np.random.default_rng(3)
    per_object = rng.normal(size=(50, 3, D)) * rng.uniform(0.5, 5, size=(50, 3, 1))
    authors_sum = (per_object / np.linalg.norm(per_object, axis=-1, keepdims=True)).sum(axis=1)
    np.testing.assert_allclose(aggregate_object_embeddings(per_object, "authors_sum"), authors_sum)
    np.testing.assert_array_equal(retrieve(authors_sum, objects),
                                  retrieve(aggregate_object_embeddings(per_object, "authors_sum"), objects))
    assert (retrieve(per_object.sum(axis=1), objects)[:, 0] != retrieve(authors_sum, objects)[:, 0]).any()
