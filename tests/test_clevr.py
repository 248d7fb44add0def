"""The clevr dataset kind's item tables: determinism, hard negatives, leak-free splits, placement."""
from collections import Counter

import numpy as np
import pytest

from workflow_scripts.common.camera import project, segment_point_distance
from workflow_scripts.datasets.clevr import COLORS, SHAPES, VOCABULARY, caption, generate_scenes, hard_negatives
from workflow_scripts.datasets.items import binding_key
from workflow_scripts.datasets.placement import bounding_radius

SPLITS = {"train": 0.8, "val": 0.1, "test": 0.1}


def spec(counts=(2,), per_count=300, shards=3, negatives=1, sampling="distinct", focal_length_mm=35):
    return {
        "focal_length_mm": focal_length_mm,
        "sampling": sampling,
        "objects_per_scene": list(counts),
        "scenes_per_count": per_count,
        "negatives_per_scene": negatives,
        "shards": shards,
        "splits": SPLITS,
    }


@pytest.fixture(scope="module")
def binding():
    return generate_scenes("clevr_binding", spec(), 320, 240, seed=0).to_pylist()


@pytest.fixture(scope="module")
def multi():
    return generate_scenes("clevr_multi", spec(range(3, 11), 12, negatives=2), 224, 224, seed=0).to_pylist()


@pytest.fixture(scope="module")
def authors():
    return generate_scenes("clevr_binding", spec(per_count=800, sampling="authors"), 224, 224, seed=0).to_pylist()


def test_authors_sampling_draws_with_replacement_but_never_repeats_a_shape_in_two(authors):
    pairs = [VOCABULARY.parse(s["caption"]) for s in authors]
    assert all(a[1] != b[1] for a, b in pairs)
    equal = [a[0] == b[0] for a, b in pairs]
    # P(equal colours) = 1/8 when colours are drawn with replacement: 100 of 800 expected, sd about 9.4
    assert 70 <= sum(equal) <= 130
    for scene, same in zip(authors, equal):
        assert (scene["negative_captions"] == [scene["caption"]]) == same


def test_authors_sampling_repeats_shapes_in_larger_scenes_and_keeps_a_hard_negative():
    scenes = generate_scenes("m", spec((3, 6), 60, sampling="authors"), 224, 224, seed=0).to_pylist()
    shapes = [[o["object"] for o in s["objects"]] for s in scenes]
    assert any(len(set(found)) < len(found) for found in shapes if len(found) == 3)
    for scene in scenes:
        (negative,) = scene["negative_captions"]
        assert binding_key(VOCABULARY.parse(negative)) != binding_key(VOCABULARY.parse(scene["caption"]))


def test_same_seed_same_scenes_other_seed_other_scenes():
    a = generate_scenes("d", spec(per_count=40), 320, 240, seed=3)
    b = generate_scenes("d", spec(per_count=40), 320, 240, seed=3)
    c = generate_scenes("d", spec(per_count=40), 320, 240, seed=4)
    assert a.equals(b)
    assert a.column("caption").to_pylist() != c.column("caption").to_pylist()


def test_caption_template_and_two_object_swap():
    assert caption([("red", "cube"), ("blue", "sphere")]) == "red cube and blue sphere"
    rng = np.random.default_rng(0)
    (negative,) = hard_negatives(rng, ["cube", "sphere"], ["red", "blue"], 1)
    assert caption(negative) == "blue cube and red sphere"


def test_captions_list_the_objects_in_order(binding, multi):
    for scene in binding + multi:
        expected = [(o["attribute"], o["object"]) for o in scene["objects"]]
        assert VOCABULARY.parse(scene["caption"]) == expected
        assert all(o["attribute"] in COLORS and o["object"] in SHAPES for o in scene["objects"])


def test_negatives_never_keep_a_colour_and_change_the_binding(binding, multi):
    for scene in binding + multi:
        positive = VOCABULARY.parse(scene["caption"])
        assert scene["negative_captions"]
        for text in scene["negative_captions"]:
            negative = VOCABULARY.parse(text)
            assert [s for _, s in negative] == [s for _, s in positive]
            assert all(cn != cp for (cn, _), (cp, _) in zip(negative, positive))
            assert Counter(c for c, _ in negative) == Counter(c for c, _ in positive)
            assert binding_key(negative) != binding_key(positive)
        assert len({binding_key(VOCABULARY.parse(t)) for t in scene["negative_captions"]}) == len(scene["negative_captions"])


def test_impossible_negatives_are_refused():
    with pytest.raises(ValueError, match="negatives_per_scene"):
        hard_negatives(np.random.default_rng(0), ["cube", "sphere"], ["red", "blue"], 2)


def test_no_split_holds_a_caption_whose_swapped_twin_is_in_another(binding, multi):
    for scenes in (binding, multi):
        split_of_binding = {}
        for scene in scenes:
            key = binding_key(VOCABULARY.parse(scene["caption"]))
            assert split_of_binding.setdefault(key, scene["split"]) == scene["split"]
        twins_checked = 0
        for scene in scenes:
            for text in scene["negative_captions"]:
                twin_split = split_of_binding.get(binding_key(VOCABULARY.parse(text)))
                if twin_split is not None:
                    twins_checked += 1
                    assert twin_split == scene["split"], (scene["caption"], text)
        assert twins_checked > 0


def test_split_sizes_follow_the_fractions(binding):
    counts = Counter(s["split"] for s in binding)
    for name, fraction in SPLITS.items():
        assert abs(counts[name] / len(binding) - fraction) < 0.05


def test_objects_are_apart_in_frame_and_unoccluded(binding, multi):
    for scene in binding + multi:
        camera = scene["camera"]
        objects = scene["objects"]
        centres = np.array([o["position"] for o in objects])
        uvd = project(centres, **camera, width=scene["image_width"], height=scene["image_height"])
        assert (uvd[:, 0] > 0).all() and (uvd[:, 0] < scene["image_width"]).all()
        assert (uvd[:, 1] > 0).all() and (uvd[:, 1] < scene["image_height"]).all()
        for i, a in enumerate(objects):
            for j, b in enumerate(objects):
                if i == j:
                    continue
                gap = np.hypot(*(np.subtract(a["position"], b["position"])[:2])) - a["radius"] - b["radius"]
                assert gap >= 0.25 - 1e-9
                clearance = segment_point_distance(camera["location"], a["position"], b["position"])
                assert clearance > bounding_radius(b["object"], b["radius"])


def test_every_object_count_is_split_on_its_own(multi):
    for n in range(3, 11):
        counts = Counter(s["split"] for s in multi if s["n_objects"] == n)
        assert counts["train"] >= 8 and counts["val"] >= 1 and counts["test"] >= 1, (n, counts)


def test_shards_are_contiguous_and_all_used(binding):
    shards = [s["shard"] for s in binding]
    assert shards == sorted(shards) and set(shards) == {0, 1, 2}
    assert all(s["image"] == f"images/shard-{s['shard']:03d}/{s['item_id']}.png" for s in binding)


def test_multi_object_counts(multi):
    assert Counter(s["n_objects"] for s in multi) == {n: 12 for n in range(3, 11)}


def test_a_longer_lens_frames_the_objects_larger_and_still_in_frame():
    from workflow_scripts.common.camera import sphere_bounds
    from workflow_scripts.datasets.placement import in_frame

    def widths(scenes):
        return [np.subtract(*sphere_bounds(o["position"], o["radius"], **s["camera"], width=64, height=64)[2::-2])
                for s in scenes for o in s["objects"]]

    wide = generate_scenes("clevr_binding", spec(per_count=100), 64, 64, seed=0).to_pylist()
    close = generate_scenes("clevr_binding", spec(per_count=100, focal_length_mm=60), 64, 64, seed=0).to_pylist()
    assert {s["camera"]["focal_length_mm"] for s in close} == {60}
    assert all(in_frame(o["position"], bounding_radius(o["object"], o["radius"]), s["camera"], 64, 64)
               for s in close for o in s["objects"])
    # the same camera position, a lens 60/35 longer: the objects' images wider by about that (1.9 for the median:
    # placement also moves them, nearer the camera's axis)
    assert 1.6 < np.median(widths(close)) / np.median(widths(wide)) < 2.2
