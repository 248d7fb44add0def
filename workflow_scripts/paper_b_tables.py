"""Paper B's tables: text-based object retrieval of every model, as CSV and Markdown, with the paper's
reference shares beside ours."""
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

import numpy as np
import pandas as pd

from workflow_scripts import reference
from workflow_scripts.paper_a_tables import RANDOM_NOTE, read_results
from workflow_scripts.tables import markdown_table


def tor_table(tor: pd.DataFrame) -> pd.DataFrame:
    """TOR rows with the reference shares on the rows the paper reports (4 objects, whole short captions)."""
    table = tor.copy()
    reported = (table["n_objects"] == 4) & (table["method"] == "caption") & (table["template"] == "short")
    for position, share in reference.TOR_FIRST_RETRIEVED_SHARE.items():
        table[f"reference_first_retrieved_share_{position}"] = np.where(reported, share, np.nan)
    table["reference_source"] = np.where(reported, reference.PAPER_B_SOURCE, "")
    return table


def tor_markdown(table: pd.DataFrame) -> str:
    shares = [c for c in table.columns if c.startswith("first_retrieved_share_")]
    columns = (["model_id", "weights", "template", "n_objects", "method", "top_n_accuracy"] + shares
               + ["reference_first_retrieved_share_1", "reference_first_retrieved_share_4"])
    return ("# Text-based object retrieval\n\nShare of captions whose most similar single-object text embedding "
            "is the object mentioned at each position (a first-mention bias puts mass on position 1). "
            "'split-<how>' embeds each object alone and aggregates (the mitigation). References: "
            f"{reference.PAPER_B_SOURCE}.\n{RANDOM_NOTE}\n\n" + markdown_table(table.to_dict("records"), columns))


def main(snakemake) -> None:
    from workflow_scripts.rule_logging import log_to

    logger = log_to(snakemake.log[0])
    table = tor_table(read_results(snakemake.input.tor))
    table.to_csv(snakemake.output.tor_csv, index=False)
    Path(snakemake.output.tor_md).write_text(tor_markdown(table))
    logger.info("%d TOR rows", len(table))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
