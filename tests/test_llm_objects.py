"""Object listing with an LLM (paper B): parsing known answers, and the real generation path on a tiny randomly
initialised Llama saved to a folder (no download)."""
import pytest
import torch

from workflow_scripts.models.hf_models import prefetch_hf
from workflow_scripts.models.llm_objects import (
    PROMPT,
    encode_prompts,
    generation_settings,
    list_objects,
    load_lister,
    parse_object_list,
    prompt_texts,
)

WORDS = ["a", "the", "dog", "cat", "red", "ball", "on", "table", "with", "man", "hat", ",", ".", "none", "and",
         "sits", "next", "to", "blue", "car"]
SPECIAL = ["[UNK]", "<pad>", "<s>", "</s>", "<|user|>", "<|assistant|>"]
TEMPLATE = ("{{ bos_token }}{% for message in messages %}<|user|> {{ message['content'] }} {% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>{% endif %}")
CAPTIONS = ["a dog with a red ball", "the man with a hat sits on a table", "a blue car"]
PAPER = {"max_new_tokens": 15, "temperature": 0.2, "top_p": 0.9}


@pytest.mark.parametrize("answer, expected", [
    ("dog, ball, table", ["dog", "ball", "table"]),
    ("a dog, the red ball, an apple.", ["dog", "red ball", "apple"]),
    ("1. Dog\n2. Cat\n3. Table", ["dog", "cat", "table"]),
    ('"dog", "cat"', ["dog", "cat"]),
    ("None", []),
    ("none.", []),
    ("", []),
    ("dog, Dog, the dog, cat", ["dog", "cat"]),
    ("- dog\n- cat\n\n* hat", ["dog", "cat", "hat"]),
    ("Objects: dog, cat.", ["dog", "cat"]),
    ("Here are the objects:\n\nsurfboard, wave", ["surfboard", "wave"]),
    ("  Teddy   Bear ,  'Lamp'. ", ["teddy bear", "lamp"]),
    ("1) the chair\n2) 3 apples", ["chair", "3 apples"]),
])
def test_parse_object_list_known_answers(answer, expected):
    assert parse_object_list(answer) == expected


def tiny_tokenizer(chat_template: str | None, pad: bool):
    """A word-level tokenizer over WORDS, built here with the tokenizers library and wrapped for transformers."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(SPECIAL + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", bos_token="<s>",
                                        eos_token="</s>", pad_token="<pad>" if pad else None,
                                        additional_special_tokens=["<|user|>", "<|assistant|>"])
    if chat_template:
        tokenizer.chat_template = chat_template
    return tokenizer


def tiny_llm_folder(folder, chat_template: str | None = TEMPLATE, pad: bool = True) -> str:
    """A randomly initialised two-layer Llama and its tokenizer, saved with save_pretrained into `folder`."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer(chat_template, pad)
    config = LlamaConfig(vocab_size=len(SPECIAL + WORDS), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def lister(tmp_path_factory):
    return load_lister(tiny_llm_folder(tmp_path_factory.mktemp("llm")), "cpu", offline=True)


def test_load_lister_readies_the_model_and_tokenizer(lister):
    assert not lister.model.training
    assert lister.model.device.type == "cpu"
    assert lister.tokenizer.padding_side == "left"
    assert lister.tokenizer.pad_token == "<pad>"
    assert "model.safetensors sha256 " in lister.weights


def test_list_objects_answers_each_caption_reproducibly(lister):
    answers = list_objects(lister, CAPTIONS, seed=1, batch_size=2, **PAPER)
    assert len(answers) == len(CAPTIONS) and all(isinstance(answer, str) for answer in answers)
    # Word-level tokens decode to one word each (special tokens to none): at most max_new_tokens words.
    assert all(len(answer.split()) <= PAPER["max_new_tokens"] for answer in answers)
    assert not any(token in answer for answer in answers for token in SPECIAL)
    assert list_objects(lister, CAPTIONS, seed=1, batch_size=2, **PAPER) == answers
    others = [list_objects(lister, CAPTIONS, seed=seed, batch_size=2, **PAPER) for seed in (2, 3, 4)]
    assert any(other != answers for other in others)  # sampled: the seed matters


def test_list_objects_returns_generated_tokens_only(lister):
    # The prompt's words ("physical", "caption", ...) are not in the vocabulary, but the caption's are: were the
    # prompt decoded too, every answer would start with the caption's words.
    answers = list_objects(lister, CAPTIONS, max_new_tokens=1, temperature=1.0, top_p=1.0, seed=0, batch_size=3)
    assert all(len(answer.split()) <= 1 for answer in answers)
    assert list_objects(lister, [], seed=0, batch_size=2, **PAPER) == []
    with pytest.raises(ValueError, match="batch_size"):
        list_objects(lister, CAPTIONS, seed=0, batch_size=0, **PAPER)


def test_chat_template_is_used_when_present(lister):
    texts = prompt_texts(lister.tokenizer, CAPTIONS[:1])
    assert texts == ["<s><|user|> " + PROMPT + CAPTIONS[0] + " <|assistant|>"]
    batch = encode_prompts(lister.tokenizer, CAPTIONS)
    ids = lister.tokenizer.convert_tokens_to_ids(["<|user|>", "<|assistant|>", "<s>"])
    for row, mask in zip(batch["input_ids"], batch["attention_mask"]):
        tokens = row[mask.bool()].tolist()
        assert tokens[:2] == [ids[2], ids[0]] and tokens[-1] == ids[1]  # one BOS, the template's own
        assert tokens.count(ids[2]) == 1
    assert batch["attention_mask"][:, -1].all()  # left padding: every prompt ends at the last position


def test_plain_text_without_template_and_eos_padding(tmp_path):
    plain = load_lister(tiny_llm_folder(tmp_path, chat_template=None, pad=False), "cpu", offline=True)
    assert plain.tokenizer.pad_token == "</s>"  # no pad token of its own: pads with end-of-sequence
    assert prompt_texts(plain.tokenizer, CAPTIONS) == [PROMPT + caption for caption in CAPTIONS]
    batch = encode_prompts(plain.tokenizer, CAPTIONS[:1])
    assert "<|user|>" not in plain.tokenizer.decode(batch["input_ids"][0])
    answers = list_objects(plain, CAPTIONS, seed=5, batch_size=2, **PAPER)
    assert len(answers) == 3 and answers == list_objects(plain, CAPTIONS, seed=5, batch_size=2, **PAPER)


def test_generation_settings_record_sampling_and_weights(lister):
    settings = generation_settings(lister.name, seed=7, **PAPER)
    assert settings["sampled"] is True
    assert {key: settings[key] for key in ("max_new_tokens", "temperature", "top_p", "seed")} == {**PAPER, "seed": 7}
    assert settings["prompt"] == PROMPT and "ours" in settings["prompt_source"]
    assert "not deterministic" in settings["note"] and "hardware" in settings["note"]
    assert settings["model"] == lister.name
    weights = settings["weights"]
    assert weights.startswith("local folder ") and lister.name in weights and "sha256 " in weights
    assert weights == lister.weights
    hub = generation_settings("meta-llama/Meta-Llama-3-8B-Instruct", seed=0, **PAPER)  # reads the cache only
    assert hub["weights"].startswith("Hugging Face hub meta-llama/Meta-Llama-3-8B-Instruct, ")


def test_prefetch_of_a_local_folder(lister):
    record = prefetch_hf(lister.name, lambda name, offline: load_lister(name, "cpu", offline))
    assert record["source"] == "local_folder"
    assert record["model"] == lister.name and "model.safetensors sha256 " in record["weights"]
