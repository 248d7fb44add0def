"""Inputs are checked as they are read (#11): a damaged Parquet file or PNG, or a PNG of the wrong size, fails
naming the file (and the item, and both sizes), also when the PNG is decoded in a DataLoader worker."""
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest
import torch
from PIL import Image

from workflow_scripts.analyses.embedded import load_embedded, load_images
from workflow_scripts.common.parquet import embedding_array, read_provenance, read_table, write_table
from workflow_scripts.datasets.clevr import VOCABULARY, generate_scenes
from workflow_scripts.datasets.items import read_items, read_vocabulary, write_items
from workflow_scripts.models.embed import embed_images, image_inputs

WIDTH, HEIGHT = 64, 48
SPEC = {"sampling": "distinct", "objects_per_scene": [2], "scenes_per_count": 4, "negatives_per_scene": 1,
        "shards": 2, "splits": {"train": 0.5, "val": 0.25, "test": 0.25}}
# The mean of each colour channel: a known-answer stand-in for CLIP's image encoder.
CHANNEL_MEANS = SimpleNamespace(encode_image=lambda batch: batch.mean(dim=(2, 3)))


def to_tensor(image):
    """(3, h, w) float tensor in [0, 1]; a module-level function, so that DataLoader workers can use it."""
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)


@pytest.fixture
def rendered(tmp_path):
    """A real item table of four rendered CLEVR scenes (written by the workflow's own writers) and a random PNG
    of the table's size for each item: (items path, item table, {item_id: png path})."""
    table = generate_scenes("clevr_binding", SPEC, WIDTH, HEIGHT, seed=0)
    items_path = tmp_path / "clevr_binding" / "items.parquet"
    write_items(table, VOCABULARY, items_path, {"dataset": "clevr_binding"})
    rng = np.random.default_rng(0)
    inputs = image_inputs(table, items_path)
    paths, ids = inputs["paths"], inputs["item_ids"]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(path)
    return items_path, table, dict(zip(ids, paths))


def embed(items_path, table, num_workers, rendered=True):
    inputs = image_inputs(table, items_path)
    rows = inputs.pop("rows")
    return embed_images(CHANNEL_MEANS, to_tensor, device="cpu", batch_size=2, num_workers=num_workers,
                        precision="fp32", rendered=rendered, **inputs)[rows]


def zero_middle(path):
    """Zero the middle third of a file's bytes, leaving its head and tail (a Parquet footer) intact."""
    data = bytearray(path.read_bytes())
    third = len(data) // 3
    data[third:2 * third] = bytes(third)
    path.write_bytes(bytes(data))


def cut_in_half(path):
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


@pytest.mark.parametrize("num_workers", [0, 1])
def test_intact_images_embed_to_their_channel_means(rendered, num_workers):
    items_path, table, files = rendered
    inputs = image_inputs(table, items_path)
    paths, ids, sizes = inputs["paths"], inputs["item_ids"], inputs["sizes"]
    assert ids == table.column("item_id").to_pylist() and sizes == [(WIDTH, HEIGHT)] * 4
    assert inputs["rows"] == [0, 1, 2, 3] and inputs["crops"] is None
    assert {path.parent.name for path in paths} == {"shard-000", "shard-001"}
    expected = np.stack([np.asarray(Image.open(p), dtype=np.float32).mean(axis=(0, 1)) / 255 for p in paths])
    np.testing.assert_allclose(embed(items_path, table, num_workers), expected, rtol=1e-5)


# Workers for the truncated case only: a failed worker iterator takes torch 5 s to collect (the error's traceback
# holds it), the decode check is the same code in every process.
@pytest.mark.parametrize("damage, cause, num_workers", [
    (cut_in_half, "image file is truncated", 0),
    (cut_in_half, "image file is truncated", 1),
    (lambda path: path.write_text("not a PNG"), "cannot identify image file", 0),
    (lambda path: path.unlink(), "No such file or directory", 0),
])
def test_an_undecodable_png_is_named_with_its_item(rendered, damage, cause, num_workers):
    items_path, table, files = rendered
    item_id = table.column("item_id")[2].as_py()
    damage(files[item_id])
    with pytest.raises(ValueError) as raised:
        embed(items_path, table, num_workers)
    message = str(raised.value)
    print(message)
    assert f"{files[item_id]}: cannot decode the image of item {item_id} (" in message
    assert cause in message
    assert f"delete its shard folder {files[item_id].parent} so that the workflow renders it again" in message
    if num_workers:
        assert "in DataLoader worker process" in message


@pytest.mark.parametrize("num_workers", [0, 1])
def test_a_png_of_the_wrong_size_is_named_with_both_sizes(rendered, num_workers):
    items_path, table, files = rendered
    item_id = table.column("item_id")[3].as_py()
    Image.new("RGB", (WIDTH + 1, HEIGHT), "red").save(files[item_id])
    with pytest.raises(ValueError) as raised:
        embed(items_path, table, num_workers)
    message = str(raised.value)
    print(message)
    assert (f"{files[item_id]}: the image of item {item_id} is {WIDTH + 1}x{HEIGHT} pixels, the item table says "
            f"{WIDTH}x{HEIGHT} (image_width x image_height)") in message


def test_a_wrong_image_of_a_dataset_on_disk_is_to_be_replaced_not_rerendered(rendered):
    items_path, table, files = rendered
    Image.new("RGB", (WIDTH + 1, HEIGHT), "red").save(files[table.column("item_id")[3].as_py()])
    with pytest.raises(ValueError) as raised:
        embed(items_path, table, 0, rendered=False)
    assert "replace it with an intact image of the size the item table records" in str(raised.value)
    assert "render_shard" not in str(raised.value)


def test_without_sizes_any_size_is_embedded(rendered):
    items_path, table, files = rendered
    Image.new("RGB", (WIDTH + 1, HEIGHT), "red").save(files[table.column("item_id")[3].as_py()])
    inputs = image_inputs(table.drop_columns(["image_width", "image_height"]), items_path)
    paths, ids, sizes = inputs["paths"], inputs["item_ids"], inputs["sizes"]
    assert sizes is None
    vectors = embed_images(CHANNEL_MEANS, to_tensor, paths, "cpu", 1, 0, "fp32", item_ids=ids)  # sizes differ
    np.testing.assert_allclose(vectors[3], [1, 0, 0])


def test_an_intact_item_table_reads_back(rendered):
    items_path, table, _ = rendered
    rows, vocabulary = read_items(items_path)
    assert rows == table.to_pylist() and vocabulary == VOCABULARY
    assert read_provenance(items_path, "an item table") == {"dataset": "clevr_binding"}


def test_an_item_table_with_a_zeroed_middle_is_named(rendered):
    items_path, _, _ = rendered
    zero_middle(items_path)
    # A small table's footer (schema, vocabulary, provenance) is most of the file: this damages both, as reading
    # only the metadata shows. Before #11 the error was a bare "Couldn't deserialize thrift" naming no file.
    for read in (read_items, read_vocabulary, lambda path: read_table(path, what="an item table")):
        with pytest.raises(ValueError) as raised:
            read(items_path)
        message = str(raised.value)
        print(message)
        assert message.startswith(f"{items_path}: cannot read an item table from this Parquet file (")
        assert "if the workflow wrote it, delete it so that the rule that writes it runs again" in message


def test_a_cut_parquet_file_is_named_when_its_metadata_is_read(rendered):
    items_path, _, _ = rendered
    cut_in_half(items_path)
    for read in (read_vocabulary, read_provenance):
        with pytest.raises(ValueError, match="magic bytes") as raised:
            read(items_path)
        assert str(raised.value).startswith(f"{items_path}: cannot read ")


def embeddings(tmp_path, table):
    """Image and text embedding files for the items: (images path, texts path)."""
    ids = table.column("item_id").to_pylist()
    images, texts = tmp_path / "images.parquet", tmp_path / "texts.parquet"
    vectors = np.arange(len(ids) * 4, dtype=np.float32).reshape(-1, 4)
    write_table(pa.table({"item_id": ids, "embedding": embedding_array(vectors)}), images,
                {"weights": "w", "precision": "fp16"})
    write_table(pa.table({"item_id": ids * 2, "role": ["caption"] * len(ids) + ["negative"] * len(ids),
                          "negative_index": [None] * len(ids) + [0] * len(ids),
                          "embedding": embedding_array(np.concatenate([vectors, -vectors]))}), texts,
                {"weights": "w", "precision": "fp32"})
    return images, texts, vectors


def test_damaged_or_incomplete_embeddings_are_named(rendered, tmp_path):
    items_path, table, _ = rendered
    images, texts, vectors = embeddings(tmp_path, table)
    data = load_embedded(items_path, images, texts)
    np.testing.assert_array_equal(data.image, vectors)
    np.testing.assert_array_equal(data.negative, -vectors)
    assert (data.weights, data.precision) == ("w", "images fp16, texts fp32")
    assert data.subset(np.ones(len(vectors), bool)).precision == data.with_text(-vectors, vectors).precision

    zero_middle(texts)
    with pytest.raises(ValueError) as raised:
        load_embedded(items_path, images, texts)
    assert str(raised.value).startswith(f"{texts}: cannot read text embeddings from this Parquet file (")

    write_table(pa.table({"item_id": table.column("item_id")}), images, {"weights": "w"})
    with pytest.raises(ValueError) as raised:
        load_images(items_path, images)
    message = str(raised.value)
    print(message)
    assert message == (f"{images}: no column(s) ['embedding'] in this Parquet file, which should hold image "
                       "embeddings; its columns are ['item_id']")


def test_a_missing_parquet_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'nope.parquet'}: no such file; expected an item table"):
        read_table(tmp_path / "nope.parquet", what="an item table")


def test_an_image_shared_by_items_is_embedded_once_and_each_crop_on_its_own(tmp_path):
    """Items that share an image file (COCO's captions, SugarCrepe's subsets) share one embedding; items with a
    crop_box (ARO's Visual Genome boxes) embed the box: a box over the red half gives red."""
    image = tmp_path / "split.png"
    pixels = np.zeros((10, 20, 3), np.uint8)
    pixels[:, :10, 0] = 255  # left half red, right half black
    Image.fromarray(pixels).save(image)
    table = pa.Table.from_pylist([
        {"item_id": "a", "image": str(image), "crop_box": None},
        {"item_id": "b", "image": str(image), "crop_box": None},
        {"item_id": "c", "image": str(image), "crop_box": [0.0, 0.0, 10.0, 10.0]},
        {"item_id": "d", "image": str(image), "crop_box": [0.0, 0.0, 10.0, 10.0]},
    ])
    inputs = image_inputs(table, tmp_path / "items.parquet")
    assert inputs["rows"] == [0, 0, 1, 1] and inputs["item_ids"] == ["a", "c"]
    assert inputs["crops"] == [None, [0.0, 0.0, 10.0, 10.0]]
    rows = inputs.pop("rows")
    vectors = embed_images(CHANNEL_MEANS, to_tensor, device="cpu", batch_size=1, num_workers=0, precision="fp32",
                           **inputs)[rows]  # batches of one: the crop is another size than the whole image
    np.testing.assert_allclose(vectors, [[0.5, 0, 0], [0.5, 0, 0], [1, 0, 0], [1, 0, 0]], atol=1e-6)


LATIN1 = '{"a": "caf\xe9"}'.encode("latin-1")  # valid JSON text, but byte 0xe9 is not UTF-8


@pytest.mark.parametrize("reader", ["sugarcrepe", "coco", "aro", "winoground", "laion"])
def test_a_dataset_file_that_is_not_utf8_is_named_with_its_first_bad_byte(tmp_path, reader):
    from workflow_scripts.datasets import aro, coco, laion, sugarcrepe, winoground

    path = tmp_path / "file.json"
    path.write_bytes(LATIN1)
    read = {"sugarcrepe": sugarcrepe.read_subset, "coco": coco.read_captions,
            "aro": lambda p: aro.vg_items("vg", {"benchmark": "vg_relation"}, p),
            "winoground": winoground.read_examples}.get(reader)
    if reader == "laion":  # an img2dataset folder: the caption .txt beside the image
        (tmp_path / "00000").mkdir()
        Image.new("RGB", (4, 4)).save(tmp_path / "00000/000000001.jpg")
        path = tmp_path / "00000/000000001.txt"
        path.write_bytes(LATIN1)
        read = lambda _: laion.folder_samples(tmp_path)  # noqa: E731
    with pytest.raises(ValueError, match=rf"{path}: not UTF-8 text \(byte 0xe9 at offset 10\)"):
        read(path)
