"""Cosine similarity and the preference scores built on it, shared by the analyses."""
import numpy as np


def normalise(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def rowwise_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (normalise(a) * normalise(b)).sum(axis=-1)


def preference(better: np.ndarray, worse: np.ndarray) -> np.ndarray:
    """1 where `better` wins, 0 where it loses, 0.5 for a tie (what a coin flip would score)."""
    return (better > worse) + 0.5 * (better == worse)


def image_to_text_preference(image, caption, negative) -> np.ndarray:
    """Per image: 1 when it is more similar (cosine) to its caption than to the negative caption, 0 when less,
    0.5 for a tie."""
    return preference(rowwise_cosine(image, caption), rowwise_cosine(image, negative))


def image_to_text_accuracy(image, caption, negative) -> float:
    """Share of images more similar (cosine) to their caption than to its attribute-swapped version."""
    return float(image_to_text_preference(image, caption, negative).mean())


def modality_gap(image, text) -> float:
    """Distance between the centroids of the L2-normalised image and text embeddings."""
    return float(np.linalg.norm(normalise(image).mean(axis=0) - normalise(text).mean(axis=0)))
