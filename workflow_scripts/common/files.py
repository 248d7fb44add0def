"""Small file helpers shared by the rules' scripts (no third-party imports)."""
import hashlib
import os
from pathlib import Path


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomically(path, write) -> None:
    """Call write(temporary path), then give the result its final name: a half-written file never has it."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        write(str(partial))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
