"""Paper B's TOR pipeline with a text encoder whose first-mention bias is planted, through table and figure."""
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from workflow_scripts import reference
from workflow_scripts.figures import draw
from workflow_scripts.paper_b import tor_rows
from workflow_scripts.paper_b_tables import tor_markdown, tor_table
from workflow_scripts.scenes import SIMCO_SHAPES

POSITION_WEIGHTS = (0.4, 0.3, 0.2, 0.1, 0.05)
TOR = {"objects": list(SIMCO_SHAPES), "objects_per_caption": [2, 4], "captions_per_count": 400,
       "templates": ["short", "long"], "aggregations": ["mean", "sum"]}


def biased_encoder(weights=POSITION_WEIGHTS, dim=64, noise=0.01):
    """Encodes a text as the position-weighted sum of the vectors of the object names it mentions."""
    vectors = dict(zip(SIMCO_SHAPES, np.linalg.qr(np.random.default_rng(0).standard_normal((dim, dim)))[0].T))

    def encode(texts):
        out = []
        for text in texts:
            names = [w for w in re.findall(r"[a-z]+", text) if w in vectors]
            jitter = np.random.default_rng(abs(hash(text)) % 2**32).standard_normal(dim)
            out.append(sum(w * vectors[n] for w, n in zip(weights, names)) + noise * jitter)
        return np.array(out)

    return encode


@pytest.fixture(scope="module")
def rows():
    return pd.DataFrame(tor_rows(biased_encoder(), TOR, seed=0))


def test_rows_cover_every_template_count_and_method(rows):
    assert len(rows) == 2 * 2 * 3
    assert set(rows["method"]) == {"caption", "split-mean", "split-sum"}
    assert rows.groupby("n_objects")["n_captions"].unique().to_dict() == {2: [18 * 17], 4: [400]}
    assert rows[rows["n_objects"] == 2]["first_retrieved_share_3"].isna().all()


@pytest.mark.parametrize("template", ["short", "long"])
def test_planted_first_mention_bias_is_measured_and_the_split_removes_it(rows, template):
    four = rows[(rows["n_objects"] == 4) & (rows["template"] == template)].set_index("method")
    assert four.loc["caption", "first_retrieved_share_1"] > 0.95
    assert four.loc["caption", "first_retrieved_share_4"] < 0.02
    for method in ("split-mean", "split-sum"):
        for position in range(1, 5):
            assert four.loc[method, f"first_retrieved_share_{position}"] == pytest.approx(0.25, abs=0.08)
        assert four.loc[method, "top_n_accuracy"] > 0.95


def test_unbiased_encoder_shows_no_position_preference():
    rows = pd.DataFrame(tor_rows(biased_encoder(weights=(0.25,) * 5), {**TOR, "templates": ["short"]}, seed=0))
    caption = rows[(rows["n_objects"] == 4) & (rows["method"] == "caption")].iloc[0]
    for position in range(1, 5):
        assert caption[f"first_retrieved_share_{position}"] == pytest.approx(0.25, abs=0.08)


def test_table_marks_the_rows_the_paper_reports_and_the_figure_draws(rows, tmp_path):
    labelled = rows.assign(model_id="syn", weights="random initialisation, torch seed 0")
    table = tor_table(labelled)
    reported = table.dropna(subset=["reference_first_retrieved_share_1"])
    assert list(zip(reported["template"], reported["n_objects"], reported["method"])) == [("short", 4, "caption")]
    assert reported["reference_first_retrieved_share_4"].iloc[0] == reference.TOR_FIRST_RETRIEVED_SHARE[4]
    assert "| syn |" in tor_markdown(table)
    draw("tor_position_bias", {"tor": table}, tmp_path / "t.png", tmp_path / "t.pdf")
    with Image.open(tmp_path / "t.png") as png:
        assert png.size[0] > 300
