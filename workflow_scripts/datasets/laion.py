"""Dataset kind `laion`: LAION captions (and images) as users have them, for paper B's caption-order statistics.

Two sources, one per dataset entry:
- `metadata`: LAION's metadata, a Parquet file or a folder of Parquet files with at least a URL and a caption
  column (`url_column`, `text_column`: LAION's URL and TEXT; WIDTH, HEIGHT, similarity... are not needed). Text
  only: the statistic's text part (objects per caption, mention order) runs without images.
- `images`: a folder written by img2dataset (https://github.com/rom1504/img2dataset), either `--output_format files`
  (numbered shard folders 00000/, 00001/... of <key>.jpg with <key>.txt and <key>.json beside) or
  `--output_format webdataset` (00000.tar, ... holding the same three files per sample). A sample's caption is its
  .txt (img2dataset's copy of the caption column), its url the .json's `url`. Images inside .tar shards are
  extracted into the dataset's results folder (images/<key>.<ext>) for the drawn samples only.
`subset` items are drawn with the config's seed (null: all), in file order. Every item is in split "test": the
statistic describes the whole sample.
"""
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from workflow_scripts.common.parquet import read_table
from workflow_scripts.datasets.items import Vocabulary, item_table
from workflow_scripts.datasets.kind import DatasetKind, decode_text, read_text, schema_block
from workflow_scripts.datasets.splits import dataset_rng

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
VOCABULARY = Vocabulary(objects=(), phrase=None)  # free-text captions


def parquet_files(path) -> list[Path]:
    """The Parquet file at `path`, or the Parquet files in the folder `path`, in name order."""
    path = Path(path).expanduser()
    return [path] if path.is_file() else sorted(path.glob("*.parquet"))


def metadata_rows(files, url_column: str, text_column: str, subset: int | None, rng) -> list[dict]:
    """{key, url, caption} of `subset` rows drawn without replacement over all files (all rows when None),
    reading each file's two columns once; rows without a caption are left out."""
    counts = [pq.ParquetFile(path).metadata.num_rows for path in files]
    chosen = draw(sum(counts), subset, rng)
    rows, start = [], 0
    for path, count in zip(files, counts):
        local = chosen[(chosen >= start) & (chosen < start + count)] - start
        start += count
        if not len(local):
            continue
        table = read_table(path, [url_column, text_column], what=f"LAION metadata with columns {url_column} and "
                                                                 f"{text_column}").take(local)
        for row, url, text in zip(local, table.column(url_column).to_pylist(), table.column(text_column).to_pylist()):
            if isinstance(text, str) and text.strip():
                rows.append({"key": f"{path.stem}-{row:09d}", "url": url, "caption": text.strip()})
    return rows


def _sample_text(caption: str | None, info: str | None, where: str) -> tuple[str, str | None]:
    """(caption, url) of one img2dataset sample from its .txt and .json texts; ValueError naming `where`."""
    url = None
    if info is not None:
        try:
            record = json.loads(info)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}.json: not JSON ({error}); img2dataset writes one object per sample") from error
        url = record.get("url")
        caption = caption if caption is not None else record.get("caption")
    if caption is None:
        raise ValueError(f"{where}: no .txt caption beside the image (and no 'caption' in its .json); img2dataset "
                         "writes one when run with --caption_col")
    return caption.strip(), url


def folder_samples(root: Path) -> list[dict]:
    """{key, image (absolute path), caption, url} of every image in an img2dataset `files` output folder."""
    samples = []
    for image in sorted(p for p in root.glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES):
        text, info = image.with_suffix(".txt"), image.with_suffix(".json")
        caption, url = _sample_text(read_text(text) if text.is_file() else None,
                                    read_text(info) if info.is_file() else None,
                                    str(image.with_suffix("")))
        samples.append({"key": image.stem, "image": str(image.resolve()), "caption": caption, "url": url})
    return samples


def tar_members(root: Path) -> dict[str, dict]:
    """{key: {suffix: (tar path, member name)}} of every sample in an img2dataset `webdataset` output folder."""
    samples = {}
    for shard in sorted(root.glob("*.tar")):
        try:
            with tarfile.open(shard) as archive:
                names = archive.getnames()
        except tarfile.TarError as error:
            raise ValueError(f"{shard}: not a readable tar file ({error}); expected an img2dataset webdataset shard") \
                from error
        for name in names:
            key, dot, suffix = Path(name).name.partition(".")
            if dot:
                samples.setdefault(key, {})["." + suffix.lower()] = (shard, name)
    return {key: members for key, members in samples.items() if any(s in members for s in IMAGE_SUFFIXES)}


def tar_samples(members: dict[str, dict], keys, folder: Path) -> list[dict]:
    """{key, image (relative to the dataset's results folder), caption, url} of the samples `keys`, their images
    extracted into `folder`/images/."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    samples, archives = [], {}
    try:
        for key in keys:
            files = members[key]

            def read(suffix):
                if suffix not in files:
                    return None
                shard, name = files[suffix]
                archive = archives.setdefault(shard, tarfile.open(shard))
                return archive.extractfile(name).read()

            suffix = next(s for s in IMAGE_SUFFIXES if s in files)
            image = f"images/{key}{suffix}"
            (folder / image).write_bytes(read(suffix))
            text, info = read(".txt"), read(".json")
            where = f"{files[suffix][0]}:{key}"
            caption, url = _sample_text(decode_text(text, where + ".txt") if text is not None else None,
                                        decode_text(info, where + ".json") if info is not None else None, where)
            samples.append({"key": key, "image": image, "caption": caption, "url": url})
    finally:
        for archive in archives.values():
            archive.close()
    return samples


def draw(count: int, subset: int | None, rng) -> np.ndarray:
    """Sorted indices of `subset` of `count` things drawn without replacement (all when None or more)."""
    if subset is None or subset >= count:
        return np.arange(count)
    return np.sort(rng.choice(count, subset, replace=False))


def items(dataset: str, spec: dict, context):
    rng = dataset_rng(context.seed, dataset)
    if spec.get("metadata"):
        files = parquet_files(spec["metadata"])
        rows = metadata_rows(files, spec["url_column"], spec["text_column"], spec["subset"], rng)
        samples = [{**row, "image": None} for row in rows]
        source = f"datasets.{dataset}.metadata ({spec['metadata']})"
    else:
        root = Path(spec["images"]).expanduser()
        members = tar_members(root)
        if members:
            keys = sorted(members)
            samples = tar_samples(members, [keys[i] for i in draw(len(keys), spec["subset"], rng)],
                                  Path(context.folder))
        else:
            found = folder_samples(root)
            samples = [found[i] for i in draw(len(found), spec["subset"], rng)]
        source = f"datasets.{dataset}.images ({root})"
    if not samples:
        raise ValueError(f"{source}: no captioned samples found")
    rows = [{"item_id": f"{dataset}-{sample['key']}", "dataset": dataset, "split": "test",
             "caption": sample["caption"], "negative_captions": [], "image": sample["image"], "url": sample["url"]}
            for sample in samples]
    return item_table(rows), VOCABULARY


def has_images(dataset: str, spec: dict) -> bool:
    return bool(spec.get("images"))


def inputs(dataset: str, spec: dict) -> dict:
    """The metadata files, tracked by Snakemake (an img2dataset folder's many files are not: README)."""
    return {f"metadata_{k}": str(path) for k, path in enumerate(parquet_files(spec["metadata"]))} \
        if spec.get("metadata") else {}


def source_path(spec: dict) -> Path:
    return Path(spec.get("metadata") or spec["images"]).expanduser()


def skip_reason(dataset: str, spec: dict) -> str | None:
    if not (spec.get("metadata") or spec.get("images")) or source_path(spec).exists():
        return None
    key = "metadata" if spec.get("metadata") else "images"
    return (f"its {key} {source_path(spec)} (datasets.{dataset}.{key}) does not exist, so none of its targets are "
            "requested. Put LAION's metadata Parquet files or img2dataset's output there (README, 'LAION').")


def check(dataset: str, spec: dict) -> list[str]:
    if bool(spec.get("metadata")) == bool(spec.get("images")):
        return [f"datasets.{dataset}: give either metadata (LAION Parquet, text only) or images (an img2dataset "
                "output folder), one per dataset entry"]
    if not source_path(spec).exists():
        return []  # skipped, and skip_reason says why
    if spec.get("metadata"):
        files = parquet_files(spec["metadata"])
        if not files:
            return [f"datasets.{dataset}.metadata: {spec['metadata']} holds no .parquet file"]
        errors = []
        for path in files:
            try:
                names = pq.read_schema(path).names
            except Exception as error:  # pyarrow raises several kinds for a file that is not Parquet
                errors.append(f"datasets.{dataset}.metadata: {path} is not a readable Parquet file ({error})")
                continue
            missing = [c for c in (spec["url_column"], spec["text_column"]) if c not in names]
            if missing:
                errors.append(f"datasets.{dataset}.metadata: {path} has no column(s) {missing} (url_column, "
                              f"text_column); its columns are {names}")
        return errors
    root = source_path(spec)
    if not root.is_dir() or not (any(root.glob("*.tar")) or any(p.suffix.lower() in IMAGE_SUFFIXES
                                                                for p in root.glob("*/*"))):
        return [f"datasets.{dataset}.images: {root} holds no img2dataset output (shard folders 00000/ of images, or "
                ".tar shards)"]
    return []


KIND = DatasetKind(name="laion", config=schema_block("laion"), items=items, rendered=False,
                   analyses=("mention_order",), has_images=has_images, inputs=inputs, skip_reason=skip_reason,
                   check=check)
