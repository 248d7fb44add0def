"""Objects stay inside what CLIP sees: open_clip's preprocessing keeps only the central square of a 320x240
render, and placement keeps every object's bounding sphere inside it (issue #10, item 4).

The region is read off the real preprocessing of a randomly initialised ViT-B-32 (and measured by pushing
coordinate-encoding images through it); the spheres are projected from the item tables by sampling their
surfaces, independently of placement's own sphere bounds.
"""
import numpy as np
import open_clip
import pytest
from open_clip.transform import image_transform
from torchvision import transforms as T

import workflow_scripts.datasets.placement as placement
from workflow_scripts.common.camera import look_at_rotation, project, sphere_bounds
from workflow_scripts.datasets.clevr import generate_scenes
from workflow_scripts.datasets.placement import (
    CAMERA_LOCATION,
    FRAME_MARGIN,
    SIMCO_FOCAL_LENGTH_MM,
    bounding_radius,
    camera_at,
    centre_height,
    in_frame,
    object_origin,
    visible_square,
)
from workflow_scripts.datasets.simco import generate_simco_references, generate_simco_scenes
from workflow_scripts.models.preprocessing import UnknownTransform, kept_region, measured_kept_region

SPLITS = {"train": 0.0, "val": 0.0, "test": 1.0}
# Stand-in ComCO meshes (footprint, reach, height in units of size), as ComCO measures them: long, flat, tall.
MESHES = {"bench": (1.03, 1.06, 0.5), "vase": (0.45, 1.05, 2.0), "bowl": (1.0, 1.02, 0.4), "lamp": (0.6, 1.1, 2.0),
          "box": (1.2, 1.25, 1.0), "clock": (1.0, 1.01, 1.0), "chair": (0.9, 1.2, 1.6)}


@pytest.fixture(scope="module")
def preprocess():
    _, _, transform = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    return transform


def old_in_frame(centre, reach, camera, width, height) -> bool:
    """The rule placement used before: the sphere's image (radius focal_px * reach / depth) inside the full
    frame, 2% of its larger side from the border."""
    u, v, depth = project(centre, **camera, width=width, height=height)[0]
    if depth <= reach:
        return False
    reach_px = camera["focal_length_mm"] / camera["sensor_width_mm"] * max(width, height) * reach / depth
    margin = FRAME_MARGIN * max(width, height)
    return margin + reach_px <= u <= width - margin - reach_px and margin + reach_px <= v <= height - margin - reach_px


def unit_sphere(n=4000) -> np.ndarray:
    """n nearly evenly spread points on the unit sphere (Fibonacci lattice)."""
    k = np.arange(n) + 0.5
    z = 1 - 2 * k / n
    phi = np.pi * (1 + 5 ** 0.5) * k
    r = np.sqrt(1 - z ** 2)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


SPHERE = unit_sphere()


def sampled_bounds(centre, radius, camera, width, height):
    """(u_min, v_min, u_max, v_max) of the projected surface points of a sphere."""
    uvd = project(np.asarray(centre) + radius * SPHERE, **camera, width=width, height=height)
    assert (uvd[:, 2] > 0).all()
    return uvd[:, 0].min(), uvd[:, 1].min(), uvd[:, 0].max(), uvd[:, 1].max()


def point_at_pixel(u, v, depth, camera, width, height) -> np.ndarray:
    """The world point at `depth` in front of the camera that projects to pixel (u, v)."""
    focal_px = camera["focal_length_mm"] / camera["sensor_width_mm"] * max(width, height)
    in_camera = depth * np.array([(u - width / 2) / focal_px, -(v - height / 2) / focal_px, -1.0])
    return np.asarray(camera["location"]) + look_at_rotation(camera["location"], camera["target"]) @ in_camera


def objects_outside(scenes, preprocess) -> list:
    """(item, object, sampled bounds, kept region) of every object whose bounding sphere leaves the kept region."""
    outside = []
    for scene in scenes:
        width, height = scene["image_width"], scene["image_height"]
        left, top, right, bottom = kept_region(preprocess, width, height)
        for obj in scene["objects"]:
            x, y = object_origin(obj)
            geometry = scene.get("_geometry", placement.SIMCO_GEOMETRY)
            centre = [x, y, centre_height(obj["object"], obj["radius"], geometry)]
            bounds = sampled_bounds(centre, bounding_radius(obj["object"], obj["radius"], geometry),
                                    scene["camera"], width, height)
            if not (left <= bounds[0] and bounds[2] <= right and top <= bounds[1] and bounds[3] <= bottom):
                outside.append((scene["item_id"], obj["object"], bounds, (left, top, right, bottom)))
    return outside


# ---------------------------------------------------------------- the region the preprocessing keeps

def test_kept_region_of_vit_b_32_known_answers(preprocess):
    # 320x240: resized to 298x224 (int(224 * 320 / 240)), cropped at x = round(74 / 2) = 37, so source x in
    # [37, 261) * 320 / 298 = [39.73, 280.27): the central 240x240 square [40, 280) and a fraction of a pixel.
    assert kept_region(preprocess, 320, 240) == pytest.approx((37 * 320 / 298, 0, 261 * 320 / 298, 240))
    assert kept_region(preprocess, 240, 320) == pytest.approx((0, 37 * 320 / 298, 240, 261 * 320 / 298))
    assert kept_region(preprocess, 224, 224) == (0, 0, 224, 224)
    assert kept_region(preprocess, 480, 320) == pytest.approx((80, 0, 400, 320))
    assert visible_square(320, 240) == (40, 0, 280, 240)
    assert visible_square(240, 320) == (0, 40, 240, 280)
    assert visible_square(224, 224) == (0, 0, 224, 224)


@pytest.mark.parametrize("size", [(320, 240), (240, 320), (224, 224), (480, 320), (100, 60)])
def test_kept_region_matches_the_measured_one(preprocess, size):
    measured = measured_kept_region(preprocess, *size)
    assert measured == pytest.approx(kept_region(preprocess, *size), abs=0.5)
    # The central square is kept, give or take half a model-input pixel of rounding (far less than the margin).
    slack = 0.5 * min(size) / 224
    assert slack < FRAME_MARGIN * min(size)
    kept, square = kept_region(preprocess, *size), visible_square(*size)
    assert kept[0] <= square[0] + slack and kept[1] <= square[1] + slack
    assert kept[2] >= square[2] - slack and kept[3] >= square[3] - slack


@pytest.mark.parametrize("mode, size, expected", [
    ("squash", 224, (0, 0, 320, 240)),
    ("longest", 224, (0, 0, 320, 240)),  # resized to 224x168 and padded: all of the image survives
    ("shortest", (224, 336), (0, 40 / 3, 320, 240 - 40 / 3)),  # a wide (h 224, w 336) input crops rows
])
def test_kept_region_of_other_open_clip_transforms(mode, size, expected):
    transform = image_transform(size, is_train=False, resize_mode=mode)
    assert kept_region(transform, 320, 240) == pytest.approx(expected)
    assert measured_kept_region(transform, 320, 240) == pytest.approx(expected, abs=0.5)


def test_kept_region_refuses_what_it_cannot_read():
    for step in (T.RandomResizedCrop(224), T.Lambda(lambda image: image), T.Pad(4), T.RandomCrop(224)):
        with pytest.raises(UnknownTransform, match="cannot tell which pixels survive"):
            kept_region(T.Compose([T.Resize(224), step, T.ToTensor()]), 320, 240)
    # Nested Composes and torchvision's own steps are read.
    nested = T.Compose([T.Compose([T.Resize(240), T.CenterCrop(200)]), T.ToTensor()])
    assert kept_region(nested, 320, 240) == pytest.approx((60, 20, 260, 220))


# ---------------------------------------------------------------- the sphere bounds and the rule

def test_sphere_bounds_are_exact():
    rng = np.random.default_rng(0)
    camera = camera_at(CAMERA_LOCATION, SIMCO_FOCAL_LENGTH_MM)
    for _ in range(50):
        width, height = [(320, 240), (224, 224), (240, 320)][rng.integers(3)]
        centre = point_at_pixel(*rng.uniform(0, 1, 2) * (width, height), rng.uniform(5, 15), camera, width, height)
        radius = rng.uniform(0.2, 1.5)
        exact = np.array(sphere_bounds(centre, radius, **camera, width=width, height=height))
        sampled = np.array(sampled_bounds(centre, radius, camera, width, height))
        assert np.all(exact[:2] <= sampled[:2] + 1e-9) and np.all(exact[2:] >= sampled[2:] - 1e-9)
        assert exact == pytest.approx(sampled, abs=0.1)
    assert sphere_bounds(camera["location"], 0.1, **camera, width=320, height=240) is None


def test_old_rule_accepts_a_sphere_outside_the_crop_and_the_new_one_refuses_it(preprocess):
    """Known answer: a sphere whose image is centred at x = 30 of a 320x240 frame, 16 px in radius, is inside the
    full frame's margins (6.4 px) but reaches from x = 14 to 46, left of the crop's edge at x = 39.7."""
    camera = camera_at(CAMERA_LOCATION, SIMCO_FOCAL_LENGTH_MM)
    focal_px = SIMCO_FOCAL_LENGTH_MM / 36.0 * 320
    depth, reach = 10.0, 16 * 10.0 / focal_px
    centre = point_at_pixel(30, 120, depth, camera, 320, 240)
    assert old_in_frame(centre, reach, camera, 320, 240)
    left = kept_region(preprocess, 320, 240)[0]
    assert sphere_bounds(centre, reach, **camera, width=320, height=240)[0] < left
    assert not in_frame(centre, reach, camera, 320, 240)
    # Moved into the crop, it is accepted; at 224x224 (nothing cropped) both rules accept it near the edge.
    assert in_frame(point_at_pixel(160, 120, depth, camera, 320, 240), reach, camera, 320, 240)
    near_edge = point_at_pixel(30, 112, depth, camera, 224, 224)
    assert in_frame(near_edge, reach, camera, 224, 224) and old_in_frame(near_edge, reach, camera, 224, 224)


# ---------------------------------------------------------------- the generated scenes

def simco_spec(layout, counts=(2, 3, 4, 5), per_count=30):
    return {"objects_per_scene": list(counts), "scenes_per_count": per_count, "shards": 1, "layout": layout,
            "splits": SPLITS}


def clevr_spec(counts, per_count):
    return {"objects_per_scene": list(counts), "scenes_per_count": per_count, "negatives_per_scene": 1,
            "sampling": "authors", "shards": 1, "splits": {"train": 0.8, "val": 0.1, "test": 0.1}}


def comco_scenes(layout, width, height):
    table = generate_simco_scenes("comco_check", simco_spec(layout, per_count=10), width, height, seed=0,
                                  vocabulary=tuple(MESHES), geometry=MESHES).to_pylist()
    return [{**scene, "_geometry": MESHES} for scene in table]


@pytest.mark.parametrize("width, height", [(320, 240), (224, 224), (240, 320)])
def test_every_object_lies_inside_what_clip_sees(preprocess, width, height):
    scenes = (
        generate_simco_scenes("simco_large", simco_spec("one_large"), width, height, seed=0).to_pylist()
        + generate_simco_scenes("simco_mixed", simco_spec("mixed", per_count=10), width, height, seed=0).to_pylist()
        + generate_simco_references("simco_references", width, height, seed=0).to_pylist()
        + generate_scenes("clevr_multi", clevr_spec((2, 6, 10), 10), width, height, seed=0).to_pylist()
        + comco_scenes("one_large", width, height)
    )
    assert sum(len(s["objects"]) for s in scenes) > 600
    assert objects_outside(scenes, preprocess) == []


def test_the_check_fails_under_the_old_rule(preprocess, monkeypatch):
    """The same check on one-large SIMCO scenes placed by the old rule: about one object in eight (one large
    object in five) reaches past the crop."""
    monkeypatch.setattr(placement, "in_frame", old_in_frame)
    scenes = generate_simco_scenes("simco_large", simco_spec("one_large"), 320, 240, seed=0).to_pylist()
    outside = objects_outside(scenes, preprocess)
    n_objects = sum(len(s["objects"]) for s in scenes)
    assert 0.05 < len(outside) / n_objects < 0.25, (len(outside), n_objects)


@pytest.mark.parametrize("width, height", [(320, 240), (224, 224)])
def test_ten_object_clevr_scenes_still_fit(width, height):
    scenes = generate_scenes("clevr_ten", clevr_spec((10,), 30), width, height, seed=1).to_pylist()
    assert len(scenes) == 30 and all(s["n_objects"] == 10 for s in scenes)
