"""SugarCrepe (kind `sugarcrepe`, analysis `compositional`): the loader on files written in SugarCrepe's released
format (one JSON object per subset, COCO val2017 JPEGs), malformed ones named; the accuracy on a 4-item set of
known similarities; a workflow run from the files to the table."""
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from workflow_scripts.analyses.compositional import compositional_rows
from workflow_scripts.datasets import sugarcrepe
from workflow_scripts.datasets.build import build_items
from workflow_scripts.datasets.kind import ItemContext

ENTRIES = {
    "replace_att": {"0": ("000000544519.jpg", "A girl with a green shirt.", "A girl with a blue shirt."),
                    "1": ("000000057597.jpg", "A white dog on a red bed.", "A black dog on a red bed.")},
    "swap_att": {"0": ("000000544519.jpg", "A green shirt and a blue toothbrush.",
                       "A blue shirt and a green toothbrush."),
                 "7": ("000000029393.jpg", "A brick building with a blue sign.", "A blue building with a brick sign.")},
}


def write_sugarcrepe(folder, entries=ENTRIES):
    """SugarCrepe's data/<subset>.json files under folder/data and their COCO images under folder/val2017."""
    (folder / "data").mkdir(parents=True)
    (folder / "val2017").mkdir()
    for subset, by_id in entries.items():
        (folder / "data" / f"{subset}.json").write_text(json.dumps(
            {key: {"filename": f, "caption": c, "negative_caption": n} for key, (f, c, n) in by_id.items()}, indent=4))
        for i, (filename, _, _) in enumerate(by_id.values()):
            Image.new("RGB", (40, 30), (20 * i, 100, 200)).save(folder / "val2017" / filename, "JPEG")
    return {"kind": "sugarcrepe", "root": str(folder / "data"), "images": str(folder / "val2017"),
            "subsets": list(entries)}


def build(spec):
    context = ItemContext(0, (224, 224), sugarcrepe.inputs("sc", spec))
    table, _ = build_items("sc", {**spec, "analyses": []}, sugarcrepe.KIND, context)
    return table.to_pylist()


def test_every_entry_becomes_a_test_item_with_its_subset_image_caption_and_negative(tmp_path):
    items = build(write_sugarcrepe(tmp_path))
    assert [i["item_id"] for i in items] == ["replace_att-0", "replace_att-1", "swap_att-0", "swap_att-7"]
    last = items[-1]
    assert (last["subset"], last["split"], last["caption"], last["negative_captions"]) == (
        "swap_att", "test", "A brick building with a blue sign.", ["A blue building with a brick sign."])
    assert last["image"] == str((tmp_path / "val2017" / "000000029393.jpg").resolve())
    assert {i["split"] for i in items} == {"test"}


@pytest.mark.parametrize("content, words", [
    ("{not json", "not JSON"),
    ("[]", "expected a non-empty JSON object"),
    ('{"0": "a caption"}', "entry '0' is a str, not an object"),
    ('{"0": {"filename": "x.jpg", "caption": "a dog"}}', "entry '0' has no 'negative_caption' text"),
])
def test_a_malformed_subset_file_is_named_with_its_entry(tmp_path, content, words):
    spec = write_sugarcrepe(tmp_path)
    (tmp_path / "data" / "swap_att.json").write_text(content)
    with pytest.raises(ValueError, match="swap_att.json: .*" + words):
        build(spec)


def test_missing_files_are_named_before_any_job_and_missing_images_when_items_are_built(tmp_path):
    spec = write_sugarcrepe(tmp_path)
    (tmp_path / "data" / "swap_att.json").unlink()
    assert sugarcrepe.KIND.check("sc", {**spec, "images": str(tmp_path / "nowhere")}) == [
        f"datasets.sc.root: {tmp_path / 'data' / 'swap_att.json'} does not exist (subset swap_att)",
        f"datasets.sc.images: {tmp_path / 'nowhere'} is not a folder (COCO val2017's images)"]
    assert sugarcrepe.KIND.check("sc", {**spec, "root": str(tmp_path / "absent")}) == []  # skipped instead
    assert "does not exist, so none of its targets" in sugarcrepe.KIND.skip_reason("sc", {**spec, "root": "absent"})

    spec = write_sugarcrepe(tmp_path / "two")
    (tmp_path / "two" / "val2017" / "000000029393.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of the 4 images .* missing, e\.g\. .*000000029393\.jpg"):
        build(spec)


def unit(angle):
    return np.array([np.cos(angle), np.sin(angle)])


def test_accuracy_on_four_items_of_known_similarities():
    """Images at angle 0; captions and negatives at chosen angles: item 1 caption closer (correct), item 2
    negative closer (wrong), item 3 a tie, item 4 caption closer. Authors' rule (strict >): 2 of 4; a tie
    counting half: 2.5 of 4."""
    image = np.stack([unit(0.0)] * 4)
    caption = np.stack([unit(0.1), unit(0.8), unit(0.4), 3 * unit(0.2)])  # norms do not matter: cosine
    negative = np.stack([unit(0.5), unit(0.3), unit(-0.4), unit(0.9)])
    rows = compositional_rows(["replace_att", "replace_att", "swap_att", "swap_att"], image, caption, negative)
    got = {(r["protocol"], r["subset"]): (r["accuracy"], r["n_items"], r["n_ties"]) for r in rows}
    assert got[("authors", "replace_att")] == (0.5, 2, 0)
    assert got[("authors", "swap_att")] == (0.5, 2, 1)
    assert got[("clean", "swap_att")] == (0.75, 2, 1)
    assert got[("authors", "family: replace")] == (0.5, 2, 0)
    assert got[("authors", "all")] == (0.5, 4, 1) and got[("clean", "all")] == (0.625, 4, 1)


def test_the_workflow_runs_sugarcrepe_and_winoground_from_their_files_to_the_table(tmp_path):
    """Snakemake builds the items from the subset files (and Winoground's, SugarCrepe++'s and ColorSwap's files),
    embeds them with a randomly initialised ViT-B-32, scores them and writes the table, paper A's numbers beside
    the authors' rows of replace_att and swap_att only."""
    from conftest import TINY, snakemake, write_config

    spec = write_sugarcrepe(tmp_path / "sugarcrepe")
    target = "results/paper_a/tables/compositional.csv"
    default_subsets = {k: v for k, v in spec.items() if k != "subsets"}  # all seven: five files missing
    every_subset = write_config(tmp_path, {**TINY, "datasets": {"sc": default_subsets}})
    refused = snakemake(target, "-n", "--cores", 1, "--directory", tmp_path, "--configfile", every_subset)
    assert refused.returncode != 0 and "add_obj.json does not exist (subset add_obj)" in refused.stdout + refused.stderr

    from workflow_scripts.analyses.labclip import LabClip, export_authors_weights

    maps = {"identity": LabClip(512), "too_small": LabClip(4)}  # the second fits no ViT-B-32: skipped
    for name, labclip in maps.items():
        export_authors_weights(labclip, tmp_path / f"{name}.pt")
    from test_colorswap import write_colorswap
    from test_sugarcrepe_pp import write_sugarcrepe_pp
    from test_winoground import write_winoground

    wino = write_winoground(tmp_path / "winoground")
    scpp = write_sugarcrepe_pp(tmp_path / "sugarcrepe_pp")
    colours = write_colorswap(tmp_path / "colorswap")
    config = write_config(tmp_path, {**TINY, "datasets": {"sc": spec, "wino": wino, "scpp": scpp, "cs": colours},
                                     "paper_a": {
        **TINY["paper_a"], "published_maps": {name: str(tmp_path / f"{name}.pt") for name in maps}}})
    run = snakemake(target, "--cores", 2, "--directory", tmp_path, "--configfile", config)
    assert run.returncode == 0, run.stderr[-3000:]
    table = pd.read_csv(tmp_path / target)
    assert (table["activation"] == "GELU").all()  # what the model ran, from its embedding files
    scored = table[table["dataset"] == "wino"].set_index(["variant", "measure", "subset"])["n_items"]
    assert scored.loc[("CLIP", "group", "all")] == 2 and scored.loc[("CLIP", "text", "Object")] == 1
    assert table[table["dataset"] == "wino"]["reference_accuracy"].isna().all()
    swapped = table[(table["dataset"] == "cs") & (table["variant"] == "CLIP")].set_index(["measure", "subset"])
    assert swapped.loc[("group", "all"), "n_items"] == 2 and swapped.loc[("text", "dalle3"), "n_items"] == 1
    plus = table[(table["dataset"] == "scpp") & (table["variant"] == "CLIP")].set_index(["measure", "subset"])
    assert set(plus.index.get_level_values(0)) == {"image-to-text", "image-to-text, caption 1",
                                                   "image-to-text, caption 2", "text-only"}
    assert plus.loc[("image-to-text", "all"), "n_items"] == 2 and (plus["scoring"] == "sugarcrepe_pp").all()
    table = table[table["dataset"] == "sc"]
    assert sorted(set(table["variant"])) == ["CLIP", "published:identity"]
    mapped = table[table["variant"] == "published:identity"].set_index(["protocol", "subset"])
    clip = table[table["variant"] == "CLIP"].set_index(["protocol", "subset"])
    np.testing.assert_allclose(mapped["accuracy"], clip["accuracy"])  # the identity map changes no cosine
    assert mapped["reference_accuracy"].isna().all()  # paper A's numbers are CLIP's
    authors = clip.loc["authors"]
    assert authors.loc["all", "n_items"] == 4 and authors.loc["replace_att", "n_items"] == 2
    assert authors.loc["replace_att", "reference_accuracy"] == 0.80
    assert authors.loc["swap_att", "reference_accuracy"] == 0.62
    assert np.isnan(authors.loc["all", "reference_accuracy"])
    assert table["weights"].str.startswith("random").all() and (table["dataset"] == "sc").all()
    markdown = (tmp_path / "results/paper_a/tables/compositional.md").read_text()
    assert "RANDOM weights" in markdown and "n_items" in markdown
