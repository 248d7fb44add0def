"""The area in an image of each object a caption names, as paper B ("CLIP Under the Microscope") measures it for
LAION captions: GroundingDINO (IDEA-Research/grounding-dino-tiny or -base) on the image resized to 800x600, box
threshold 0.3, text threshold 0.25, the largest box per phrase; optionally SAM, the area then being the SAM mask's
pixels inside that box.

Models are named as in models/hf_models.py (a hub id read from the Hugging Face cache, or a local folder written by
`save_pretrained`). Which box belongs to which phrase is decided by token spans (assign_largest_boxes), not by
decoding GroundingDINO's thresholded tokens back to text as transformers' post-processing does: deterministic, and
right for phrases that share words. Areas are fractions of the image's area.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from workflow_scripts.common.devices import resolve_device
from workflow_scripts.models.hf_models import describe_hf_weights, is_local_folder

# GroundingDINO splits its prompt into phrases at these characters (tokens "." and "?"): a phrase loses them.
DELIMITERS = ".?"


@dataclass(frozen=True)
class Detector:
    """An open-vocabulary detector (GroundingDINO): the model in eval mode on `device`, its processor, the name it
    was loaded by and which weights that is (hf_models.describe_hf_weights)."""
    model: object
    processor: object
    name: str
    weights: str
    device: str


@dataclass(frozen=True)
class Segmenter:
    """A box-prompted segmenter (SAM): the model in eval mode on `device`, its processor, the name it was loaded
    by and which weights that is."""
    model: object
    processor: object
    name: str
    weights: str
    device: str


def load_pretrained(name: str, device: str, offline: bool, model_class, processor_class):
    """(model in fp32 and eval mode on the device, processor, weights) of `name`, read from the Hugging Face cache
    (or the folder) only when `offline`."""
    path = str(Path(name).expanduser()) if is_local_folder(name) else name
    processor = processor_class.from_pretrained(path, local_files_only=offline)
    model = model_class.from_pretrained(path, local_files_only=offline, dtype=torch.float32)
    return model.to(device).eval(), processor, describe_hf_weights(name)


def load_detector(name: str, device: str, offline: bool) -> Detector:
    """GroundingDINO `name` (hub id or local folder) and its processor on `device` ('auto' allowed)."""
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    device = resolve_device(device)
    model, processor, weights = load_pretrained(name, device, offline, AutoModelForZeroShotObjectDetection,
                                                AutoProcessor)
    logging.getLogger("clip_binding").info("detector %s on %s: %s", name, device, weights)
    return Detector(model=model, processor=processor, name=name, weights=weights, device=device)


def load_segmenter(name: str, device: str, offline: bool) -> Segmenter:
    """SAM `name` (hub id or local folder) and its processor on `device` ('auto' allowed)."""
    from transformers import SamModel, SamProcessor

    device = resolve_device(device)
    model, processor, weights = load_pretrained(name, device, offline, SamModel, SamProcessor)
    logging.getLogger("clip_binding").info("segmenter %s on %s: %s", name, device, weights)
    return Segmenter(model=model, processor=processor, name=name, weights=weights, device=device)


def prompt_phrase(phrase: str) -> str:
    """A phrase as it goes into GroundingDINO's prompt: lower-cased, without delimiters, single-spaced."""
    for delimiter in DELIMITERS:
        phrase = phrase.replace(delimiter, " ")
    return " ".join(phrase.lower().split())


def pack_prompts(phrases: list[str], token_counts: list[int], max_tokens: int) -> list[list[str]]:
    """The (distinct, non-empty) phrases in groups whose prompt "[CLS] a . b . [SEP]" fits in `max_tokens` tokens
    (a phrase too long on its own gets a group of its own), in order."""
    groups, used = [], max_tokens
    for phrase, count in zip(phrases, token_counts):
        if used + count + 1 > max_tokens:
            groups.append([])
            used = 2  # [CLS] and [SEP]
        groups[-1].append(phrase)
        used += count + 1
    return groups


def prompt_and_spans(phrases: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """GroundingDINO's prompt for the phrases ("cat . red car .") and each phrase's character span in it."""
    prompt, spans = "", []
    for phrase in phrases:
        spans.append((len(prompt), len(prompt) + len(phrase)))
        prompt += phrase + " . "
    return prompt.rstrip(), spans


def token_spans(offsets, char_spans: list[tuple[int, int]]) -> list[list[int]]:
    """For each character span, the positions of the tokens lying within it, from the tokenizer's offsets
    ((start, end) per token; special and padding tokens have empty offsets and belong to no span)."""
    return [[position for position, (start, end) in enumerate(offsets) if end > start and low <= start and end <= high]
            for low, high in char_spans]


def box_areas(boxes) -> np.ndarray:
    """Areas of [x0, y0, x1, y1] boxes (0 for an empty one)."""
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def assign_largest_boxes(probabilities, spans: list[list[int]], boxes, box_threshold: float,
                         text_threshold: float) -> list[int | None]:
    """For each phrase, the query whose box is the phrase's largest, or None where no box is assigned to it.

    `probabilities` [queries x tokens] are the sigmoids of GroundingDINO's logits, `spans` each phrase's token
    positions, `boxes` [queries x 4] each query's [x0, y0, x1, y1]. A query is kept where its highest probability
    over all tokens exceeds `box_threshold`; it is assigned to the phrase whose tokens' highest probability is the
    highest (the first such phrase on a tie), provided that exceeds `text_threshold`. Among a phrase's queries the
    largest box wins, the lowest query on a tie.
    """
    probabilities = np.asarray(probabilities, dtype=float)
    chosen = [None] * len(spans)
    if not spans or probabilities.size == 0:
        return chosen
    phrase_probabilities = np.stack([probabilities[:, span].max(axis=1) if len(span)
                                     else np.full(len(probabilities), -np.inf) for span in spans], axis=1)
    phrase = phrase_probabilities.argmax(axis=1)
    kept = ((probabilities.max(axis=1) > box_threshold)
            & (phrase_probabilities[np.arange(len(phrase)), phrase] > text_threshold))
    for query in np.argsort(-box_areas(boxes), kind="stable"):
        if kept[query] and chosen[phrase[query]] is None:
            chosen[phrase[query]] = int(query)
    return chosen


def open_rgb(image):
    """A PIL image in RGB, opened from a path where `image` is not one already."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    with Image.open(image) as opened:
        return opened.convert("RGB")


def corner_boxes(pred_boxes, width: int, height: int) -> np.ndarray:
    """GroundingDINO's boxes (centre x, centre y, width, height as fractions of the image) as [x0, y0, x1, y1] in
    the pixels of a width x height image, clipped to it."""
    cx, cy, w, h = np.asarray(pred_boxes, dtype=float).reshape(-1, 4).T
    corners = np.stack([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height],
                       axis=1)
    return np.clip(corners, 0, [width, height, width, height])


def run_prompts(detector: Detector, images: list, prompts: list[str]):
    """(probabilities [prompts x queries x tokens], boxes [prompts x queries x 4] as fractions, tokenizer offsets
    per prompt) for each (image, prompt) pair, in one forward pass."""
    tokenizer = detector.processor.tokenizer
    text = tokenizer(prompts, padding=True, return_tensors="pt", return_offsets_mapping=True)
    offsets = text.pop("offset_mapping").tolist()
    pixels = detector.processor.image_processor(images, return_tensors="pt")
    inputs = {**text, "pixel_values": pixels["pixel_values"], "pixel_mask": pixels["pixel_mask"]}
    outputs = detector.model(**{key: value.to(detector.device) for key, value in inputs.items()})
    return (outputs.logits.float().sigmoid().cpu().numpy(), outputs.pred_boxes.float().cpu().numpy(), offsets)


def detect_largest_boxes(detector: Detector, images: list, phrases: list[list[str]],
                         resize: tuple[int, int] | None = (800, 600), box_threshold: float = 0.3,
                         text_threshold: float = 0.25, batch_size: int = 4) -> list[list[dict | None]]:
    """For each image (PIL image or path) and each of its phrases, the phrase's largest GroundingDINO box:
    {"box": [x0, y0, x1, y1] in the original image's pixels, "score": the box's highest token probability,
    "area": box area / image area}, or None where no box is assigned to the phrase (assign_largest_boxes).

    Images are resized to `resize` (width, height; None keeps them) before the processor, as paper B did. The
    phrases are lower-cased and joined into GroundingDINO's prompt ("cat . red car ."); where that exceeds the
    model's max_text_len tokens, they are split over several prompts. Repeated phrases get the same answer, a
    phrase that is empty without delimiters gets None. `batch_size` (image, prompt) pairs go through at once.
    """
    from PIL import Image
    from tqdm import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    if len(images) != len(phrases):
        raise ValueError(f"{len(images)} images but {len(phrases)} phrase lists")
    max_tokens = detector.model.config.max_text_len
    tokenizer = detector.processor.tokenizer
    results = []
    starts = range(0, len(images), batch_size)
    with torch.inference_mode():
        for start in tqdm(starts, desc="detecting", unit="batch", mininterval=10):
            originals = [open_rgb(image) for image in images[start:start + batch_size]]
            inputs = [image.resize(resize, resample=Image.Resampling.BILINEAR) if resize else image
                      for image in originals]
            jobs = []  # (image in the batch, phrases of one prompt)
            for index, image_phrases in enumerate(phrases[start:start + batch_size]):
                distinct = [phrase for phrase in dict.fromkeys(map(prompt_phrase, image_phrases)) if phrase]
                counts = [len(tokenizer(phrase, add_special_tokens=False)["input_ids"]) for phrase in distinct]
                jobs += [(index, group) for group in pack_prompts(distinct, counts, max_tokens)]
            found = [{} for _ in originals]  # per image: prompt phrase -> result
            for first in range(0, len(jobs), batch_size):
                batch = jobs[first:first + batch_size]
                prompts = [prompt_and_spans(group) for _, group in batch]
                probabilities, boxes, offsets = run_prompts(
                    detector, [inputs[index] for index, _ in batch], [prompt for prompt, _ in prompts])
                for (index, group), (_, char_spans), probs, fractions, offset in zip(
                        batch, prompts, probabilities, boxes, offsets):
                    width, height = originals[index].size
                    corners = corner_boxes(fractions, width, height)
                    spans = [[position for position in span if position < probs.shape[-1]]
                             for span in token_spans(offset, char_spans)]
                    chosen = assign_largest_boxes(probs, spans, corners, box_threshold, text_threshold)
                    for phrase, query in zip(group, chosen):
                        found[index][phrase] = None if query is None else {
                            "box": [float(value) for value in corners[query]],
                            "score": float(probs[query].max()),
                            "area": float(box_areas(corners[query])[0] / (width * height))}
            results += [[found[index].get(prompt_phrase(phrase)) for phrase in image_phrases]
                        for index, image_phrases in enumerate(phrases[start:start + batch_size])]
    return results


def mask_fraction_in_box(mask, box) -> float:
    """The share of the image's pixels that are in `mask` (a height x width boolean array) and inside `box`
    ([x0, y0, x1, y1] in pixels, pixel (row r, column c) covering [c, c+1) x [r, r+1)); a pixel the box covers
    partly counts with the part it covers."""
    mask = np.asarray(mask, dtype=float)
    height, width = mask.shape
    x0, y0, x1, y1 = (float(value) for value in box)
    columns, rows = np.arange(width), np.arange(height)
    column_weights = np.clip(np.minimum(columns + 1, x1) - np.maximum(columns, x0), 0, 1)
    row_weights = np.clip(np.minimum(rows + 1, y1) - np.maximum(rows, y0), 0, 1)
    return float(row_weights @ mask @ column_weights / (width * height))


def mask_areas(segmenter: Segmenter, images: list, boxes: list[list]) -> list[list[float | None]]:
    """For each image (PIL image or path) and each of its boxes ([x0, y0, x1, y1] in the image's pixels, or None),
    the share of the image's pixels that SAM's mask for the box (one mask per box, multimask_output=False,
    upscaled to the image's size) puts inside the box (mask_fraction_in_box); None for a None box."""
    from tqdm import tqdm

    if len(images) != len(boxes):
        raise ValueError(f"{len(images)} images but {len(boxes)} box lists")
    processor, results = segmenter.processor, []
    with torch.inference_mode():
        for image, image_boxes in tqdm(list(zip(images, boxes)), desc="segmenting", unit="image", mininterval=10):
            present = [[float(value) for value in box] for box in image_boxes if box is not None]
            if not present:
                results.append([None] * len(image_boxes))
                continue
            inputs = processor(images=open_rgb(image), input_boxes=[present], return_tensors="pt")
            outputs = segmenter.model(pixel_values=inputs["pixel_values"].to(segmenter.device),
                                      input_boxes=inputs["input_boxes"].float().to(segmenter.device),
                                      multimask_output=False)
            masks = processor.post_process_masks(outputs.pred_masks.float().cpu(), inputs["original_sizes"],
                                                 inputs["reshaped_input_sizes"])[0][:, 0].numpy()
            areas = iter(mask_fraction_in_box(mask, box) for mask, box in zip(masks, present))
            results.append([None if box is None else next(areas) for box in image_boxes])
    return results


def settings_record(detector: Detector, segmenter: Segmenter | None, resize: tuple[int, int] | None,
                    box_threshold: float, text_threshold: float) -> dict:
    """The models and settings an area measurement used, for the outputs' provenance."""
    return {"detector": detector.name, "detector_weights": detector.weights,
            "segmenter": segmenter.name if segmenter else None,
            "segmenter_weights": segmenter.weights if segmenter else None,
            "resize": list(resize) if resize else None, "box_threshold": box_threshold,
            "text_threshold": text_threshold, "box_per_phrase": "largest",
            "area": "SAM mask pixels inside the box" if segmenter else "box area"}
