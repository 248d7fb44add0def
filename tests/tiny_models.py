"""Tiny randomly initialised GroundingDINO and SAM models and a tiny Stable Diffusion pipeline, written with
`save_pretrained` into a folder, for tests that load them through transformers or diffusers by folder name (no
download, a few seconds each); and a Hugging Face cache laid out around such a folder, for loading by hub id.

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


def save_tiny_text_to_image(folder, seed: int = 0, safety_checker: bool = False) -> Path:
    """A tiny random Stable Diffusion pipeline (UNet with channels 8 and 16 and cross-attention width 16, a VAE
    with channels 8 and 16, a one-layer CLIP text encoder of width 16, a DDIM scheduler and, with `safety_checker`,
    a tiny safety checker as Stable Diffusion's own) saved into `folder` with `save_pretrained`; the folder. Its CLIP
    tokenizer is character-level: every byte-level character alone and word-final ("a</w>") and no merges, so it
    tokenizes any prompt."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    characters = sorted(ByteLevel.alphabet())
    tokens = characters + [character + "</w>" for character in characters] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: index for index, token in enumerate(tokens)}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(sample_size=8, block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16,
                                attention_head_dim=2)
    vae = AutoencoderKL(block_out_channels=(8, 16), norm_num_groups=4, latent_channels=4, sample_size=32,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2)
    text = CLIPTextConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                          num_attention_heads=2, max_position_embeddings=77, bos_token_id=vocab["<|startoftext|>"],
                          eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"])
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    checker = features = None
    if safety_checker:
        layers = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
        checker = StableDiffusionSafetyChecker(CLIPConfig(text_config=layers, projection_dim=8, vision_config={
            **layers, "image_size": 32, "patch_size": 8})).eval()
        features = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    pipeline = StableDiffusionPipeline(vae=vae, text_encoder=CLIPTextModel(text).eval(), tokenizer=tokenizer,
                                       unet=unet, scheduler=scheduler, safety_checker=checker,
                                       feature_extractor=features, requires_safety_checker=safety_checker)
    folder = Path(folder)
    pipeline.save_pretrained(folder)
    return folder


FAKE_REVISION = "0123456789abcdef0123456789abcdef01234567"


def run_with_cached_hub_model(folder, repo_id: str, code: str, tmp_path) -> str:
    """Run Python `code` in a fresh process whose Hugging Face cache (under `tmp_path`, hub offline) holds the model
    saved in `folder` as hub repo `repo_id` at revision FAKE_REVISION, laid out as the hub's download lays it out;
    its stdout, stripped. The real checkpoints' path, without a download."""
    import os
    import shutil
    import subprocess
    import sys

    from conftest import REPO

    repo = Path(tmp_path) / "hub" / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(folder, repo / "snapshots" / FAKE_REVISION)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(FAKE_REVISION)
    env = {**os.environ, "HF_HUB_CACHE": str(Path(tmp_path) / "hub"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout.strip()
