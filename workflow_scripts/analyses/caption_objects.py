"""Rule `caption_objects`: the objects each caption names, in the order it names them (paper B's caption-order
statistics, first step), by one of three methods:

- `lexicon` (deterministic): COCO's 80 categories with their plurals and common synonyms (object_lexicon.py), matched as
  whole words, longest form first ("hot dog" before "dog"), where spaCy tags the form's last word as a noun (so the
  colour in "an orange shirt" and the verb in "bear with me" are not objects). Each category counts once, at its
  first mention; its name is the COCO category, so ground-truth annotations can be matched to it.
- `noun_phrases` (deterministic): spaCy's noun chunks (en_core_web_sm's parser), each named by its head noun's
  lemma, pronouns left out; each head counts once, at its first mention; the phrase (the chunk without its
  determiners) is what a detector is asked to find.
- `llm` (the authors' way, sampled): an instruction-tuned LLM lists the objects (models/llm_objects.py, its
  settings recorded); each listed name is placed at its first whole-word occurrence in the caption, and names that
  do not occur in it are dropped (counted as `unplaced`).

Output per item: `objects`, a list of {name, phrase, start (character offset)} sorted by start.
"""
import re
import sys
from functools import cache
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import pyarrow as pa

from workflow_scripts.analyses.object_lexicon import lexicon
from workflow_scripts.common.tagger import NOUN_TAGS, TAGGER, load_pipeline

METHODS = ("lexicon", "noun_phrases", "llm")
OBJECTS_TYPE = pa.list_(pa.struct([("name", pa.string()), ("phrase", pa.string()), ("start", pa.int32())]))


@cache
def parser():
    """spaCy's English pipeline with the tagger, lemmatizer and parser (noun chunks need the parser)."""
    return load_pipeline(TAGGER, ["ner"], "the caption_objects rule's env, envs/caption_models.yaml")


def docs(captions):
    """spaCy documents of the captions, one at a time, with a progress bar for long lists."""
    from tqdm import tqdm

    captions = list(captions)
    return tqdm(parser().pipe(captions, batch_size=256), total=len(captions), desc="parsing captions",
                unit="caption", mininterval=10, disable=len(captions) < 10_000)


def first_mentions(found) -> list[dict]:
    """(name, phrase, start) mentions -> one {name, phrase, start} per name at its first mention, by start."""
    seen = {}
    for name, phrase, start in sorted(found, key=lambda mention: mention[2]):
        seen.setdefault(name, {"name": name, "phrase": phrase, "start": start})
    return list(seen.values())


def lexicon_objects(doc) -> list[dict]:
    """The COCO categories a parsed caption names (module docstring, `lexicon`)."""
    forms = lexicon()
    longest = max(map(len, forms))
    words = [token.text.lower() for token in doc]
    found, i = [], 0
    while i < len(doc):
        for size in range(min(longest, len(doc) - i), 0, -1):
            category = forms.get(tuple(words[i:i + size]))
            if category and doc[i + size - 1].tag_ in NOUN_TAGS:
                span = doc[i:i + size]
                found.append((category, span.text, span.start_char))
                i += size
                break
        else:
            i += 1
    return first_mentions(found)


def noun_phrase_objects(doc) -> list[dict]:
    """The heads of a parsed caption's noun chunks (module docstring, `noun_phrases`)."""
    found = []
    for chunk in doc.noun_chunks:
        if chunk.root.pos_ == "PRON":
            continue
        words = [token for token in chunk if token.pos_ != "DET"]
        if words:
            found.append((chunk.root.lemma_.lower(), " ".join(t.text for t in words).lower(), words[0].idx))
    return first_mentions(found)


def placed_objects(caption: str, names: list[str]) -> tuple[list[dict], int]:
    """(objects, how many names were not found): each listed name at its first whole-word, case-insensitive
    occurrence in the caption."""
    found, unplaced = [], 0
    for name in names:
        match = re.search(r"(?<!\w)" + re.escape(name) + r"(?!\w)", caption, re.IGNORECASE)
        if match:
            found.append((name, name, match.start()))
        else:
            unplaced += 1
    return first_mentions(found), unplaced


def caption_objects(captions: list[str], method: str) -> list[list[dict]]:
    """The objects each caption names by a deterministic method (lexicon or noun_phrases)."""
    extract = {"lexicon": lexicon_objects, "noun_phrases": noun_phrase_objects}[method]
    return [extract(doc) for doc in docs(captions)]


def llm_caption_objects(captions: list[str], settings: dict, device: str) -> tuple[dict, dict]:
    """({answer, objects, unplaced: one per caption}, the generation settings) of the object-listing LLM: its raw
    answer, the names it lists placed in the caption, and how many of them the caption does not contain."""
    from workflow_scripts.models.llm_objects import generation_settings, list_objects, load_lister, parse_object_list

    lister = load_lister(settings["model"], device, offline=True)
    answers = list_objects(lister, captions, settings["max_new_tokens"], settings["temperature"], settings["top_p"],
                           settings["seed"], settings["batch_size"])
    placed = [placed_objects(caption, parse_object_list(answer)) for caption, answer in zip(captions, answers)]
    record = generation_settings(settings["model"], settings["max_new_tokens"], settings["temperature"],
                                 settings["top_p"], settings["seed"])
    record["precision"] = {"torch.float32": "fp32", "torch.bfloat16": "bf16", "torch.float16": "fp16"}.get(
        str(lister.model.dtype), str(lister.model.dtype))
    return {"answer": answers, "objects": [objects for objects, _ in placed],
            "unplaced": [unplaced for _, unplaced in placed]}, record


def main(snakemake) -> None:
    from workflow_scripts.common.devices import resolve_device
    from workflow_scripts.common.logs import start_job
    from workflow_scripts.common.parquet import write_table
    from workflow_scripts.datasets.items import read_items

    logger = start_job(snakemake)
    method = snakemake.wildcards.method
    rows, _ = read_items(snakemake.input.item_table)
    captions = [row["caption"] for row in rows]
    provenance = {"dataset": snakemake.wildcards.dataset, "method": method}
    columns = {"item_id": [row["item_id"] for row in rows]}
    if method == "llm":
        settings = {**snakemake.params.llm, "seed": snakemake.params.seed}
        listed, record = llm_caption_objects(captions, settings, resolve_device(snakemake.params.device))
        objects = listed["objects"]
        columns.update(answer=listed["answer"], unplaced=pa.array(listed["unplaced"], pa.int32()))
        provenance.update(llm=record, weights=record["weights"], precision=record["precision"])
    else:
        objects = caption_objects(captions, method)
        provenance["weights"] = f"spaCy pipeline {TAGGER}" + (" and COCO's category lexicon" if method == "lexicon"
                                                               else "")
    columns["objects"] = pa.array(objects, OBJECTS_TYPE)
    write_table(pa.table(columns), snakemake.output.objects, provenance)
    found = [len(o) for o in objects]
    logger.info("%s: %d captions, %d objects found (%.2f per caption) by %s", snakemake.wildcards.dataset,
                len(captions), sum(found), sum(found) / max(1, len(found)), method)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
