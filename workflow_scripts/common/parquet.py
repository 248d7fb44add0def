"""Parquet I/O shared by every stage: provenance in the file metadata, atomic writes, embedding columns."""

import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from workflow_scripts.common.files import write_atomically

PROVENANCE_KEY = b"clip_binding"
# How the provenance "weights" of a CLIP trained by this workflow begin (models/loading.py writes, summary/ reads)
TRAINED_HERE = "CLIP trained in this workflow on synthetic scenes"


def write_table(table: pa.Table, path, provenance: dict) -> None:
    """Write `table` to `path` with `provenance` as JSON in the schema metadata.

    The file appears under its final name only once it is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = dict(table.schema.metadata or {})
    metadata[PROVENANCE_KEY] = json.dumps(provenance, sort_keys=True).encode()
    write_atomically(path, lambda partial: pq.write_table(table.replace_schema_metadata(metadata), partial))


@contextmanager
def _reading(path, what: str):
    """Turn pyarrow's read errors into a ValueError naming the file, what it should hold and the way out."""
    try:
        yield
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{path}: no such file; expected {what}") from error
    except (pa.ArrowException, OSError) as error:
        raise ValueError(
            f"{path}: cannot read {what} from this Parquet file ({type(error).__name__}: {str(error).strip()}); "
            "it is damaged or not Parquet: if the workflow wrote it, delete it so that the rule that writes it runs "
            "again; if it is a file of yours, replace it with an intact copy"
        ) from error


def read_schema(path, what: str = "a Parquet table") -> pa.Schema:
    """The schema (with its metadata) of the Parquet file at `path`; ValueError naming the file when unreadable."""
    with _reading(path, what):
        return pq.read_schema(path)


def read_table(path, columns=None, what: str = "a Parquet table", **kwargs) -> pa.Table:
    """pq.read_table(path, columns, **kwargs), with a ValueError naming the file and `what` it should hold
    (e.g. "an item table") when the file is damaged or lacks one of `columns`."""
    with _reading(path, what):
        if columns is not None:
            names = pq.read_schema(path).names
            missing = [c for c in columns if c not in names]
            if missing:
                raise ValueError(f"{path}: no column(s) {missing} in this Parquet file, which should hold {what}; "
                                 f"its columns are {names}")
        return pq.read_table(path, columns=columns, **kwargs)


def read_provenance(path, what: str = "a workflow output with provenance") -> dict:
    """The provenance dictionary written by `write_table`."""
    metadata = read_schema(path, what).metadata or {}
    if PROVENANCE_KEY not in metadata:
        raise ValueError(f"{path}: no '{PROVENANCE_KEY.decode()}' provenance in the Parquet metadata")
    return json.loads(metadata[PROVENANCE_KEY])


def joint_precision(images: str, texts: str) -> str:
    """One label for the precision of an output computed from image and text embeddings of these precisions."""
    return images if images == texts else f"images {images}, texts {texts}"


def embedding_array(vectors: np.ndarray) -> pa.FixedSizeListArray:
    """An (n, d) float array as a fixed_size_list<float32>[d] column."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])


def embedding_matrix(column) -> np.ndarray:
    """The (n, d) float32 matrix held in a fixed_size_list<float32> column."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return column.values.to_numpy(zero_copy_only=False).reshape(len(column), column.type.list_size)
