"""Rule `items`: one dataset's item table (results/<dataset>/items.parquet), made by its kind's item builder
(or reference builder) and checked against the contract (items.py) before it is written."""
import sys
from collections import Counter
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

from workflow_scripts.analyses import split_shortfalls
from workflow_scripts.datasets.items import check_items, write_items
from workflow_scripts.datasets.kind import ItemContext
from workflow_scripts.datasets.registry import dataset_kinds


def build_items(dataset: str, spec: dict, kind, context: ItemContext, references: bool = False):
    """(item table, vocabulary) of a dataset, or of its references; ValueError when the kind's table breaks
    the contract, or leaves a split too small for one of the dataset's analyses."""
    make = kind.references if references else kind.items
    table, vocabulary = make(dataset, spec, context)
    check_items(table, f"kind {kind.name!r}, dataset {dataset!r}", rendered=kind.rendered)
    if not references:
        check_split_sizes(dataset, table, kind.analyses_of(spec))
    return table, vocabulary


def check_split_sizes(dataset: str, table, analyses) -> None:
    """ValueError naming each analysis that a split of the drawn items is too small for (the config check saw
    only the expected counts; splits are drawn in whole groups)."""
    splits = table.column("split").to_pylist()
    objects = table.column("n_objects").to_pylist() if "n_objects" in table.column_names else [0] * len(splits)
    counts = {}
    for n_objects, split in zip(objects, splits):
        counts.setdefault(n_objects, Counter())[split] += 1
    short = [f"{analysis} needs at least {needed} {split} item(s)"
             f"{f' of {n_objects} objects' if n_objects else ''} and has {have}"
             for analysis, split, n_objects, have, needed in split_shortfalls(analyses, counts)]
    if short:
        drawn = "; ".join(f"{n} objects: {dict(sorted(c.items()))}" if n else str(dict(sorted(c.items())))
                          for n, c in sorted(counts.items()))
        raise ValueError(f"dataset {dataset!r}: the drawn splits are too small: {', '.join(short)} (items per split, "
                         f"drawn in whole groups: {drawn}); plan more items or change datasets.{dataset}.splits")


def main(snakemake) -> None:
    from workflow_scripts.common.logs import start_job

    logger = start_job(snakemake)
    dataset, spec = snakemake.wildcards.dataset, snakemake.params.spec
    kind = dataset_kinds(snakemake.params.kind_modules)[spec["kind"]]
    width, height = snakemake.params.resolution
    context = ItemContext(snakemake.params.seed, (width, height), dict(snakemake.input.items()),
                          str(Path(snakemake.output.item_table).parent))
    table, vocabulary = build_items(dataset, spec, kind, context, snakemake.params.references_of is not None)
    provenance = {"dataset": dataset, "spec": spec, "resolution": [width, height], "seed": snakemake.params.seed}
    if snakemake.params.references_of is not None:
        provenance["references_of"] = snakemake.params.references_of
    write_items(table, vocabulary, snakemake.output.item_table, provenance)
    logger.info("%s (%s): %d items, splits %s", dataset, kind.name, table.num_rows,
                dict(Counter(table.column("split").to_pylist())))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
