"""Test helper: synthetic embeddings with a known answer: binding is linearly decodable inside each modality, but
invisible to cross-modal cosine similarity, which sees only a bag of words.

Every (color, shape) pair has a binding direction of its own in the image space and another, orthogonal
one in the text space; shapes and colours share bag-of-words directions across modalities. A caption and
its attribute-swapped version then have the same cosine with any image (up to noise), while a linear map
on text that sends each text binding direction to its image twin restores binding.
"""
import zlib

import numpy as np

from workflow_scripts.analyses.embedded import Embedded
from workflow_scripts.datasets.clevr import COLORS, SHAPES, VOCABULARY

PAIRS = [(c, s) for c in COLORS for s in SHAPES]


def _basis(dim: int, seed: int) -> dict:
    needed = len(SHAPES) + len(COLORS) + 2 * len(PAIRS)
    if dim < needed:
        raise ValueError(f"dim must be at least {needed}")
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    columns = iter(q.T)
    return {
        "shape": {s: next(columns) for s in SHAPES},
        "color": {c: next(columns) for c in COLORS},
        "image_binding": {p: next(columns) for p in PAIRS},
        "text_binding": {p: next(columns) for p in PAIRS},
    }


def _encode(pairs, basis, binding: str) -> np.ndarray:
    return sum(basis["shape"][s] + basis["color"][c] + basis[binding][(c, s)] for c, s in pairs)


def synthetic_embedded(scenes: list[dict], dim: int = 96, noise: float = 0.05, seed: int = 0) -> Embedded:
    """Embeddings for `scenes` (rows of a scene table). Image noise is drawn per scene; text noise is a
    fixed function of the text, as a deterministic text encoder's would be."""
    basis = _basis(dim, seed)
    rng = np.random.default_rng(seed + 1)

    def text(caption: str) -> np.ndarray:
        jitter = np.random.default_rng([seed, zlib.crc32(caption.encode())]).standard_normal(dim)
        return _encode(VOCABULARY.parse(caption), basis, "text_binding") + noise * jitter

    image = np.stack([
        _encode([(o["attribute"], o["object"]) for o in s["objects"]], basis, "image_binding") + noise * rng.standard_normal(dim)
        for s in scenes
    ])
    caption = np.stack([text(s["caption"]) for s in scenes])
    negative = np.stack([text(s["negative_captions"][0]) for s in scenes])
    return Embedded(scenes, image.astype(np.float32), caption.astype(np.float32), negative.astype(np.float32),
                    f"synthetic known-answer embeddings (dim {dim}, noise {noise}, seed {seed})", VOCABULARY)
