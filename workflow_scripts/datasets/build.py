"""Rule `items`: one dataset's item table (results/<dataset>/items.parquet), made by its kind's item builder
(or reference builder) and checked against the contract (items.py) before it is written."""
import sys
from collections import Counter
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

from workflow_scripts.datasets.items import check_items, write_items
from workflow_scripts.datasets.kind import ItemContext
from workflow_scripts.datasets.registry import dataset_kinds


def build_items(dataset: str, spec: dict, kind, context: ItemContext, references: bool = False):
    """(item table, vocabulary) of a dataset, or of its references; ValueError when the kind's table breaks
    the contract."""
    make = kind.references if references else kind.items
    table, vocabulary = make(dataset, spec, context)
    check_items(table, f"kind {kind.name!r}, dataset {dataset!r}", rendered=kind.rendered)
    return table, vocabulary


def main(snakemake) -> None:
    from workflow_scripts.common.logs import log_to

    logger = log_to(snakemake.log[0])
    dataset, spec = snakemake.wildcards.dataset, snakemake.params.spec
    kind = dataset_kinds(snakemake.params.kind_modules)[spec["kind"]]
    width, height = snakemake.params.resolution
    context = ItemContext(snakemake.params.seed, (width, height), dict(snakemake.input.items()))
    table, vocabulary = build_items(dataset, spec, kind, context, snakemake.params.references_of is not None)
    provenance = {"dataset": dataset, "spec": spec, "resolution": [width, height], "seed": snakemake.params.seed}
    if snakemake.params.references_of is not None:
        provenance["references_of"] = snakemake.params.references_of
    write_items(table, vocabulary, snakemake.output.item_table, provenance)
    logger.info("%s (%s): %d items, splits %s", dataset, kind.name, table.num_rows,
                dict(Counter(table.column("split").to_pylist())))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
