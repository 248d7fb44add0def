"""The registry of analyses: what each needs from a dataset, so that the config check can tell a user before any
job runs which analyses their datasets cannot feed. Each analysis is one module here with the `main` of its rule
(rules/analyses.smk); its outputs lie in results/<dataset>/<analysis>/<model id>/.

Analyses read the item table (workflow_scripts/datasets/items.py) and the embeddings, never a dataset module.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Analysis:
    needs_references: bool = False  # reads the single-object references "<dataset>-references"
    needs_images: bool = True  # reads image embeddings (tor alone reads only the vocabulary's names)
    requires: tuple[str, ...] = ()  # analyses of the same dataset whose outputs it reads


ANALYSES = {
    "probes": Analysis(),
    "labclip": Analysis(),
    "binding": Analysis(requires=("probes", "labclip")),
    "tor": Analysis(needs_images=False),
    "ior": Analysis(needs_references=True),
    "matching": Analysis(),
}
