"""Seeded generators and group-wise train/val/test splits, shared by the generated dataset kinds."""
import zlib
from collections import Counter

import numpy as np


def dataset_rng(seed: int, dataset: str) -> np.random.Generator:
    """A generator that depends only on the global seed and the dataset's name."""
    return np.random.default_rng([seed, zlib.crc32(dataset.encode())])


def assign_splits(rng, groups: list, fractions: dict[str, float]) -> list[str]:
    """Split name per item such that items of one group share a split and the splits' sizes follow
    `fractions` as closely as whole groups allow (each group goes to the split furthest below target)."""
    sizes = Counter(groups)
    order = sorted(sizes)
    rng.shuffle(order)
    total = len(groups)
    filled = dict.fromkeys(fractions, 0)
    split_of = {}
    for group in order:
        name = max(fractions, key=lambda s: fractions[s] * total - filled[s])
        split_of[group] = name
        filled[name] += sizes[group]
    return [split_of[g] for g in groups]


def splits_per_count(rng, scenes: list[dict], counts, fractions: dict[str, float]) -> list[str]:
    """Split name per scene; pops each scene's "group". Each object count is split on its own, like a
    dataset of its own."""
    groups = [s.pop("group") for s in scenes]
    splits = [""] * len(scenes)
    for n in counts:
        members = [i for i, s in enumerate(scenes) if s["n_objects"] == n]
        for i, split in zip(members, assign_splits(rng, [groups[i] for i in members], fractions)):
            splits[i] = split
    return splits
