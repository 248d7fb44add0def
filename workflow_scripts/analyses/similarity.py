"""Cosine similarity, the preference scores built on it, and the two binding-accuracy protocols, shared by the
analyses.

Binding accuracy asks, per image, whether its caption scores above its hard negative (the attribute-swapped
caption). Two protocols:

- `authors`, as the authors' code runs it. On CLEVR (dataset kind `clevr`): score = L2-normalised image
  embedding . raw (unnormalised) text embedding, a tie counts as correct (positive >= negative), and scenes whose
  negative binds exactly as the caption (two equal colours: the swap changes nothing) are left out. On every other
  kind (the authors' PUG rule): cosine, a tie counts as wrong (strict >), nothing left out.
- `clean`: cosine, a tie counts half (a coin flip), items without a distinct negative (one that binds differently
  from the caption) left out.
"""
from dataclasses import dataclass

import numpy as np

PROTOCOLS = ("authors", "clean")
SIMILARITIES = ("cosine", "image_dot_raw_text")


def normalise(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def rowwise_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (normalise(a) * normalise(b)).sum(axis=-1)


def image_dot_raw_text(image: np.ndarray, text: np.ndarray) -> np.ndarray:
    """Row-wise L2-normalised image . raw text: the cosine times the text's norm (the authors' CLEVR score)."""
    return (normalise(image) * np.asarray(text, dtype=np.float64)).sum(axis=-1)


def text_side(text: np.ndarray, similarity: str) -> np.ndarray:
    """The text embeddings as `similarity` scores them against L2-normalised images: L2-normalised for
    "cosine", raw for "image_dot_raw_text"."""
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity {similarity!r}; expected one of {SIMILARITIES}")
    return normalise(text) if similarity == "cosine" else np.asarray(text, dtype=np.float64)


def preference(better: np.ndarray, worse: np.ndarray, tie: float = 0.5) -> np.ndarray:
    """1 where `better` wins, 0 where it loses, `tie` for a tie (default 0.5, what a coin flip would score)."""
    return (better > worse) + tie * (better == worse)


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


def has_distinct_negative(items: list[dict], vocabulary) -> np.ndarray:
    """Per item: whether its first negative caption binds differently from its caption (the vocabulary's grammar
    says which attribute goes with which object; free-text captions: whether the texts differ). False e.g. for a
    CLEVR scene with two equal colours, whose attribute swap is the caption itself."""
    if vocabulary.phrase is None:
        return np.array([s["negative_captions"][0] != s["caption"] for s in items], dtype=bool)
    return np.array([vocabulary.binding(s["negative_captions"][0]) != vocabulary.binding(s["caption"])
                     for s in items], dtype=bool)


@dataclass(frozen=True)
class BindingRule:
    """How binding accuracy scores an item: the similarity, what a tie scores, and which items are left out."""

    protocol: str  # "authors" or "clean"
    similarity: str  # "cosine" or "image_dot_raw_text"
    tie: float  # what a tie scores: 1 (correct), 0 (wrong) or 0.5
    exclude_same_binding: bool  # leave out items whose negative binds as the caption

    def score(self, image, text) -> np.ndarray:
        """Per row: the similarity of image i and text i."""
        return (normalise(image) * text_side(text, self.similarity)).sum(axis=-1)

    @property
    def ties(self) -> str:
        return {1.0: "correct", 0.0: "wrong", 0.5: "half"}[self.tie]

    def scored(self, distinct) -> np.ndarray:
        """Mask of the items this rule scores, from has_distinct_negative's mask `distinct`."""
        distinct = np.asarray(distinct, bool)
        return distinct if self.exclude_same_binding else np.ones(len(distinct), bool)


AUTHORS_CLEVR = BindingRule("authors", "image_dot_raw_text", 1.0, True)
AUTHORS_OTHER = BindingRule("authors", "cosine", 0.0, False)  # the authors' PUG rule
CLEAN = BindingRule("clean", "cosine", 0.5, True)
AUTHORS_RULES = {"clevr": AUTHORS_CLEVR}  # by dataset kind; every other kind gets AUTHORS_OTHER


def binding_rule(protocol: str, kind: str) -> BindingRule:
    """The rule of `protocol` on a dataset of `kind` (the authors' rule depends on the kind, the clean one not)."""
    if protocol == "clean":
        return CLEAN
    if protocol == "authors":
        return AUTHORS_RULES.get(kind, AUTHORS_OTHER)
    raise ValueError(f"unknown protocol {protocol!r}: expected one of {PROTOCOLS}")


def binding_accuracy(rule: BindingRule, image, caption, negative, distinct) -> tuple[float, int]:
    """(accuracy, number of items scored) under `rule`; `distinct` is has_distinct_negative's mask; NaN when no
    item is scored."""
    scored = rule.scored(distinct)
    score = preference(rule.score(image, caption), rule.score(image, negative), rule.tie)
    n = int(scored.sum())
    return (float(score[scored].mean()) if n else float("nan")), n


def recall_at_k(image, candidates, correct, ks=(1, 5, 10), similarity: str = "cosine",
                tie: float = 0.5) -> dict[int, float]:
    """Image-to-text Recall@k: per image, rank every candidate text by `similarity` ("cosine" or
    "image_dot_raw_text") and ask whether its own caption (`correct[i]`, a row of `candidates`) is among the k
    best. A tie with the own caption: tie 1 puts the own caption first, tie 0 last, tie 0.5 breaks ties at random
    (the recall is then the probability of being in the top k). Mean over images, per k."""
    scores = normalise(np.asarray(image, dtype=np.float64)) @ text_side(np.asarray(candidates, np.float64),
                                                                           similarity).T
    own = scores[np.arange(len(image)), correct][:, None]
    above = (scores > own).sum(axis=1)
    ties = (scores == own).sum(axis=1) - 1  # other candidates tied with the own caption
    result = {}
    for k in ks:
        if tie == 1.0:
            hit = (above < k).astype(float)
        elif tie == 0.0:
            hit = (above + ties < k).astype(float)
        else:  # the own caption's position is uniform over above+1 .. above+ties+1
            hit = np.clip((k - above) / (ties + 1), 0, 1)
        result[k] = float(hit.mean())
    return result
