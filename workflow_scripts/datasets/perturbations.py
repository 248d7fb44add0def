"""Caption perturbations as ARO's text shuffler makes them (vision-language-models-are-bows, perturbations.py),
with spaCy's English pipeline as the part-of-speech tagger, and the caption cleaning of BLIP's `pre_caption`
that ARO's COCO- and Flickr-Order sets apply.

- nouns_and_adjectives: the nouns (Penn tags NN, NNS, NNP, NNPS) permuted among the nouns' positions and the
  adjectives (JJ, JJR, JJS) among theirs; also paper A's COCO hard negatives (after cutting to 40 words).
- all_but_nouns_and_adjectives: every other token permuted among the other tokens' positions.
- within_trigrams: the tokens cut into consecutive trigrams, each trigram's tokens permuted.
- trigrams: the trigrams permuted.
Tokens are joined by single spaces, as ARO joins them. One departure: ARO tokenises the two trigram shuffles with
NLTK's word_tokenize, which needs a run-time download; here spaCy's tokens serve all four (they differ from NLTK's
on contractions and a few punctuation cases). Each perturbation draws from the numpy Generator it is given, so a
caption's perturbation depends on its seed only (not on the order of the captions or on other captions).
"""
import re
from functools import cache

import numpy as np

from workflow_scripts.common.tagger import ADJECTIVE_TAGS, NOUN_TAGS, TAGGER, load_pipeline

ORDER_PERTURBATIONS = ("nouns_and_adjectives", "all_but_nouns_and_adjectives", "within_trigrams", "trigrams")


@cache
def tagger(name: str = TAGGER):
    """The spaCy pipeline `name` with only what part-of-speech tags need (tok2vec, tagger, attribute_ruler)."""
    return load_pipeline(name, ["parser", "ner", "lemmatizer", "senter"], "the items rule's env, envs/scenes.yaml")


def iter_tags(captions, name: str = TAGGER, batch_size: int = 512):
    """(token text, Penn Treebank tag) per token of each caption, one caption at a time (COCO's captions need not
    be held tagged all at once), with a progress bar for long lists (about 800 short captions a second on one core
    here: COCO's 616k captions take some 13 minutes)."""
    from tqdm import tqdm

    captions = list(captions)
    docs = tagger(name).pipe(captions, batch_size=batch_size)
    for doc in tqdm(docs, total=len(captions), desc="tagging captions", unit="caption", mininterval=10,
                    disable=len(captions) < 10_000):
        yield [(token.text, token.tag_) for token in doc]


def tag(captions, name: str = TAGGER, batch_size: int = 512) -> list[list[tuple[str, str]]]:
    """iter_tags as a list."""
    return list(iter_tags(captions, name, batch_size))


def _permute_where(words: np.ndarray, mask, rng) -> None:
    index = np.flatnonzero(mask)
    words[index] = words[rng.permutation(index)]


def nouns_and_adjectives(tokens, rng) -> str:
    words, tags = np.array([t for t, _ in tokens], dtype=object), [g for _, g in tokens]
    _permute_where(words, [g in NOUN_TAGS for g in tags], rng)
    _permute_where(words, [g in ADJECTIVE_TAGS for g in tags], rng)
    return " ".join(words)


def all_but_nouns_and_adjectives(tokens, rng) -> str:
    words = np.array([t for t, _ in tokens], dtype=object)
    _permute_where(words, [g not in NOUN_TAGS | ADJECTIVE_TAGS for _, g in tokens], rng)
    return " ".join(words)


def _trigrams(tokens) -> list[list[str]]:
    words = [t for t, _ in tokens]
    return [words[i:i + 3] for i in range(0, len(words), 3)]


def within_trigrams(tokens, rng) -> str:
    return " ".join(" ".join(np.array(trigram, dtype=object)[rng.permutation(len(trigram))])
                    for trigram in _trigrams(tokens))


def trigrams(tokens, rng) -> str:
    grams = _trigrams(tokens)
    return " ".join(" ".join(grams[i]) for i in rng.permutation(len(grams)))


PERTURBATIONS = {"nouns_and_adjectives": nouns_and_adjectives,
                 "all_but_nouns_and_adjectives": all_but_nouns_and_adjectives,
                 "within_trigrams": within_trigrams, "trigrams": trigrams}


def seeded(*seed) -> np.random.Generator:
    """The Generator of one caption's perturbation: seeded by (config seed, draw, caption index, ...)."""
    return np.random.default_rng([int(s) for s in seed])


def cut_words(caption: str, max_words: int) -> str:
    """The caption's first `max_words` whitespace-separated words."""
    return " ".join(caption.split()[:max_words])


def pre_caption(caption: str, max_words: int) -> str:
    """BLIP's caption cleaning, as ARO's Order sets apply it to the caption and to each perturbation: lower case,
    the characters .!"()*#:;~ replaced by spaces, runs of spaces collapsed, cut to `max_words` words."""
    caption = re.sub(r"([.!\"()*#:;~])", " ", caption.lower())
    caption = re.sub(r"\s{2,}", " ", caption).rstrip("\n").strip(" ")
    return " ".join(caption.split(" ")[:max_words])
