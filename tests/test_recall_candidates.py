"""Recall@K's candidate sets (rule `binding`): the authors' pair labels of the whole vocabulary per setting, the
clean protocol's one wording per binding of the test split, and the distinct caption strings they replace, on a
planted similarity matrix whose ranks are counted by hand."""
import numpy as np
import pandas as pd
import pytest

from workflow_scripts.analyses.binding import (
    DISTINCT_STRINGS,
    NO_PAIR_LABELS,
    authors_candidates,
    binding_candidates,
    candidate_embeddings,
    candidate_recall,
    distinct_string_candidates,
    pair_label_description,
    pair_labels,
    recall_candidates,
)
from workflow_scripts.analyses.embedded import Embedded
from workflow_scripts.analyses.similarity import binding_rule
from workflow_scripts.datasets import clevr, pug, spar
from workflow_scripts.datasets.items import Vocabulary

# Two colours, two shapes. The authors' CLEVR loops (red, blue) x (cube, ball) x (red, blue) x (cube, ball) keep,
# of each set of two pairs with two shapes, the wording met first:
#   D "red cube and red ball", A "red cube and blue ball", E "red ball and blue cube", F "blue cube and blue ball".
TINY = Vocabulary(objects=("cube", "ball"), attributes=("red", "blue"), phrase="{attribute} {object}",
                  pair_labels="unordered")
A, B, C = "red cube and blue ball", "blue ball and red cube", "blue cube and red ball"  # B: A's other word order
D, E, F = "red cube and red ball", "red ball and blue cube", "blue cube and blue ball"  # E: C's other word order
# Test items: two word orders of one binding (A, B) and C; each item's negative swaps its colours.
ITEMS = [{"caption": A, "negative_captions": [C], "split": "test"},
         {"caption": B, "negative_captions": [E], "split": "test"},
         {"caption": C, "negative_captions": [A], "split": "test"}]
# Planted text embeddings (raw: the authors' CLEVR score reads their norms) and images (item i's image is row i).
TEXT = {A: [1.0, 0.0, 0.0], B: [0.5, 1.0, 0.0], C: [0.0, 0.0, 1.0],
        D: [0.2, 0.2, 0.2], E: [0.0, 0.0, 2.0], F: [0.0, 0.6, 0.0]}
IMAGE = np.array([[1.0, 2.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


def planted() -> Embedded:
    caption = np.array([TEXT[i["caption"]] for i in ITEMS])
    negative = np.array([TEXT[i["negative_captions"][0]] for i in ITEMS])
    return Embedded(ITEMS, IMAGE, caption, negative, "planted", TINY)


def test_authors_clevr_pair_labels_keep_one_wording_per_binding_in_vocabulary_order():
    assert pair_labels(TINY) == [("red", "cube", "red", "ball"), ("red", "cube", "blue", "ball"),
                                 ("red", "ball", "blue", "cube"), ("blue", "cube", "blue", "ball")]
    candidates = authors_candidates(ITEMS, TINY)
    assert candidates.texts == [D, A, E, F]
    # an image's label is its pair tuple or its reverse: both wordings of A's binding answer with A
    assert candidates.images.tolist() == [0, 1, 2] and candidates.correct.tolist() == [1, 1, 2]


def test_candidate_counts_of_the_authors_loaders():
    assert len(pair_labels(clevr.VOCABULARY)) == 192  # 8 colours x 3 shapes
    assert len(set(pair_labels(clevr.VOCABULARY))) == 192
    animals = tuple(f"animal {i}" for i in range(32))
    spar_words = tuple((pug.word(a), pug.word(b)) for a, b in pug.SPAR_TEXTURE_PAIRS)
    pug_spar = Vocabulary(animals, ("blue", "grass", "red", "stone"), "{attribute} {object}",
                          pair_labels=pug.PAIR_LABELS["spar"], attribute_pairs=spar_words)
    assert spar_words == (("blue", "red"), ("grass", "stone"))
    assert len(pair_labels(pug_spar)) == 1984  # 32 animals
    assert len(pair_labels(spar.VOCABULARIES["spare"])) == 7392  # 12 categories x 8 textures
    assert len(pair_labels(spar.VOCABULARIES["spar"])) == 12 * 11 * 2
    textures = tuple(f"texture {i}" for i in range(8))
    pug_spare = Vocabulary(animals[:12], textures, "{attribute} {object}", pair_labels=pug.PAIR_LABELS["spare"])
    assert len(pair_labels(pug_spare)) == 7392


def test_spare_candidates_keep_both_word_orders_and_spar_one():
    spare = Vocabulary(("cube", "ball"), ("red", "blue"), "{attribute} {object}", pair_labels="ordered")
    assert len(pair_labels(spare)) == 4  # (red, blue) and (blue, red) on (cube, ball) and (ball, cube)
    candidates = authors_candidates(ITEMS, spare)
    # A and B are one binding in two word orders: two candidates, each item's its own exact label
    assert candidates.texts[candidates.correct[0]] == A and candidates.texts[candidates.correct[1]] == B
    spar_like = Vocabulary(("cube", "ball"), ("red", "blue"), "{attribute} {object}", pair_labels="attribute_pairs",
                           attribute_pairs=(("red", "blue"),))
    candidates = authors_candidates(ITEMS, spar_like)
    assert candidates.texts == ["red cube and blue ball", "red ball and blue cube"]
    assert candidates.correct.tolist() == [0, 0, 1]  # B, and C's binding, found reversed


def test_clean_candidates_are_the_test_bindings_one_wording_each():
    candidates = binding_candidates(ITEMS, TINY)
    assert candidates.texts == [A, C] and candidates.correct.tolist() == [0, 0, 1]
    assert candidates.description == "the test split's bindings, one wording each"
    old = distinct_string_candidates(ITEMS)  # the candidates both protocols ranked before
    assert old.texts == [A, B, C] and old.correct.tolist() == [0, 1, 2]


def test_recall_at_k_on_a_planted_similarity_matrix_differs_by_candidate_set():
    """Hand-counted ranks. Cosines (clean): image 0 ([1, 2, 0]) has cosine 1 with B, 0.447 with A, 0 with C;
    image 1 ([1, 0, 0]) 1 with A, 0.447 with B; image 2 1 with C. The authors' CLEVR score, normalised image . raw
    text: image 0 scores A 0.447, B 1.118, D 0.268, E 0, F 0.537; image 1 A 1, B 0.5, D 0.2; image 2 C 1, E 2,
    D 0.2.

    Distinct strings [A, B, C]: image 0's own caption A is beaten by B, image 1's own B by A: R@1 = 1/3 under both
    rules, R@2 = 1. One wording per binding, clean [A, C]: every image's binding first, R@1 = 1. The authors'
    pair labels [D, A, E, F]: image 0's A (0.447) is beaten by F (0.537), images 1 and 2 first: R@1 = 2/3, R@2 = 1.
    """
    data = planted()
    asked = []

    def encode(texts):
        asked.append(list(texts))
        return np.array([TEXT[t] for t in texts])

    sets = recall_candidates(ITEMS, TINY)
    authors, clean = binding_rule("authors", "clevr"), binding_rule("clean", "clevr")
    vectors = {p: candidate_embeddings(c.texts, data, encode)[0] for p, c in sets.items()}
    assert asked == [sorted([D, F])]  # E is item 1's negative: only the captions no item has are embedded anew
    assert candidate_recall(IMAGE, sets["clean"], vectors["clean"], clean, ks=(1, 2)) == {1: 1.0, 2: 1.0}
    assert candidate_recall(IMAGE, sets["authors"], vectors["authors"], authors, ks=(1, 2)) == {
        1: pytest.approx(2 / 3), 2: 1.0}
    old = distinct_string_candidates(ITEMS)
    old_text = candidate_embeddings(old.texts, data)[0]
    for rule in (authors, clean):
        assert candidate_recall(IMAGE, old, old_text, rule, ks=(1, 2)) == {1: pytest.approx(1 / 3), 2: 1.0}


def test_without_an_encoder_a_missing_wording_borrows_its_binding_and_says_so():
    with pytest.raises(ValueError, match="needs a text encoder"):
        candidate_embeddings([D], planted())  # no text of the data binds as D does
    vectors, borrowed = candidate_embeddings(["red ball and blue cube", "blue ball and red cube"],
                                             Embedded(ITEMS[:1], IMAGE[:1], np.array([TEXT[A]]),
                                                      np.array([TEXT[C]]), "planted", TINY))
    assert borrowed == 2 and vectors.tolist() == [TEXT[C], TEXT[A]]


def test_free_text_and_attribute_free_vocabularies_fall_back_to_distinct_strings():
    free = Vocabulary(objects=(), phrase=None)
    assert authors_candidates(ITEMS, free).description == NO_PAIR_LABELS
    assert binding_candidates(ITEMS, free).description == DISTINCT_STRINGS
    assert authors_candidates(ITEMS, free).texts == [A, B, C]
    names = Vocabulary(objects=("cube", "ball"))
    items = [{"caption": "cube and ball"}, {"caption": "ball and cube"}]
    assert authors_candidates(items, names).texts == ["cube and ball", "ball and cube"]
    assert binding_candidates(items, names).texts == ["cube and ball"]


def test_the_vocabulary_keeps_its_candidate_set_through_the_item_table():
    for vocabulary in (spar.VOCABULARIES["spar"], spar.VOCABULARIES["spare"], clevr.VOCABULARY):
        assert Vocabulary.from_json(vocabulary.to_json()) == vocabulary
    old = b'{"objects": ["cube"], "attributes": ["red"], "phrase": "{attribute} {object}", "joiner": " and "}'
    assert Vocabulary.from_json(old).pair_labels == "unordered"  # an item table written before the field


def test_a_pug_spar_download_declares_the_authors_spar_labels_and_every_item_finds_its_own(tmp_path):
    from test_pug import build, spar_rows, write_download

    write_download(tmp_path / "spar", "spar", spar_rows())
    items, vocabulary = build(tmp_path / "spar", "spar")
    assert vocabulary.pair_labels == "attribute_pairs"
    assert vocabulary.attribute_pairs == (("blue", "red"), ("grass", "stone"))
    candidates = authors_candidates(items, vocabulary)
    assert len(candidates.texts) == 3 * 2 * 2 == len(set(candidates.texts))  # 3 animals: 6 ordered pairs x 2
    assert candidates.images.tolist() == list(range(len(items)))
    assert [candidates.texts[c] for c in candidates.correct] == [item["caption"] for item in items]


def test_the_binding_table_names_each_protocols_candidate_set():
    from test_intervals import binding_rows as table_rows

    from workflow_scripts.summary.tables import BINDING_PROTOCOLS, binding_markdown, binding_table

    rows = table_rows()
    both = pd.concat([rows.assign(protocol="authors", recall_candidates=pair_label_description(clevr.VOCABULARY),
                                  n_recall_captions=192),
                      rows.assign(recall_candidates="the test split's bindings, one wording each",
                                  n_recall_captions=7)])
    markdown = binding_markdown(binding_table(both))
    assert "recall candidates (authors) | recall candidates (clean)" in markdown
    assert "one wording each (the authors' CLEVR pair labels) (n=192) |" in markdown
    assert "| the test split's bindings, one wording each (n=7) |" in markdown
    assert "| not recorded |" in binding_markdown(binding_table(rows))  # rows of an older binding rule
    assert "distinct captions of the test split" not in BINDING_PROTOCOLS
    assert "192 for 8 colours x 3 shapes" in BINDING_PROTOCOLS
