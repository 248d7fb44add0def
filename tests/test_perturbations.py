"""ARO's text perturbations with the real spaCy tagger (en_core_web_sm 3.8.0, installed from the pinned upload)."""
from collections import Counter
from itertools import permutations

import pytest

from workflow_scripts.datasets.perturbations import (
    PERTURBATIONS, all_but_nouns_and_adjectives, cut_words, nouns_and_adjectives, pre_caption, seeded, tag,
    trigrams, within_trigrams)

CAPTION = "A large red bus parked next to a small white dog on the street."


@pytest.fixture(scope="module")
def tokens():
    return tag([CAPTION])[0]


def test_the_tagger_finds_the_nouns_and_adjectives(tokens):
    tags = dict(tokens)
    assert [tags[w] for w in ("large", "red", "small", "white")] == ["JJ"] * 4
    assert [tags[w] for w in ("bus", "dog", "street")] == ["NN"] * 3
    assert tags["A"] == "DT" and tags["parked"].startswith("VB")


def positions(tokens, words):
    return [i for i, (text, _) in enumerate(tokens) if text in words]


def test_nouns_and_adjectives_move_only_among_their_own_positions(tokens):
    nouns, adjectives = {"bus", "dog", "street"}, {"large", "red", "small", "white"}
    originals = [t for t, _ in tokens]
    seen = set()
    for seed in range(30):
        words = nouns_and_adjectives(tokens, seeded(seed)).split(" ")
        assert len(words) == len(originals)
        for i, word in enumerate(originals):
            if word in nouns:
                assert words[i] in nouns
            elif word in adjectives:
                assert words[i] in adjectives
            else:
                assert words[i] == word  # everything else stays in place
        assert Counter(words) == Counter(originals)
        seen.add(tuple(words[i] for i in positions(tokens, nouns)))
    assert len(seen) == 6  # all 3! orders of the nouns occur over 30 seeds


def test_all_but_nouns_and_adjectives_keeps_them_in_place(tokens):
    originals = [t for t, _ in tokens]
    kept = positions(tokens, {"bus", "dog", "street", "large", "red", "small", "white"})
    changed = False
    for seed in range(10):
        words = all_but_nouns_and_adjectives(tokens, seeded(seed)).split(" ")
        assert [words[i] for i in kept] == [originals[i] for i in kept]
        assert Counter(words) == Counter(originals)
        changed |= words != originals
    assert changed


def test_trigram_perturbations():
    tokens = [(w, "X") for w in "a b c d e f g".split()]
    orders = set()
    for seed in range(10):
        inside = within_trigrams(tokens, seeded(seed)).split(" ")
        assert [sorted(inside[i:i + 3]) for i in (0, 3, 6)] == [["a", "b", "c"], ["d", "e", "f"], ["g"]]
        orders.add(trigrams(tokens, seeded(seed)))
    assert orders <= {" ".join(order) for order in permutations(["a b c", "d e f", "g"])} and len(orders) > 1


def test_a_perturbation_depends_on_its_seed_only(tokens):
    for name, perturb in PERTURBATIONS.items():
        assert perturb(tokens, seeded(3, 1, 7)) == perturb(tokens, seeded(3, 1, 7)), name
    assert len({nouns_and_adjectives(tokens, seeded(3, 1, k)) for k in range(8)}) > 1


def test_caption_cleaning_as_blip_and_aro_do_it():
    assert pre_caption("A Man, riding a wave!  (on top).\n", 30) == "a man, riding a wave on top"
    assert pre_caption("one two three four", 2) == "one two"
    assert cut_words("one  two three four", 3) == "one two three"
