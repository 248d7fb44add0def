"""Small file helpers shared by the rules' scripts (no third-party imports).

Outputs are written by attempts. A job claims its outputs when it starts (`claim_outputs`), writes each under a
temporary name private to its attempt and publishes it under the final name only if its claim still stands: an
attempt that outlived its controller (a killed `snakemake`, a SLURM job whose controller was restarted) finds
that a later attempt has claimed the output and deletes what it wrote instead of mixing it into the newer output.
"""
import atexit
import fcntl
import hashlib
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".attempts.lock"  # one per output folder, held while claiming or publishing there
ATTEMPT = f"{uuid.uuid4().hex[:12]}-{os.getpid()}"  # this process's attempt at its job
_claimed: set[Path] = set()  # outputs this attempt has claimed and not yet published


class SupersededError(RuntimeError):
    """A later attempt at the same job has claimed the output this attempt was writing."""


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _claim_file(path: Path) -> Path:
    return path.with_name(f".{path.name}.attempt")


def temporary_path(path, attempt: str = ATTEMPT) -> Path:
    """Where `attempt` writes `path` before publishing it: a hidden sibling that keeps the suffix (matplotlib and
    others choose the format by it)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.tmp-{attempt}{path.suffix}")


@contextmanager
def _locked(path: Path):
    """Hold an exclusive lock on the folder of `path` while claiming or publishing it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / LOCK_NAME, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def claim(path) -> None:
    """Make this process's attempt the one allowed to publish `path`, and delete what earlier attempts left
    half-written there. Claims still unpublished when the process exits (its job failed) are withdrawn."""
    path = Path(os.path.abspath(path))
    with _locked(path):
        _claim_file(path).write_text(ATTEMPT)
        for stale in path.parent.glob(f".{path.stem}.tmp-*{path.suffix}"):
            if stale != temporary_path(path):
                _remove(stale)
    _claimed.add(path)


def claim_outputs(paths) -> None:
    """Claim every output of a job; called when the job starts, before any long computation."""
    for path in paths:
        claim(path)


def publish(partial, path) -> None:
    """Give the file or folder `partial` the final name `path` if this attempt's claim on `path` still stands;
    otherwise delete `partial` and raise SupersededError."""
    partial, path = Path(partial), Path(os.path.abspath(path))
    with _locked(path):
        claim_file = _claim_file(path)
        holder = claim_file.read_text() if claim_file.exists() else None
        if holder != ATTEMPT:
            _remove(partial)
            raise SupersededError(
                f"{path}: not published: a later attempt ({holder or 'one that has finished'}) claimed this output "
                f"after this one ({ATTEMPT}) started, so this attempt's result is discarded")
        if partial.is_dir() and path.exists():
            old = path.with_name(f".{path.stem}.old-{ATTEMPT}{path.suffix}")
            os.replace(path, old)
            os.replace(partial, path)
            _remove(old)
        else:
            os.replace(partial, path)
        claim_file.unlink()
    _claimed.discard(path)


def write_atomically(path, write) -> None:
    """Call write(temporary path) to write the file or folder `path`, then publish it: a half-written output
    never has the final name, and an attempt superseded by a later one never overwrites it. Claims `path` first
    unless this process claimed it when its job started."""
    path = Path(os.path.abspath(path))
    if path not in _claimed:
        claim(path)
    partial = temporary_path(path)
    try:
        write(str(partial))
        publish(partial, path)
    except BaseException as error:
        if not isinstance(error, SupersededError):
            release(path)
        raise
    finally:
        _remove(partial)


def release(path) -> None:
    """Withdraw this attempt's claim on `path` (its write failed): nothing holds the output until a later attempt
    claims it, and no earlier attempt can publish it."""
    path = Path(os.path.abspath(path))
    with _locked(path):
        claim_file = _claim_file(path)
        if claim_file.exists() and claim_file.read_text() == ATTEMPT:
            claim_file.unlink()
    _claimed.discard(path)


def _release_unpublished() -> None:
    for path in list(_claimed):
        release(path)


atexit.register(_release_unpublished)
