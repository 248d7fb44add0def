"""TOR's two protocols on hand-made inputs whose answers are known: the authors' combinations in vocabulary order,
substring top-n and long template, and the clean balanced orders."""
from collections import Counter
from itertools import combinations
from math import comb

import numpy as np
import pytest

from workflow_scripts.analyses.tor import (
    ENUMERATE_UP_TO,
    combination_tuples,
    protocol_tuples,
    render_caption,
    size_order_tuples,
    tor_metrics,
    tor_rows,
)
from workflow_scripts.datasets.names import COCO_TOR_NAMES
from workflow_scripts.datasets.simco import SHAPES as SIMCO_SHAPES

CONFIG = {"protocols": ["authors", "clean"], "objects_per_caption": [2, 3], "captions_per_count": None,
          "templates": ["short", "long"], "aggregations": ["authors_sum"]}


def test_authors_captions_are_every_combination_in_vocabulary_order():
    got = combination_tuples(5, 3)
    assert got == list(combinations(range(5), 3)) and len(got) == 10
    assert len(combination_tuples(len(SIMCO_SHAPES), 3)) == comb(18, 3) == 816
    assert render_caption([SIMCO_SHAPES[i] for i in got[0]]) == "cube and sphere and cylinder"


def test_a_limit_is_a_seeded_subset_in_the_same_order():
    a, b, c = (combination_tuples(18, 4, limit=50, seed=s) for s in (3, 3, 4))
    assert a == b and a != c and a == sorted(a) and len(set(a)) == 50
    assert set(a) <= set(combinations(range(18), 4))


def test_sampling_past_the_enumeration_bound_gives_distinct_increasing_tuples():
    assert comb(len(COCO_TOR_NAMES), 5) > ENUMERATE_UP_TO
    got = combination_tuples(len(COCO_TOR_NAMES), 5, limit=300, seed=0)
    assert len(set(got)) == 300 and got == sorted(got)
    assert all(list(t) == sorted(set(t)) for t in got)


def test_clean_orders_put_every_name_at_every_slot_equally_often():
    tuples = protocol_tuples("clean", 6, 3, None, 0)
    assert len(tuples) == 3 * comb(6, 3)
    for slot in range(3):
        assert set(Counter(t[slot] for t in tuples).values()) == {comb(5, 2)}
    assert len(protocol_tuples("clean", 18, 4, 10, 0)) == 4 * 3  # ceil(10 / 4) combinations, each in 4 orders


def test_the_authors_long_template_word_for_word():
    names = ["cube", "sphere", "cone", "moon", "star"]
    full = ("This vibrant display features a stunning cube with its radiant glow, a mesmerizing sphere with bold "
            "contours, an enchanting cone that fits perfectly with its graceful form, a dazzling moon with brilliant "
            "tones and intricate patterns, and an alluring star that completes the ensemble with its seamless fusion "
            "and distinct shape.")
    assert render_caption(names, "long") == full
    assert render_caption(names[:2], "long") == full[:full.index("bold contours") + len("bold contours")] + "."
    assert render_caption(names[:3], "long") == full[:full.index("graceful form") + len("graceful form")] + "."
    assert render_caption(names[:4], "long") == full[:full.index("intricate patterns") + len("intricate patterns")] + "."
    with pytest.raises(ValueError, match="2..5"):
        render_caption(names[:1], "long")


def earliest_name_encoder(names):
    """Embeds a text as the one-hot vector of the earliest name of `names` it mentions (a word-bounded match): an
    encoder with no position bias at all, only a preference for names listed early."""
    def encode(texts):
        out = np.zeros((len(texts), len(names)))
        for row, text in enumerate(texts):
            words = f" {text.rstrip('.')} ".replace(",", " ")
            out[row, min(i for i, name in enumerate(names) if f" {name} " in words)] = 1.0
        return out
    return encode


def test_combination_order_alone_makes_a_first_slot_share_of_one_where_balanced_orders_give_one_in_n():
    names = ["cube", "sphere", "cone", "moon", "star", "leaf"]
    rows = tor_rows(earliest_name_encoder(names), names, CONFIG, seed=0)
    for row in rows:
        if row["method"] != "caption":
            continue
        n = row["n_objects"]
        expected = 1.0 if row["protocol"] == "authors" else 1 / n
        assert row["first_retrieved_share_1"] == pytest.approx(expected), row
        assert sum(row[f"first_retrieved_share_{p}"] for p in range(1, n + 1)) == pytest.approx(1.0)
        assert np.isnan(row["first_retrieved_share_5"])


def test_substring_top_n_counts_a_name_inside_another_as_mentioned():
    names = ["hot dog", "cat", "dog"]
    tuples = np.array([[0, 1]])  # "hot dog and cat"
    caption_emb = np.array([[0.1, 0.9, 0.8]])  # nearest names: cat, then dog (not hot dog)
    texts = [render_caption(["hot dog", "cat"])]
    authors = tor_metrics(caption_emb, np.eye(3), tuples, "authors", names, texts)
    clean = tor_metrics(caption_emb, np.eye(3), tuples, "clean")
    assert authors["top_n_correct"].tolist() == [True] and clean["top_n_correct"].tolist() == [False]
    assert authors["first_slot"].tolist() == [1] == clean["first_slot"].tolist()


def test_shares_among_top_n_correct_captions_use_only_those():
    embeddings = {"x": [1, 0, 0], "y": [0, 1, 0], "z": [0, 0, 1],
                  "x and y": [1, 0.5, 0],   # nearest x (slot 1); top-2 {x, y}: correct
                  "x and z": [0.2, 1, 0.1],  # nearest y, not mentioned; top-2 {y, x}: wrong
                  "y and z": [0, 0.3, 1]}   # nearest z (slot 2); top-2 {z, y}: correct
    rows = tor_rows(lambda texts: np.array([embeddings[t] for t in texts], float), ["x", "y", "z"],
                    {**CONFIG, "objects_per_caption": [2], "templates": ["short"], "protocols": ["authors"]}, seed=0)
    caption = next(r for r in rows if r["method"] == "caption")
    assert (caption["n_captions"], caption["n_top_n_correct"]) == (3, 2)
    assert caption["top_n_accuracy"] == pytest.approx(2 / 3)
    assert [caption[f"first_retrieved_share_{p}"] for p in (1, 2)] == pytest.approx([1 / 3, 1 / 3])
    assert caption["not_mentioned_share"] == pytest.approx(1 / 3)
    assert [caption[f"correct_first_retrieved_share_{p}"] for p in (1, 2)] == pytest.approx([1 / 2, 1 / 2])


def test_rows_cover_each_protocol_count_and_template_with_the_split_once():
    names = list(SIMCO_SHAPES[:6])
    rows = tor_rows(earliest_name_encoder(names), names, CONFIG, seed=0)
    keys = Counter((r["protocol"], r["template"], r["method"]) for r in rows)
    assert keys == {(p, t, m): 2 for p in ("authors", "clean") for t, m in
                    [("short", "caption"), ("short", "split-authors_sum"), ("long", "caption")]}
    assert {r["n_names"] for r in rows} == {6}


SIZES = ("large", "small", "small", "large", "small", "")  # cube and moon large; the unsized leaf never used


def test_size_order_names_one_large_among_small_ones_first_and_last():
    orders = size_order_tuples(SIZES, 3, None, seed=0)
    assert len(orders["large first"]) == 2 * 3  # 2 large x C(3 small, 2)
    for first, last in zip(orders["large first"], orders["large last"]):
        assert SIZES[first[0]] == "large" and [SIZES[i] for i in first[1:]] == ["small", "small"]
        assert last == first[1:] + first[:1]
    assert len(size_order_tuples(SIZES, 3, 4, seed=0)["large first"]) == 2  # ceil(4 / 2) sets
    assert size_order_tuples(("large", "small"), 3, None, seed=0) == {"large first": [], "large last": []}


def test_size_order_tells_a_first_slot_bias_from_a_large_object_bias():
    """Known answers: an encoder that sees only a caption's first name retrieves slot 1 in both orders; one that
    sees only the large name retrieves slot 1 when it is named first and slot n when it is named last."""
    names = ["cube", "sphere", "cone", "moon", "star", "leaf"]
    large = {i for i, size in enumerate(SIZES) if size == "large"}

    def first_name(texts):
        return np.eye(len(names))[[names.index(text.split(" and ")[0]) for text in texts]]

    def large_name(texts):
        return np.eye(len(names))[[next(names.index(w) for w in text.split(" and ") if names.index(w) in large)
                                   if " and " in text else names.index(text) for text in texts]]

    config = {**CONFIG, "protocols": ["size_order"], "templates": ["short"], "aggregations": []}
    for encoder, last_slot_share in ((first_name, 0.0), (large_name, 1.0)):
        rows = {(r["protocol"], r["n_objects"]): r for r in tor_rows(encoder, names, config, 0, SIZES)}
        for n in (2, 3):
            assert rows[("size_order, large first", n)]["first_retrieved_share_1"] == 1.0
            assert rows[("size_order, large last", n)][f"first_retrieved_share_{n}"] == last_slot_share
    assert tor_rows(first_name, names, config, 0) == []  # no size categories: no size_order rows


def test_coco_names_carry_size_categories_through_the_item_table_vocabulary():
    from workflow_scripts.datasets.items import Vocabulary
    from workflow_scripts.datasets.names import listed_sizes

    sizes = listed_sizes({"names": "coco"})
    vocabulary = Vocabulary(objects=COCO_TOR_NAMES, sizes=tuple(sizes.get(n, "") for n in COCO_TOR_NAMES))
    again = Vocabulary.from_json(vocabulary.to_json())
    assert again == vocabulary and again.sizes[COCO_TOR_NAMES.index("bus")] == "large"
    assert again.sizes[COCO_TOR_NAMES.index("spoon")] == "small" and again.sizes[COCO_TOR_NAMES.index("kite")] == ""
    assert listed_sizes({"names": "simco"}) == {}
