"""Per-rule logging: a script run by Snakemake sends its log records, warnings, progress bars and
tracebacks to the rule's log file."""

import logging
import sys
from pathlib import Path


def log_to(path) -> logging.Logger:
    """Redirect stderr to `path` (appending) and return the workflow's logger writing there."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sys.stderr = open(path, "a", buffering=1)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True
    )
    logging.captureWarnings(True)
    return logging.getLogger("clip_binding")
