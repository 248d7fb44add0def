"""Paper B retrieval measures on hand-made inputs and on synthetic embeddings with a planted, known bias."""
from itertools import permutations

import numpy as np
import pytest

from workflow_scripts.analyses.ior import ior_metrics
from workflow_scripts.analyses.retrieval import aggregate_object_embeddings, move_object, replace_object, retrieve
from workflow_scripts.analyses.tor import LONG_PHRASES, LONG_PREFIX, render_caption, tor_captions, tor_metrics
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
    return np.array([t for _, t in tor_captions(SIMCO_SHAPES, N, limit=CAPTIONS, seed=0)])


def weighted(objects: np.ndarray, tuples: np.ndarray, weights, noise: float, seed: int = 1) -> np.ndarray:
    """One embedding per row: sum over positions p of weights[p] * objects[tuples[:, p]], plus Gaussian noise."""
    clean = np.einsum("p,mpd->md", np.asarray(weights, float), objects[tuples])
    return clean + np.random.default_rng(seed).normal(scale=noise, size=clean.shape)


# --- captions ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("k, n", [(4, 2), (4, 3), (5, 5), (18, 3)])
def test_tor_captions_are_all_permutations_in_order(k, n):
    names = [f"o{i}" for i in range(k)]
    got = [t for _, t in tor_captions(names, n)]
    assert got == list(permutations(range(k), n))


def test_tor_captions_count_for_simco():
    assert len(tor_captions(SIMCO_SHAPES, 3)) == 18 * 17 * 16


def test_short_caption_text():
    captions = tor_captions(["cube", "heart", "star"], 3)
    assert captions[0] == ("cube and heart and star", (0, 1, 2))
    assert captions[-1] == ("star and heart and cube", (2, 1, 0))


def test_long_caption_has_objects_in_order():
    names = ["cube", "heart", "star", "moon", "leaf"]
    text, order = tor_captions(names, 5, template="long")[-1]
    assert order == (4, 3, 2, 1, 0)
    assert text.startswith(LONG_PREFIX + " ") and text.endswith(".")
    positions = [text.index(f" {names[i]} ") for i in order]
    assert positions == sorted(positions)
    for phrase, i in zip(LONG_PHRASES, order):
        assert phrase.format(names[i]) in text


def test_long_caption_joins_two_and_three():
    assert render_caption(["cube", "star"], "long") == (
        "This vibrant display features a stunning cube with its radiant glow"
        " and a mesmerizing star with bold contours.")
    assert render_caption(["cube", "star", "moon"], "long").endswith(
        "bold contours, and an elegant moon with intricate details.")


def test_limit_is_a_seeded_sorted_subset():
    full = [t for _, t in tor_captions(SIMCO_SHAPES, 3)]
    a = tor_captions(SIMCO_SHAPES, 3, limit=50, seed=3)
    b = tor_captions(SIMCO_SHAPES, 3, limit=50, seed=3)
    c = tor_captions(SIMCO_SHAPES, 3, limit=50, seed=4)
    order = [t for _, t in a]
    assert a == b and a != c
    assert len(set(order)) == 50 and set(order) <= set(full)
    assert order == sorted(order)
    assert tor_captions(["a", "b", "c"], 2, limit=100) == tor_captions(["a", "b", "c"], 2)


@pytest.mark.parametrize("n, objects", [(1, 5), (6, 8), (4, 3)])
def test_bad_n_raises(n, objects):
    with pytest.raises(ValueError, match=f"n.*{n}"):
        tor_captions([f"o{i}" for i in range(objects)], n)


def test_unknown_template_raises():
    with pytest.raises(ValueError, match="medium"):
        tor_captions(["a", "b"], 2, template="medium")


# --- retrieval and metrics on hand-made vectors ------------------------------------------------------------

def test_retrieve_ranks_by_cosine_with_ties_to_lower_index():
    queries = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    candidates = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [2.0, 0.0]])
    assert retrieve(queries, candidates).tolist() == [[0, 3, 2, 1], [1, 2, 0, 3], [2, 0, 1, 3]]


def test_tor_metrics_on_hand_made_vectors():
    object_emb = np.eye(4)
    tuples = np.array([[0, 1], [2, 3], [1, 2]])
    caption_emb = np.array([[0.6, 0.8, 0.0, 0.0],   # top-1 = object 1 (position 1), top-2 right
                            [0.0, 0.0, 0.9, 0.1],   # top-1 = object 2 (position 0), top-2 right
                            [0.5, 0.1, 0.2, 0.0]])  # top-1 = object 0, not mentioned; top-2 wrong
    got = tor_metrics(caption_emb, object_emb, tuples)
    assert got["top_n_accuracy"] == pytest.approx(2 / 3)
    assert got["first_retrieved_share"] == pytest.approx([1 / 3, 1 / 3])
    assert got["not_mentioned_share"] == pytest.approx(1 / 3)


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
    assert aggregate_object_embeddings(per_object, "mean").tolist() == [[0.5, 0.5]]
    assert aggregate_object_embeddings(per_object, "sum").tolist() == [[3.0, 1.0]]
    assert aggregate_object_embeddings(per_object, "max").tolist() == [[1.0, 1.0]]
    with pytest.raises(ValueError, match="median"):
        aggregate_object_embeddings(per_object, "median")


# --- known answers: planted biases ---------------------------------------------------------------------------

def test_tor_finds_a_planted_first_mention_bias(objects, tuples):
    got = tor_metrics(weighted(objects, tuples, (0.4, 0.3, 0.2, 0.1), noise=0.01), objects, tuples)
    assert got["first_retrieved_share"][0] >= 0.95
    assert got["first_retrieved_share"][3] <= 0.02
    assert got["top_n_accuracy"] >= 0.95 and got["not_mentioned_share"] <= 0.02


def test_tor_shares_are_even_without_a_bias(objects, tuples):
    got = tor_metrics(weighted(objects, tuples, (0.25,) * 4, noise=0.02), objects, tuples)
    assert got["first_retrieved_share"] == pytest.approx([0.25] * 4, abs=0.1)
    assert got["first_retrieved_share"].sum() + got["not_mentioned_share"] == pytest.approx(1.0)


def test_tor_share_ordering_follows_a_small_bias(objects, tuples):
    small = tor_metrics(weighted(objects, tuples, (0.28, 0.25, 0.24, 0.23), noise=0.02), objects, tuples)
    large = tor_metrics(weighted(objects, tuples, (0.4, 0.3, 0.2, 0.1), noise=0.02), objects, tuples)
    shares = small["first_retrieved_share"]
    assert (np.diff(shares) < 0).all()
    assert 0.3 < shares[0] < 0.9
    assert shares[0] < large["first_retrieved_share"][0]


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


@pytest.mark.parametrize("how", ["mean", "sum"])
def test_per_object_aggregation_removes_a_planted_order_bias(objects, tuples, how):
    biased = tor_metrics(weighted(objects, tuples, (0.4, 0.3, 0.2, 0.1), noise=0.02), objects, tuples)
    per_object = objects[tuples] + np.random.default_rng(7).normal(scale=0.02, size=(len(tuples), N, D))
    mitigated = tor_metrics(aggregate_object_embeddings(per_object, how), objects, tuples)
    assert biased["first_retrieved_share"][0] >= 0.95
    assert mitigated["first_retrieved_share"][0] == pytest.approx(1 / N, abs=0.1)
    assert mitigated["top_n_accuracy"] >= 0.95


def test_the_authors_sum_of_normalised_embeddings_ranks_as_split_mean(objects):
    """The authors' sum mitigation adds L2-normalised per-object embeddings: n times split-mean, the same ranking."""
    rng = np.random.default_rng(3)
    per_object = rng.normal(size=(50, 3, D)) * rng.uniform(0.5, 5, size=(50, 3, 1))
    authors_sum = (per_object / np.linalg.norm(per_object, axis=-1, keepdims=True)).sum(axis=1)
    np.testing.assert_array_equal(retrieve(authors_sum, objects),
                                  retrieve(aggregate_object_embeddings(per_object, "mean"), objects))
