"""TOR enumerates every caption by default, as the authors' code does: a 5-name vocabulary whose slot shares are
counted by hand, the table's 'all N' / 'sampled k of N' and the published numbers only beside enumerated rows."""
import numpy as np
import pandas as pd
import pytest

from workflow_scripts.analyses.tor import (
    MAX_CAPTIONS,
    check_caption_budget,
    memoised,
    possible_captions,
    tor_rows,
)
from workflow_scripts.config import validate_config
from workflow_scripts.datasets.names import COCO_TOR_NAMES
from workflow_scripts.summary.tables import tor_markdown, tor_table

NAMES = ["ant", "bee", "cat", "dog", "eel"]
SALIENCE = {"ant": 5.0, "bee": 1.0, "cat": 4.0, "dog": 2.0, "eel": 3.0}


def salience_encoder(calls=None):
    """A caption's embedding is the salience-weighted sum of the one-hot vectors of the names it mentions, so the
    most similar single name is the caption's most salient one, wherever it stands: here every slot share follows
    from which combinations exist, which the test counts by hand."""
    def encode(texts):
        if calls is not None:
            calls.append(list(texts))
        out = np.zeros((len(texts), len(NAMES)))
        for row, text in enumerate(texts):
            for column, name in enumerate(NAMES):
                if name in text.replace(",", " ").replace(".", " ").split():
                    out[row, column] = SALIENCE[name]
        return out
    return encode


def default_tor_settings() -> dict:
    config = {"datasets": {"names": {"kind": "names", "names": "coco"}},
              "models": [{"id": "m", "name": "ViT-B-32", "pretrained": "random"}]}
    return validate_config(config)["paper_b"]["tor"]


@pytest.fixture(scope="module")
def rows():
    settings = {**default_tor_settings(), "objects_per_caption": [2, 3], "protocols": ["authors", "clean"]}
    assert settings["captions_per_count"] is None  # the schema's default: every caption
    return pd.DataFrame(tor_rows(salience_encoder(), NAMES, settings, seed=0))


def test_the_default_enumerates_every_combination_and_gives_the_hand_counted_shares(rows):
    authors = rows[(rows["protocol"] == "authors") & (rows["method"] == "caption")].set_index(["template", "n_objects"])
    for template in ("short", "long"):
        # n = 2, in vocabulary order: ab ac ad ae -> slot 1 (ant); bc bd be -> slot 2; cd -> 1 (cat); ce -> 1; de -> 2
        two = authors.loc[(template, 2)]
        assert (two["n_captions"], two["n_possible"], two["sampled"]) == (10, 10, False)
        assert (two["first_retrieved_share_1"], two["first_retrieved_share_2"]) == (6 / 10, 4 / 10)
        # n = 3: the six with ant -> 1; bcd, bce -> 2 (cat); bde -> 3 (eel); cde -> 1 (cat)
        three = authors.loc[(template, 3)]
        assert three["n_captions"] == 10 and not three["sampled"]
        assert [three[f"first_retrieved_share_{p}"] for p in (1, 2, 3)] == [7 / 10, 2 / 10, 1 / 10]
        assert three["top_n_accuracy"] == 1.0
    clean = rows[(rows["protocol"] == "clean") & (rows["method"] == "caption") & (rows["template"] == "short")]
    clean = clean.set_index("n_objects")
    assert (clean.loc[2, "n_captions"], clean.loc[3, "n_captions"]) == (20, 30)  # every rotation of every set
    assert [clean.loc[3, f"first_retrieved_share_{p}"] for p in (1, 2, 3)] == [1 / 3] * 3


def test_the_authors_sum_row_is_named_so(rows):
    split = rows[rows["method"] == "split-authors_sum"]
    assert len(split) == 4 and not (rows["method"] == "split-sum").any()


def test_a_sample_is_an_explicit_choice_and_says_so():
    settings = {**default_tor_settings(), "objects_per_caption": [3], "protocols": ["authors"],
                "templates": ["short"], "captions_per_count": 4}
    got = pd.DataFrame(tor_rows(salience_encoder(), NAMES, settings, seed=0)).iloc[0]
    assert (got["n_captions"], got["n_possible"], got["sampled"]) == (4, 10, True)


def test_the_table_marks_samples_and_puts_the_published_numbers_only_beside_enumerated_rows():
    base = {"dataset": "d", "model_id": "m", "weights": "w", "precision": "fp32", "protocol": "authors",
            "template": "short", "n_objects": 4, "method": "caption", "n_names": 18, "top_n_accuracy": 0.5,
            "not_mentioned_share": 0.0, "n_top_n_correct": 5,
            **{f"first_retrieved_share_{p}": 0.25 for p in range(1, 5)}, "first_retrieved_share_5": np.nan,
            **{f"correct_first_retrieved_share_{p}": 0.25 for p in range(1, 5)},
            "correct_first_retrieved_share_5": np.nan}
    tor = pd.DataFrame([{**base, "n_captions": 3060, "n_possible": 3060, "sampled": False},
                        {**base, "dataset": "e", "n_captions": 2000, "n_possible": 8568, "sampled": True}])
    table = tor_table(tor).set_index("dataset")
    assert table.loc["d", "captions"] == "all 3060" and table.loc["e", "captions"] == "sampled 2000 of 8568"
    assert table.loc["d", "reference_first_retrieved_share_1"] == pytest.approx(0.5031)
    assert np.isnan(table.loc["e", "reference_first_retrieved_share_1"])
    assert "sampled 2000 of 8568" in tor_markdown(table.reset_index())


def test_each_distinct_text_is_embedded_once_per_object_count():
    calls = []
    settings = {**default_tor_settings(), "objects_per_caption": [3], "protocols": ["authors", "clean"],
                "templates": ["short"]}
    tor_rows(salience_encoder(calls), NAMES, settings, seed=0)
    texts = [text for call in calls for text in call]
    assert len(texts) == len(set(texts)) == 5 + 30  # names, then the 30 clean orders (10 of them the authors')
    cached = memoised(salience_encoder(calls := []))
    cached(["ant and bee", "cat"]), cached(["cat", "ant and bee", "dog"])
    assert calls == [["ant and bee", "cat"], ["dog"]]


def test_a_full_enumeration_past_the_budget_is_refused_with_the_setting_to_change():
    settings = {**default_tor_settings(), "protocols": ["authors"]}
    assert possible_captions("authors", len(COCO_TOR_NAMES), 5) == 43_949_268 > MAX_CAPTIONS
    with pytest.raises(ValueError, match=r"datasets\.coco_names.*paper_b\.tor\.captions_per_count"):
        check_caption_budget(settings, len(COCO_TOR_NAMES), (), "datasets.coco_names")
    assert check_caption_budget({**settings, "captions_per_count": 1000}, len(COCO_TOR_NAMES), (), "x") == 4000
    assert check_caption_budget(settings, 18, (), "x") == 153 + 816 + 3060 + 8568  # SIMCO: every one


@pytest.mark.parametrize("limit", [None, 4, 7])
def test_the_budget_counts_exactly_the_captions_the_rule_embeds(limit):
    sizes = ["large", "small", "small", "large", "small"]
    settings = {**default_tor_settings(), "objects_per_caption": [2, 3], "templates": ["short"],
                "captions_per_count": limit}
    rows = pd.DataFrame(tor_rows(salience_encoder(), NAMES, settings, seed=0, sizes=sizes))
    embedded = rows.loc[rows["method"] == "caption", "n_captions"].sum()
    assert embedded == check_caption_budget(settings, len(NAMES), sizes, "x")
    assert set(rows["protocol"]) == {"authors", "clean", "size_order, large first", "size_order, large last"}
