"""Object areas for paper B: the phrase-assignment rule and the mask-in-box count on hand-made numbers, and the real
GroundingDINO and SAM paths on tiny randomly initialised models saved to folders (tiny_models.py, no download)."""
import numpy as np
import pytest
from PIL import Image

from tiny_models import save_tiny_grounding_dino, save_tiny_sam
from workflow_scripts.models.detection import (
    assign_largest_boxes,
    detect_largest_boxes,
    load_detector,
    load_segmenter,
    mask_areas,
    mask_fraction_in_box,
    pack_prompts,
    prompt_and_spans,
    prompt_phrase,
    settings_record,
    token_spans,
)
from workflow_scripts.models.hf_models import prefetch_hf

WORDS = ["cat", "dog", "red", "car", "tree", "blue", "house", "small", "bird", "green", "grass", "big", "boat"]
# Phrases whose prompt fills the tiny model's 24 tokens: "red house" goes into a second prompt.
MANY = ["red car", "small bird", "big boat", "green grass", "blue house", "tree", "dog", "cat", "red house"]

# Hand-made GroundingDINO output for "cat . red car . dog ." ([CLS] cat . red car . dog . [SEP]: positions 0-8).
SPANS = [[1], [3, 4], [6]]
LOW = 0.05


def probabilities(**values):
    """One query's token probabilities: LOW everywhere but at the given positions (p1=0.9: position 1)."""
    row = np.full(9, LOW)
    for key, value in values.items():
        row[int(key[1:])] = value
    return row


PROBABILITIES = np.stack([
    probabilities(p1=0.9),            # 0: cat, area 100
    probabilities(p1=0.8),            # 1: cat, area 400: cat's largest
    probabilities(p3=0.2, p4=0.7),    # 2: red car (through "car"), area 900
    probabilities(p1=0.29, p6=0.28),  # 3: no token above the box threshold 0.3; the largest box
    probabilities(p8=0.5, p1=0.2),    # 4: kept by [SEP]'s 0.5, but cat's 0.2 is below the text threshold 0.25
    probabilities(p3=0.6),            # 5: red car, area 900 as query 2: the lower query wins the tie
])
BOXES = np.array([[0, 0, 10, 10], [5, 5, 25, 25], [0, 0, 30, 30], [0, 0, 200, 200], [0, 0, 50, 50],
                  [10, 10, 40, 40]], dtype=float)


def test_assignment_known_answer():
    assert assign_largest_boxes(PROBABILITIES, SPANS, BOXES, 0.3, 0.25) == [1, 2, None]


def test_assignment_thresholds():
    # a lower text threshold lets query 4 (cat 0.2, area 2500) in; a lower box threshold query 3 (cat 0.29)
    assert assign_largest_boxes(PROBABILITIES, SPANS, BOXES, 0.3, 0.1) == [4, 2, None]
    assert assign_largest_boxes(PROBABILITIES, SPANS, BOXES, 0.25, 0.25) == [3, 2, None]
    # thresholds are exceeded strictly: at 0.9 and 0.8 nothing is kept
    assert assign_largest_boxes(PROBABILITIES, SPANS, BOXES, 0.9, 0.0) == [None, None, None]
    assert assign_largest_boxes(PROBABILITIES, SPANS, BOXES, 0.0, 0.9) == [None, None, None]
    assert assign_largest_boxes(PROBABILITIES, SPANS, BOXES, 0.85, 0.0) == [0, None, None]


def test_assignment_ties_and_empty():
    # a query whose best phrases tie goes to the first of them; a phrase without tokens gets nothing
    tied = np.array([[LOW, 0.6, LOW, 0.6, LOW, LOW, 0.6, LOW, LOW]])
    assert assign_largest_boxes(tied, SPANS, [[0, 0, 1, 1]], 0.3, 0.25) == [0, None, None]
    assert assign_largest_boxes(tied, [[], [3]], [[0, 0, 1, 1]], 0.3, 0.25) == [None, 0]
    assert assign_largest_boxes(np.zeros((0, 9)), SPANS, np.zeros((0, 4)), 0.3, 0.25) == [None, None, None]
    assert assign_largest_boxes(PROBABILITIES, [], BOXES, 0.3, 0.25) == []


def test_prompt_building():
    assert prompt_phrase("  Red. Car?  ") == "red car"
    prompt, spans = prompt_and_spans(["cat", "red car"])
    assert prompt == "cat . red car ." and spans == [(0, 3), (6, 13)]
    offsets = [(0, 0), (0, 3), (4, 5), (6, 9), (10, 13), (14, 15), (0, 0), (0, 0)]  # [CLS] ... [SEP] [PAD]
    assert token_spans(offsets, spans) == [[1], [3, 4]]
    assert pack_prompts(["a", "b", "c"], [1, 2, 3], 8) == [["a", "b"], ["c"]]  # 2 + 2 + 3 = 7; + 4 > 8
    assert pack_prompts(["a", "long", "b"], [1, 10, 1], 8) == [["a"], ["long"], ["b"]]
    assert pack_prompts([], [], 8) == []


def test_mask_fraction_in_box():
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:6, 3:8] = True  # 20 pixels of 100
    assert mask_fraction_in_box(mask, [0, 0, 10, 10]) == pytest.approx(0.20)
    assert mask_fraction_in_box(mask, [-5, -5, 50, 50]) == pytest.approx(0.20)  # clipped to the image
    assert mask_fraction_in_box(mask, [3, 2, 5, 4]) == pytest.approx(0.04)
    assert mask_fraction_in_box(mask, [0, 0, 4, 3]) == pytest.approx(0.01)  # pixel (2, 3) only
    assert mask_fraction_in_box(mask, [5.5, 2, 6.5, 3]) == pytest.approx(0.01)  # two half pixels
    assert mask_fraction_in_box(mask, [0, 6, 10, 10]) == 0.0


@pytest.fixture(scope="module")
def detector_folder(tmp_path_factory):
    return save_tiny_grounding_dino(tmp_path_factory.mktemp("grounding_dino"), WORDS)


@pytest.fixture(scope="module")
def detector(detector_folder):
    return load_detector(str(detector_folder), "cpu", offline=True)


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory):
    return load_segmenter(str(save_tiny_sam(tmp_path_factory.mktemp("sam"))), "cpu", offline=True)


def noise_image(width, height, seed):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


IMAGES = [noise_image(120, 90, 1), noise_image(64, 64, 2), noise_image(50, 80, 3)]
PHRASES = [["cat", "red car", "dog"], ["tree", "Cat.", "cat"], []]


def test_detector_record(detector, detector_folder):
    assert detector.model.training is False and detector.device == "cpu"
    assert str(detector_folder.resolve()) in detector.weights and "sha256" in detector.weights
    record = prefetch_hf(str(detector_folder), lambda name, offline: load_detector(name, "cpu", offline))
    assert record["source"] == "local_folder" and record["weights"] == detector.weights
    settings = settings_record(detector, None, (800, 600), 0.3, 0.25)
    assert settings["detector_weights"] == detector.weights and settings["area"] == "box area"


def test_a_cached_hub_model_loads_by_name_offline(detector_folder, tmp_path):
    """The real checkpoints' path: a hub id resolved in the Hugging Face cache (its layout written here, with the
    tiny model's files as the snapshot), loaded and its prefetch verified with the hub offline, in a process whose
    HF_HUB_CACHE is that cache."""
    from tiny_models import FAKE_REVISION, run_with_cached_hub_model

    code = ("from workflow_scripts.models.detection import load_detector\n"
            "from workflow_scripts.models.hf_models import prefetch_hf\n"
            "record = prefetch_hf('IDEA-Research/grounding-dino-base', lambda n, off: load_detector(n, 'cpu', off))\n"
            "print(record['source'], '|', record['weights'])")
    printed = run_with_cached_hub_model(detector_folder, "IDEA-Research/grounding-dino-base", code, tmp_path)
    assert printed.endswith(f"hf_cache | Hugging Face hub IDEA-Research/grounding-dino-base, revision {FAKE_REVISION}")


def test_uncached_hub_model_fails_offline():
    with pytest.raises(OSError):
        load_detector("no-such-owner/no-such-grounding-dino", "cpu", offline=True)


def test_every_phrase_boxed_at_zero_thresholds(detector):
    results = detect_largest_boxes(detector, IMAGES, PHRASES, box_threshold=0.0, text_threshold=0.0)
    assert [len(found) for found in results] == [3, 3, 0]
    for image, found in zip(IMAGES, results):
        width, height = image.size
        for result in found:
            x0, y0, x1, y1 = result["box"]
            assert 0 <= x0 <= x1 <= width and 0 <= y0 <= y1 <= height
            assert result["area"] == pytest.approx((x1 - x0) * (y1 - y0) / (width * height))
            assert 0 < result["area"] <= 1 and 0 < result["score"] <= 1
    assert results[1][1] == results[1][2]  # "Cat." is "cat"


def test_no_box_above_one(detector):
    results = detect_largest_boxes(detector, IMAGES, PHRASES, box_threshold=1.01, text_threshold=1.01)
    assert results == [[None] * 3, [None] * 3, []]
    assert detect_largest_boxes(detector, IMAGES[:1], [["cat"]], box_threshold=0.0, text_threshold=1.01) == [[None]]


def test_deterministic(detector, tmp_path):
    path = tmp_path / "image.png"
    IMAGES[0].save(path)
    first = detect_largest_boxes(detector, IMAGES, PHRASES, box_threshold=0.0, text_threshold=0.0)
    again = detect_largest_boxes(detector, [path] + IMAGES[1:], PHRASES, box_threshold=0.0, text_threshold=0.0)
    assert first == again


def test_boxes_in_original_pixels(detector):
    # the detector sees the same 800x600 pixels for a 120x90 image and for that image resized to 800x600
    small = IMAGES[0]
    large = small.resize((800, 600), resample=Image.Resampling.BILINEAR)
    found_small, found_large = detect_largest_boxes(detector, [small, large], [PHRASES[0]] * 2, batch_size=1,
                                                    box_threshold=0.0, text_threshold=0.0)
    for in_small, in_large in zip(found_small, found_large):
        assert in_small["box"] == pytest.approx(np.array(in_large["box"]) * [0.15, 0.15, 0.15, 0.15], abs=1e-4)
        assert in_small["area"] == pytest.approx(in_large["area"], rel=1e-5)
        assert in_small["score"] == pytest.approx(in_large["score"], rel=1e-5)


def test_long_phrase_lists_split_into_prompts(detector):
    counts = [len(detector.processor.tokenizer(phrase, add_special_tokens=False)["input_ids"]) for phrase in MANY]
    assert pack_prompts(MANY, counts, detector.model.config.max_text_len) == [MANY[:-1], MANY[-1:]]
    image = IMAGES[:1]
    together = detect_largest_boxes(detector, image, [MANY], box_threshold=0.0, text_threshold=0.0)[0]
    apart = (detect_largest_boxes(detector, image, [MANY[:-1]], box_threshold=0.0, text_threshold=0.0)[0]
             + detect_largest_boxes(detector, image, [MANY[-1:]], box_threshold=0.0, text_threshold=0.0)[0])
    assert together[-1] is not None
    for joint, alone in zip(together, apart):
        assert (joint is None) == (alone is None)
        if joint is not None:
            assert joint["box"] == pytest.approx(alone["box"], abs=1e-4)
            assert joint["score"] == pytest.approx(alone["score"], rel=1e-5)


def test_mask_areas(segmenter):
    assert segmenter.model.training is False and "sha256" in segmenter.weights
    boxes = [[[10, 10, 60, 50], None, [0, 0, 120, 90]], [None], [[2.5, 3.5, 20.2, 30.0]]]
    areas = mask_areas(segmenter, IMAGES, boxes)
    assert [len(found) for found in areas] == [3, 1, 1]
    assert areas[0][1] is None and areas[1] == [None]
    for image, image_boxes, found in zip(IMAGES, boxes, areas):
        width, height = image.size
        for box, area in zip(image_boxes, found):
            if box is not None:
                assert 0 <= area <= (box[2] - box[0]) * (box[3] - box[1]) / (width * height) + 1e-9
    assert 0 < areas[0][2] < 1  # the whole-image box: the tiny SAM's mask is neither empty nor everything
    assert mask_areas(segmenter, IMAGES, boxes) == areas
