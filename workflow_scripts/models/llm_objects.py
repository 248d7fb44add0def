"""Listing the objects a caption names with an instruction-tuned LLM, as paper B ("CLIP Under the Microscope")
does for LAION captions: Llama-3-8B-Instruct (meta-llama/Meta-Llama-3-8B-Instruct) answers with a
comma-separated list, sampled with max_new_tokens 15, temperature 0.2 and top_p 0.9.

The authors did not publish their prompt: PROMPT is ours. The LLM is named as in models/hf_models.py (a hub id
read from the Hugging Face cache, or a local folder written by `save_pretrained`). Answers are sampled, so they
are reproducible only for the same seed, captions, batch size, hardware and library versions.
"""

import logging
import re
from dataclasses import dataclass

import torch

from workflow_scripts.models.hf_models import describe_hf_weights

# Ours, not the authors' (paper B does not give its prompt). The caption follows it directly.
PROMPT = (
    "List the physical objects named in the image caption below. Answer with a comma-separated list of the "
    "object words exactly as they are written in the caption, and nothing else. If the caption names no "
    "physical objects, answer: none.\n\nCaption: "
)

# transformers' default top_k, which paper B's settings (temperature, top_p) leave in place; passed explicitly so
# that a model's generation_config.json cannot change it.
TOP_K = 50

NOTE = ("answers are sampled (do_sample), so not deterministic across hardware or library versions: the same "
        "seed, captions and batch size give the same answers only on the same hardware with the same torch and "
        "transformers versions")

QUOTES = "\"'`\u201c\u201d\u2018\u2019"
BULLET = re.compile(r"^(?:[-*\u2022\u00b7]+|\(?\d+[.)])\s*")
ARTICLE = re.compile(r"^(?:a|an|the)\s+")


@dataclass(frozen=True)
class Lister:
    """An object-listing LLM: the model in eval mode on its device, its tokenizer (left padding, with a pad
    token), the name it was loaded by and which weights that is (hf_models.describe_hf_weights)."""
    model: object
    tokenizer: object
    name: str
    weights: str


def load_lister(name: str, device: str, offline: bool) -> Lister:
    """The LLM `name` (hub id or local folder) and its tokenizer, read from the Hugging Face cache (or the folder)
    only when `offline`. A tokenizer without a pad token pads with its end-of-sequence token."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=offline)
    tokenizer.padding_side = "left"  # generation continues every prompt from its last token
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(name, local_files_only=offline, dtype="auto")
    weights = describe_hf_weights(name)
    logging.getLogger("clip_binding").info("object-listing LLM %s on %s: %s", name, device, weights)
    return Lister(model=model.to(device).eval(), tokenizer=tokenizer, name=name, weights=weights)


def prompt_texts(tokenizer, captions: list[str]) -> list[str]:
    """The text the LLM continues for each caption: PROMPT + caption as the user's message in the tokenizer's
    chat template, ready for the assistant's answer, or PROMPT + caption as plain text where it has none."""
    if not getattr(tokenizer, "chat_template", None):
        return [PROMPT + caption for caption in captions]
    return [tokenizer.apply_chat_template([{"role": "user", "content": PROMPT + caption}],
                                          add_generation_prompt=True, tokenize=False)
            for caption in captions]


def encode_prompts(tokenizer, captions: list[str]):
    """The left-padded batch (input_ids, attention_mask tensors) of the captions' prompts. A chat template writes
    its own special tokens (a BOS), so the tokenizer adds none there; plain text gets the tokenizer's usual ones."""
    templated = bool(getattr(tokenizer, "chat_template", None))
    return tokenizer(prompt_texts(tokenizer, captions), padding=True, return_tensors="pt",
                     add_special_tokens=not templated)


def list_objects(lister: Lister, captions: list[str], max_new_tokens: int, temperature: float, top_p: float,
                 seed: int, batch_size: int) -> list[str]:
    """The LLM's raw answer to PROMPT for each caption, in order: the generated tokens only, decoded without
    special tokens. Sampled with `temperature` and `top_p` (and TOP_K) after torch.manual_seed(seed), batches in
    input order: the same seed, captions, batch size and hardware give the same answers."""
    from tqdm import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    model, tokenizer = lister.model, lister.tokenizer
    starts = range(0, len(captions), batch_size)
    answers = []
    torch.manual_seed(seed)  # seeds every device's generator
    with torch.inference_mode():
        for start in tqdm(starts, desc="listing objects", unit="batch", mininterval=10):
            batch = encode_prompts(tokenizer, captions[start:start + batch_size]).to(model.device)
            output = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=True,
                                    temperature=temperature, top_p=top_p, top_k=TOP_K,
                                    pad_token_id=tokenizer.pad_token_id)
            generated = output[:, batch["input_ids"].shape[1]:]
            answers += tokenizer.batch_decode(generated, skip_special_tokens=True)
    return answers


def object_name(item: str) -> str:
    """One item of an answer as an object name: without a preamble up to a colon ("Objects: dog"), list bullet or
    numbering, surrounding quotes, trailing punctuation or leading article; lower-cased, single-spaced."""
    item = item.rsplit(":", 1)[-1].strip().strip(QUOTES).strip()
    item = BULLET.sub("", item)
    item = item.strip(QUOTES + " \t").rstrip(".!?;:" + QUOTES + " \t").lstrip(QUOTES + " \t")
    item = " ".join(item.lower().split())
    return ARTICLE.sub("", item)


def parse_object_list(answer: str) -> list[str]:
    """The object names of one answer, in its order: split on commas and newlines, each item made an object name
    (object_name), then empty items, "none" and repeats dropped."""
    names = []
    for item in re.split(r"[,\n]", answer):
        name = object_name(item)
        if name and name != "none" and name not in names:
            names.append(name)
    return names


def generation_settings(name: str, max_new_tokens: int, temperature: float, top_p: float, seed: int) -> dict:
    """What is recorded beside the listed objects: the LLM and its weights, our prompt and the sampling settings."""
    return {"model": name, "weights": describe_hf_weights(name), "prompt": PROMPT,
            "prompt_source": "ours: paper B does not publish its prompt",
            "max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p, "top_k": TOP_K,
            "seed": seed, "sampled": True, "note": NOTE}
