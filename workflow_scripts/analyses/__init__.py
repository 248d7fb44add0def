"""The registry of analyses: what each needs from a dataset, so that the config check can tell a user before any
job runs which analyses their datasets cannot feed. Each analysis is one module here with the `main` of its rule
(rules/analyses.smk); its outputs lie in results/<dataset>/<analysis>/<model id>/, or results/<dataset>/<analysis>/
for an analysis of the data alone (per_model False: mention_order, whose rules caption_objects and object_areas
run their own models, not CLIP; prompt_order, whose images come from a text-to-image model).

Analyses read the item table (workflow_scripts/datasets/items.py) and the embeddings, never a dataset module.
"""
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Analysis:
    needs_references: bool = False  # reads the single-object references "<dataset>-references"
    needs_images: bool = True  # reads image embeddings (tor alone reads only the vocabulary's names)
    needs_renders: bool = False  # reads the renderer's object masks (common/masks.py): rendered kinds only
    requires: tuple[str, ...] = ()  # analyses of the same dataset whose outputs it reads
    split_items: dict[str, int] = field(default_factory=dict)  # split -> the fewest items it can run on
    per_object_count: bool = False  # split_items is needed for each object count (probes fit one per count)
    per_model: bool = True  # runs for every configured CLIP (False: once per dataset, and needs no embeddings)


ANALYSES = {
    "probes": Analysis(split_items={"train": 1, "val": 1, "test": 1}, per_object_count=True),
    "labclip": Analysis(split_items={"train": 1, "val": 1}),
    "binding": Analysis(requires=("probes", "labclip"), split_items={"test": 1}),
    "tor": Analysis(needs_images=False),
    "ior": Analysis(needs_references=True),
    "matching": Analysis(),
    "compositional": Analysis(split_items={"test": 1}),
    "recall": Analysis(split_items={"test": 1}),
    "mention_order": Analysis(needs_images=False, per_model=False),
    "slot_classification": Analysis(split_items={"train": 1, "val": 1, "test": 1}),
    "attention": Analysis(needs_renders=True),
    "caption_tor": Analysis(needs_images=False),
    "prompt_order": Analysis(needs_images=False, per_model=False),
}


def split_shortfalls(analyses, counts: dict[int, dict[str, float]]) -> list[tuple]:
    """(analysis, split, n_objects or None for all items, items there, items needed) for every split that holds
    fewer items than an analysis in `analyses` needs; `counts` is {n_objects: {split: items}}."""
    short = []
    for name in analyses:
        analysis = ANALYSES[name]
        groups = ({n: by_split for n, by_split in counts.items()} if analysis.per_object_count
                  else {None: {split: sum(c.get(split, 0) for c in counts.values()) for split in analysis.split_items}})
        for n_objects, by_split in sorted(groups.items(), key=lambda group: group[0] or 0):
            for split, needed in analysis.split_items.items():
                if by_split.get(split, 0) < needed:
                    short.append((name, split, n_objects, by_split.get(split, 0), needed))
    return short
