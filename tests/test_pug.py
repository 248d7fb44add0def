"""The real PUG:SPAR and PUG:SPARE loaders (dataset kind `pug`), on small files written in the real formats."""
import csv
import itertools

import pytest
from PIL import Image

from workflow_scripts.datasets import pug
from workflow_scripts.datasets.build import build_items
from workflow_scripts.datasets.kind import ItemContext

SPAR_COLUMNS = ["filename", "world_name", "character_name", "character2_name", "character_texture",
                "character2_texture", "character1_pos", "character2_pos"]
SPLITS = {"train": 0.6, "val": 0.2, "test": 0.2}


def write_download(root, variant, rows, columns=None, images=True):
    """A PUG folder: its labels file with `rows` (dicts of the columns) and a 4x4 PNG for each row."""
    root.mkdir(parents=True, exist_ok=True)
    columns = columns or SPAR_COLUMNS + (["character_pos"] if variant == "spare" else [])
    with open(root / pug.LABEL_FILES[variant], "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    if images:
        for row in rows:
            path = pug.image_of(root, variant, row)
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (4, 4), (10, 20, 30)).save(path)
    return root / pug.LABEL_FILES[variant]


def row(i, world, a1, a2, t1, t2, variant="spar"):
    name = f"{world}/img_{i:04d}.png" if variant == "spar" else f"img_{i:04d}.png"
    return {"filename": name, "world_name": world, "character_name": a1, "character2_name": a2,
            "character_texture": t1, "character2_texture": t2, "character1_pos": "left", "character2_pos": "right",
            "character_pos": "left_right"}


def spar_rows():
    """Two worlds, three animals; every ordered animal pair with Blue/Red and Grass/Stone, plus the rows paper A
    drops: a blank slot, one animal twice, a Default texture."""
    rows, i = [], 0
    for world in ("Desert", "Arena"):
        for a1, a2 in itertools.permutations(["Elephant", "Goldfish", "Polar_Bear"], 2):
            for t1, t2 in (("Blue", "Red"), ("Grass", "Stone")):
                rows.append(row(i, world, a1, a2, t1, t2))
                i += 1
        for dropped in (("Elephant", "blank", "Blue", "Red"), ("blank", "blank", "Default", "Default"),
                        ("Elephant", "Elephant", "Blue", "Red"), ("Elephant", "Goldfish", "Default", "Default")):
            rows.append(row(i, world, *dropped))
            i += 1
    return rows


def build(root, variant, seed=0, analyses=None):
    """(items, vocabulary) as rule `items` builds them; `analyses` [] for a download too small to split."""
    spec = {"kind": "pug", "variant": variant, "root": str(root), "splits": SPLITS}
    if analyses is not None:
        spec["analyses"] = analyses
    context = ItemContext(seed, (224, 224), pug.inputs("pug_data", spec))
    table, vocabulary = build_items("pug_data", spec, pug.KIND, context)
    return table.to_pylist(), vocabulary


def test_spar_keeps_paper_a_pairs_with_captions_negatives_and_grouped_splits(tmp_path):
    write_download(tmp_path / "spar", "spar", spar_rows())
    items, vocabulary = build(tmp_path / "spar", "spar")
    assert len(items) == 2 * 6 * 2  # two worlds x ordered animal pairs x texture pairs; every dropped row gone
    assert vocabulary.objects == ("elephant", "goldfish", "polar bear")
    assert vocabulary.attributes == ("blue", "grass", "red", "stone")
    first = items[0]
    assert first["caption"] == "blue elephant and red goldfish"
    assert first["negative_captions"] == ["red elephant and blue goldfish"]
    assert [(o["attribute"], o["object"]) for o in first["objects"]] == [("blue", "elephant"), ("red", "goldfish")]
    assert first["image"] == str((tmp_path / "spar" / "Desert/img_0000.png").resolve())
    assert vocabulary.parse(items[2]["caption"]) == [("blue", "elephant"), ("red", "polar bear")]
    split_of = {}
    for item in items:  # a caption, its swap and the same scene in the other world share one split
        key = vocabulary.binding(item["caption"])
        assert split_of.setdefault(key, item["split"]) == item["split"]
        assert split_of.setdefault(vocabulary.binding(item["negative_captions"][0]), item["split"]) == item["split"]
    assert set(split_of.values()) == {"train", "val", "test"}
    assert build(tmp_path / "spar", "spar") == (items, vocabulary)  # same seed, same items and splits


def test_spare_reads_images_under_their_world_and_drops_equal_textures(tmp_path):
    rows = [row(0, "Desert", "Elephant", "Goldfish", "Blue", "Grass", "spare"),
            row(1, "Island", "Elephant", "Goldfish", "Blue", "Blue", "spare"),  # equal textures: dropped in SPARE
            row(2, "Island", "Goldfish", "Elephant", "Stone", "Red", "spare")]
    write_download(tmp_path / "spare", "spare", rows)
    items, _ = build(tmp_path / "spare", "spare", analyses=[])
    assert [item["caption"] for item in items] == ["blue elephant and grass goldfish", "stone goldfish and red elephant"]
    assert items[1]["image"] == str((tmp_path / "spare" / "Island" / "img_0002.png").resolve())
    write_download(tmp_path / "spar", "spar", [row(i, **r) for i, r in enumerate(
        [dict(world="Desert", a1="Elephant", a2="Goldfish", t1="Blue", t2="Blue")])])
    assert len(build(tmp_path / "spar", "spar", analyses=[])[0]) == 1  # SPAR keeps equal textures (paper A's SPAR filter)


def test_the_full_grids_give_paper_a_label_counts():
    """1,984 pair labels for SPAR (32 animals, Blue or Grass on the first) and 7,392 for SPARE (12 animals x 8
    textures, different animals and textures), from labels files of every combination, dropped rows included."""
    animals = [f"animal_{i}" for i in range(32)]
    spar = [row(0, "Desert", a1, a2, t1, t2) for a1, a2 in itertools.product(animals + ["blank"], repeat=2)
            for t1, t2 in (("Blue", "Red"), ("Grass", "Stone"), ("Default", "Default"))]
    assert len(pug.pair_labels(spar, "spar")) == 1984
    textures = ["Blue", "Red", "Grass", "Stone", "Wood", "Metal", "Sand", "Brick"]
    spare = [row(0, "Desert", a1, a2, t1, t2, "spare") for a1, a2 in itertools.product(animals[:12], repeat=2)
             for t1, t2 in itertools.product(textures, repeat=2)]
    assert len(pug.pair_labels(spare, "spare")) == 7392


def test_a_missing_or_malformed_labels_file_is_named(tmp_path):
    spec = {"kind": "pug", "variant": "spar", "root": str(tmp_path / "nowhere")}
    assert "does not exist" in pug.skip_reason("pug_data", spec) and pug.check("pug_data", spec) == []

    spec["root"] = str(tmp_path / "empty")
    (tmp_path / "empty").mkdir()
    assert pug.skip_reason("pug_data", spec) is None
    assert pug.check("pug_data", spec) == [f"datasets.pug_data.root: {tmp_path / 'empty' / 'labels.csv'} does not "
                                           "exist; a PUG:SPAR folder holds labels.csv"]

    columns = [c for c in SPAR_COLUMNS if c != "character2_texture"]
    path = write_download(tmp_path / "bad", "spar", spar_rows()[:2], columns=columns)
    spec["root"] = str(tmp_path / "bad")
    [error] = pug.check("pug_data", spec)
    assert str(path) in error and "['character2_texture']" in error
    with pytest.raises(ValueError, match=r"no column\(s\) \['character2_texture'\]") as raised:
        build(tmp_path / "bad", "spar", analyses=[])
    assert str(raised.value).startswith(str(path))


def test_an_empty_cell_or_a_missing_image_is_named(tmp_path):
    rows = spar_rows()[:3]
    rows[1]["character_texture"] = ""
    path = write_download(tmp_path / "spar", "spar", rows)
    with pytest.raises(ValueError, match="line 3: column 'character_texture' is empty") as raised:
        build(tmp_path / "spar", "spar", analyses=[])
    assert str(raised.value).startswith(str(path))

    rows = spar_rows()[:3]
    write_download(tmp_path / "gaps", "spar", rows)
    (tmp_path / "gaps" / rows[2]["filename"]).unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of the 3 images .* missing, e\.g\. .*img_0002\.png"):
        build(tmp_path / "gaps", "spar", analyses=[])

    write_download(tmp_path / "none", "spar", spar_rows()[-4:])
    with pytest.raises(ValueError, match="no row has two different named animals"):
        build(tmp_path / "none", "spar", analyses=[])


def test_the_workflow_plans_paper_a_on_a_pug_download_and_builds_its_items(tmp_path):
    """Snakemake skips a PUG dataset whose folder is absent (saying why), and for one that is there plans paper
    A's analyses and builds its item table with rule `items`, the labels file as the rule's input."""
    from conftest import TINY, snakemake, write_config
    from workflow_scripts.datasets.items import read_items

    animals = ["Elephant", "Goldfish", "Polar_Bear", "Camel"]
    rows = [row(i, world, a1, a2, t1, t2) for i, (world, (a1, a2), (t1, t2)) in enumerate(itertools.product(
        ("Desert", "Arena"), itertools.permutations(animals, 2), (("Blue", "Red"), ("Grass", "Stone"))))]
    write_download(tmp_path / "PUG_SPAR", "spar", rows)
    config = write_config(tmp_path, {**TINY, "datasets": {
        "spar": {"kind": "pug", "variant": "spar", "root": "PUG_SPAR"},
        "spare": {"kind": "pug", "variant": "spare", "root": "PUG_SPARE"}}})
    plan = snakemake("-n", "--cores", 1, "--directory", tmp_path, "--configfile", config)
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert "dataset 'spare' skipped: its folder PUG_SPARE (datasets.spare.root) does not exist" in plan.stdout + plan.stderr
    for target in ("results/spar/items.parquet", "results/spar/embeddings/rand/images.parquet",
                   "results/spar/probes/rand", "results/spar/labclip/rand/HNB.safetensors",
                   "results/spar/binding/rand"):
        assert target in plan.stdout, target
    assert "results/spare/" not in plan.stdout and "render_shard" not in plan.stdout

    built = snakemake("results/spar/items.parquet", "--cores", 1, "--directory", tmp_path, "--configfile", config)
    assert built.returncode == 0, built.stderr[-3000:]
    items, vocabulary = read_items(tmp_path / "results/spar/items.parquet")
    assert len(items) == len(rows) and vocabulary.objects == ("camel", "elephant", "goldfish", "polar bear")
    rerun = snakemake("results/spar/items.parquet", "-n", "--cores", 1, "--directory", tmp_path,
                      "--configfile", config)
    assert "Nothing to be done" in rerun.stdout + rerun.stderr
    write_download(tmp_path / "PUG_SPAR", "spar", rows[:-1])  # other labels: the items are rebuilt
    rerun = snakemake("results/spar/items.parquet", "-n", "--cores", 1, "--directory", tmp_path,
                      "--configfile", config)
    assert "rule items" in rerun.stdout, rerun.stdout
