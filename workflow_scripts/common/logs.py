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


def start_job(snakemake) -> logging.Logger:
    """The first call of every rule's script: log to the rule's log file and claim the job's outputs, so that an
    earlier attempt still running (its controller killed) can no longer publish them (files.py)."""
    from workflow_scripts.common.files import ATTEMPT, claim_outputs

    logger = log_to(snakemake.log[0])
    claim_outputs(snakemake.output)
    logger.info("attempt %s claims %s", ATTEMPT, ", ".join(map(str, snakemake.output)))
    return logger
