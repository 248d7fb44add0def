"""The registry of analyses: what each needs from a dataset, so that the config check can tell a user before any
job runs which analyses their datasets cannot feed. Each analysis is one module here with the `main` of its rule
(rules/analyses.smk); its outputs lie in results/<dataset>/<analysis>/<model id>/.

Analyses read the item table (workflow_scripts/datasets/items.py) and the embeddings, never a dataset module.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Analysis:
    needs_images: bool  # reads image embeddings
    needs_objects: bool = False  # reads the items' `objects` column
    needs_references: bool = False  # reads the single-object references "<dataset>-references"
    requires: tuple[str, ...] = ()  # analyses of the same dataset whose outputs it reads
    paper: str = ""


ANALYSES = {
    "probes": Analysis(needs_images=True, needs_objects=True, paper="A"),
    "labclip": Analysis(needs_images=True, paper="A"),
    "binding": Analysis(needs_images=True, requires=("probes", "labclip"), paper="A"),
    "tor": Analysis(needs_images=False, paper="B"),
    "ior": Analysis(needs_images=True, needs_objects=True, needs_references=True, paper="B"),
    "matching": Analysis(needs_images=True, needs_objects=True, paper="B"),
}
