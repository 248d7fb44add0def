"""LAION (kind `laion`) on files written in the formats users have: LAION's metadata Parquet, and img2dataset's
output in its files layout and its webdataset (.tar) layout; malformed inputs named."""
import io
import json
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from workflow_scripts.config import dataset_errors
from workflow_scripts.datasets import laion
from workflow_scripts.datasets.build import build_items
from workflow_scripts.datasets.kind import ItemContext
from workflow_scripts.datasets.registry import BUILTIN_KINDS

# Captions whose largest object (by the image each gets in write_samples) is known: first, last, or not named.
CAPTIONS = ["A big dog next to a small cat", "A small cat beside a big dog", "A cat on a sofa",
            "Red car parked by a bicycle", "Free shipping on all orders"]


def write_metadata(folder, captions=CAPTIONS, files=2):
    """LAION-style metadata split over `files` Parquet files (URL, TEXT, WIDTH, HEIGHT, similarity)."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        rows = [(i, c) for i, c in enumerate(captions) if i % files == f]
        pq.write_table(pa.table({"URL": [f"http://example.com/{i}.jpg" for i, _ in rows],
                                 "TEXT": [c for _, c in rows], "WIDTH": [640] * len(rows), "HEIGHT": [480] * len(rows),
                                 "similarity": [0.3] * len(rows)}), folder / f"part-{f:05d}.parquet")
    return folder


def jpeg(index: int) -> bytes:
    """An image whose left half is one colour and right half another (the 'large' and 'small' objects)."""
    image = Image.new("RGB", (48, 32), (200, 40 * index % 255, 40))
    image.paste((30, 60, 200), (36, 8, 44, 16))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    return buffer.getvalue()


def samples(captions=CAPTIONS):
    """img2dataset's files per sample: key -> {suffix: bytes}."""
    return {f"00000{i:04d}": {".jpg": jpeg(i), ".txt": caption.encode(),
                              ".json": json.dumps({"url": f"http://example.com/{i}.jpg", "caption": caption,
                                                   "key": f"00000{i:04d}", "status": "success", "width": 48,
                                                   "height": 32, "similarity": 0.3}).encode()}
            for i, caption in enumerate(captions)}


def write_files_layout(folder, captions=CAPTIONS):
    shard = folder / "00000"
    shard.mkdir(parents=True)
    for key, files in samples(captions).items():
        for suffix, data in files.items():
            (shard / f"{key}{suffix}").write_bytes(data)
    pq.write_table(pa.table({"key": list(samples(captions)), "status": ["success"] * len(captions)}),
                   folder / "00000.parquet")
    (folder / "00000_stats.json").write_text(json.dumps({"count": len(captions), "successes": len(captions)}))
    return folder


def write_tar_layout(folder, captions=CAPTIONS):
    folder.mkdir(parents=True)
    with tarfile.open(folder / "00000.tar", "w") as archive:
        for key, files in samples(captions).items():
            for suffix, data in files.items():
                info = tarfile.TarInfo(f"{key}{suffix}")
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    pq.write_table(pa.table({"key": list(samples(captions))}), folder / "00000.parquet")
    return folder


def build(spec, tmp_path, seed=0):
    spec = dict(spec)
    errors = dataset_errors({"datasets": {"laion": spec}}, BUILTIN_KINDS)  # fills the schema's defaults
    assert errors == [], errors
    context = ItemContext(seed, (224, 224), laion.inputs("laion", spec), str(tmp_path / "results" / "laion"))
    return build_items("laion", spec, laion.KIND, context)[0].to_pylist()


def test_metadata_gives_text_only_items_with_their_urls(tmp_path):
    items = build({"kind": "laion", "metadata": str(write_metadata(tmp_path / "meta")), "subset": None}, tmp_path)
    assert sorted(i["caption"] for i in items) == sorted(CAPTIONS)
    assert all(i["image"] is None and i["split"] == "test" for i in items)
    by_caption = {i["caption"]: i["url"] for i in items}
    assert by_caption[CAPTIONS[3]] == "http://example.com/3.jpg"


def test_a_subset_is_drawn_with_the_seed(tmp_path):
    spec = {"kind": "laion", "metadata": str(write_metadata(tmp_path / "meta")), "subset": 3}
    first, again = (build(spec, tmp_path, 0) for _ in range(2))
    assert first == again
    assert len({i["caption"] for i in first}) == 3 and {i["caption"] for i in first} < set(CAPTIONS)


def test_img2dataset_files_layout_reads_images_captions_and_urls(tmp_path):
    items = build({"kind": "laion", "images": str(write_files_layout(tmp_path / "dl")), "subset": None}, tmp_path)
    assert [i["caption"] for i in items] == CAPTIONS  # in key order
    assert all(i["image"].endswith(".jpg") and (tmp_path / "dl" / "00000").as_posix() in i["image"] for i in items)
    assert items[1]["url"] == "http://example.com/1.jpg" and items[1]["item_id"] == "laion-000000001"


def test_img2dataset_tar_layout_extracts_the_drawn_images(tmp_path):
    items = build({"kind": "laion", "images": str(write_tar_layout(tmp_path / "dl")), "subset": 2}, tmp_path)
    assert len(items) == 2
    for item in items:
        path = tmp_path / "results" / "laion" / item["image"]
        assert not item["image"].startswith("/") and path.is_file()
        assert Image.open(path).size == (48, 32)
        assert item["caption"] == CAPTIONS[int(item["item_id"][-4:])]
    assert len(list((tmp_path / "results" / "laion" / "images").iterdir())) == 2  # only the drawn samples


def test_bad_laion_inputs_are_named(tmp_path):
    both = {"kind": "laion", "metadata": str(tmp_path), "images": str(tmp_path)}
    assert "give either metadata" in dataset_errors({"datasets": {"l": both}}, BUILTIN_KINDS)[0]
    meta = write_metadata(tmp_path / "meta", files=1)
    wrong = {"kind": "laion", "metadata": str(meta), "text_column": "caption"}
    error = dataset_errors({"datasets": {"l": wrong}}, BUILTIN_KINDS)[0]
    assert "part-00000.parquet has no column(s) ['caption']" in error and "datasets.l.metadata" in error
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.parquet").write_text("not parquet")
    error = dataset_errors({"datasets": {"l": {"kind": "laion", "metadata": str(tmp_path / "broken")}}}, BUILTIN_KINDS)
    assert "x.parquet is not a readable Parquet file" in error[0]
    (tmp_path / "empty").mkdir()
    error = dataset_errors({"datasets": {"l": {"kind": "laion", "images": str(tmp_path / "empty")}}}, BUILTIN_KINDS)
    assert "holds no img2dataset output" in error[0]
    folder = write_files_layout(tmp_path / "dl")
    (folder / "00000" / "000000002.txt").unlink()
    (folder / "00000" / "000000002.json").write_text("{not json")
    with pytest.raises(ValueError, match="000000002.json: not JSON"):
        build({"kind": "laion", "images": str(folder), "subset": None}, tmp_path)


def test_a_missing_laion_folder_skips_the_dataset(tmp_path):
    spec = {"kind": "laion", "metadata": str(tmp_path / "nowhere")}
    assert dataset_errors({"datasets": {"l": spec}}, BUILTIN_KINDS) == []
    assert "does not exist" in laion.skip_reason("l", spec)


def test_analyses_that_need_images_need_img2dataset_images(tmp_path):
    spec = {"kind": "laion", "metadata": str(write_metadata(tmp_path / "meta")), "analyses": ["mention_order", "ior"]}
    errors = dataset_errors({"datasets": {"l": spec}}, BUILTIN_KINDS)
    assert any("ior needs images, which this laion dataset does not have" in e for e in errors)
