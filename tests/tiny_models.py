"""Tiny randomly initialised GroundingDINO and SAM models, written with `save_pretrained` into a folder, for tests
that load them through transformers by folder name (no download, a few seconds each).

The tiny GroundingDINO keeps the real checkpoints' tokenizer layout where the model depends on it: transformers'
GroundingDINO splits the prompt into phrases at the hard-coded BERT ids of [CLS] (101), [SEP] (102), "." (1012) and
"?" (1029), so the tiny vocabulary puts these tokens at those ids (the rest is filler) and the given words after them.
"""
from pathlib import Path

BERT_IDS = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103, ".": 1012, "?": 1029}
MAX_TEXT_LEN = 24  # small, so that a test can make the phrases' prompt overflow it


def write_vocab(path: Path, words: list[str]) -> dict[str, int]:
    """A BERT-style vocab.txt: the special tokens and "." at BERT's ids, filler elsewhere, then `words`
    (lower-cased, without duplicates); the vocabulary, token -> id."""
    vocab = [f"[unused{index}]" for index in range(max(BERT_IDS.values()) + 1)]
    for token, index in BERT_IDS.items():
        vocab[index] = token
    vocab += [word for word in dict.fromkeys(word.lower() for word in words) if word not in vocab]
    path.write_text("\n".join(vocab) + "\n")
    return {token: index for index, token in enumerate(vocab)}


def save_tiny_grounding_dino(folder, words: list[str], seed: int = 0) -> Path:
    """A tiny random GroundingDINO (Swin backbone, BERT text encoder, d_model 32, one encoder layer, 10 queries,
    max_text_len 24) with its processor (a tokenizer knowing `words`) saved into `folder`; the folder.

    Two decoder layers, as transformers cannot tie the box heads of a single one; images resized to 96-128 pixels,
    as smaller ones leave the last feature map a single pixel, which the model's group norm rejects."""
    import torch
    from transformers import (BertConfig, BertTokenizerFast, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessor, GroundingDinoProcessor, SwinConfig)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = write_vocab(folder / "vocab.txt", words)
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True)  # transformers 5 ignores vocab_file=
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 96, "longest_edge": 128})
    backbone = SwinConfig(image_size=64, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                          window_size=4, out_features=["stage2", "stage3", "stage4"])
    text = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=MAX_TEXT_LEN)
    config = GroundingDinoConfig(backbone_config=backbone, text_config=text, d_model=32, num_queries=10,
                                 encoder_layers=1, decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                                 encoder_attention_heads=2, decoder_attention_heads=2, encoder_n_points=2,
                                 decoder_n_points=2, max_text_len=MAX_TEXT_LEN)
    torch.manual_seed(seed)
    model = GroundingDinoForObjectDetection(config).eval()
    model.save_pretrained(folder)
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def save_tiny_sam(folder, seed: int = 0) -> Path:
    """A tiny random SAM (64-pixel input, 8x8 image embedding, 16 channels) with its processor saved into
    `folder`; the folder."""
    import torch
    from transformers import (SamConfig, SamImageProcessor, SamMaskDecoderConfig, SamModel, SamProcessor,
                              SamPromptEncoderConfig, SamVisionConfig)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vision = SamVisionConfig(hidden_size=16, output_channels=16, num_hidden_layers=2, num_attention_heads=2,
                             image_size=64, patch_size=8, window_size=4, global_attn_indexes=[1], num_pos_feats=8,
                             mlp_dim=32)
    prompt = SamPromptEncoderConfig(hidden_size=16, image_size=64, patch_size=8, mask_input_channels=4)
    decoder = SamMaskDecoderConfig(hidden_size=16, mlp_dim=32, num_hidden_layers=1, num_attention_heads=2,
                                   iou_head_hidden_dim=16)
    config = SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
    torch.manual_seed(seed)
    model = SamModel(config).eval()
    model.save_pretrained(folder)
    image_processor = SamImageProcessor(size={"longest_edge": 64}, pad_size={"height": 64, "width": 64},
                                        mask_size={"longest_edge": 16}, mask_pad_size={"height": 16, "width": 16})
    SamProcessor(image_processor=image_processor).save_pretrained(folder)
    return folder
