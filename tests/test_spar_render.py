"""Real Cycles renders of the PUG-style scenes (kind `spar`): the 8 procedural textures have distinct colour
statistics, the 4 worlds look different, and every object is visible where the model sees it. The 12
categories are SIMCO shapes, whose silhouettes tests/test_simco_shapes.py shows to differ pairwise."""
import itertools

import numpy as np
import pytest
from PIL import Image

from workflow_scripts.common.camera import project
from workflow_scripts.datasets import spar
from workflow_scripts.datasets.kind import ItemContext
from workflow_scripts.datasets.placement import visible_square
from workflow_scripts.datasets.simco import SHAPES as SIMCO_SHAPES

pytest.importorskip("bpy")
from workflow_scripts.render.shapes import SHEET_CAMERA  # noqa: E402
from workflow_scripts.render.shard import render_scenes  # noqa: E402

SIZE = 64
RENDER = {"samples": 16, "denoise": False, "device": "CPU", "gpu_backend": "CUDA"}
PATCH = 3  # pixels around a point that stand for it


def sheet_rows():
    """One large cube per texture at the origin, filling the middle of the contact-sheet camera's view."""
    return [{"item_id": f"texture-{name}", "image_width": SIZE, "image_height": SIZE, "render_seed": 1,
             "camera": SHEET_CAMERA,
             "objects": [{"object": "cube", "attribute": name, "material": spar.MATERIAL, "size": "large",
                          "radius": 0.7, "position": [0.0, 0.0, 0.5], "rotation_deg": 30.0}]}
            for name in spar.TEXTURES]


def scene_rows():
    """One SPAR- and one SPARE-style scene in each world, and each again without its objects."""
    found = {}
    for style in spar.STYLES:
        table, _ = spar.items(style, {"style": style, "scenes_per_count": 40, "shards": 1,
                                      "splits": {"train": 1.0, "val": 0.0, "test": 0.0}}, ItemContext(2, (SIZE, SIZE)))
        for row in table.to_pylist():
            found.setdefault((style, row["world"]), row)
    rows = [found[style, world] for style in spar.STYLES for world in spar.WORLDS]
    return rows + [{**row, "item_id": row["item_id"] + "-empty", "objects": []} for row in rows]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("spar")
    scenes = scene_rows()
    render_scenes(sheet_rows(), out / "sheet", RENDER, threads=2)
    render_scenes(scenes, out / "scenes", RENDER, threads=2)
    return out, scenes


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), float)


def patch(image, u, v) -> np.ndarray:
    u, v, h = int(round(u)), int(round(v)), PATCH // 2
    return image[v - h:v + h + 1, u - h:u + h + 1].reshape(-1, 3)


def test_every_texture_has_its_own_colour_statistics(rendered):
    """Mean and spread of each texture over the middle of its cube: every pair differs by more than 12 of 255
    levels in some channel's mean or spread."""
    out, _ = rendered
    stats = {}
    for row in sheet_rows():
        middle = pixels(out / "sheet" / f"{row['item_id']}.png")[SIZE // 2 - 6:SIZE // 2 + 6, SIZE // 2 - 6:SIZE // 2 + 6]
        middle = middle.reshape(-1, 3)
        stats[row["objects"][0]["attribute"]] = np.concatenate([middle.mean(axis=0), middle.std(axis=0)])
    print("\n" + "\n".join(f"{name:7s} mean {s[:3].round()} sd {s[3:].round()}" for name, s in stats.items()))
    for a, b in itertools.combinations(stats, 2):
        assert np.abs(stats[a] - stats[b]).max() > 12, (a, b)
    assert stats["blue"][2] > stats["blue"][0] + 40 and stats["red"][0] > stats["red"][2] + 40
    assert stats["grass"][1] > stats["grass"][2] + 20


def test_every_world_looks_different(rendered):
    """Renders of the empty stages: the mean colour of each world's image differs from every other's by more
    than 12 levels in some channel."""
    out, scenes = rendered
    means = {}
    for row in scenes:
        if not row["objects"] and row["item_id"].startswith("spar"):
            means[row["world"]] = pixels(out / "scenes" / f"{row['item_id']}.png").reshape(-1, 3).mean(axis=0)
    assert set(means) == set(spar.WORLDS)
    for a, b in itertools.combinations(means, 2):
        assert np.abs(means[a] - means[b]).max() > 12, (a, b)


def test_each_object_is_visible_where_the_model_sees_it(rendered):
    """At each object's projected position, inside the square CLIP keeps, the render differs from the same scene
    without its objects by more than 10 levels on average: the object is there, not hidden by a prop."""
    out, scenes = rendered
    left, top, right, bottom = visible_square(SIZE, SIZE)
    checked = 0
    for row in [r for r in scenes if r["objects"]]:
        full = pixels(out / "scenes" / f"{row['item_id']}.png")
        empty = pixels(out / "scenes" / f"{row['item_id']}-empty.png")
        for obj in row["objects"]:
            u, v, _ = project(obj["position"], **row["camera"], width=SIZE, height=SIZE)[0]
            assert left <= u < right and top <= v < bottom
            difference = np.abs(patch(full, u, v) - patch(empty, u, v)).mean()
            assert difference > 10, (row["item_id"], obj["object"], obj["attribute"], difference)
            checked += 1
    assert checked == 2 * len(spar.STYLES) * len(spar.WORLDS)


def test_no_prop_passes_for_a_scene_object():
    """Props are shapes that are no category, in plain colours at least 0.2 (linear RGB) from both colours of
    every texture."""
    from workflow_scripts.render.textures import TEXTURE_SETUPS, WORLD_SETUPS

    for world, (_, _, _, props) in WORLD_SETUPS.items():
        for shape, _, _, _, colour in props:
            assert shape not in spar.CATEGORIES, (world, shape)
            for texture, (_, _, dark, light, _) in TEXTURE_SETUPS.items():
                assert min(np.linalg.norm(np.subtract(colour, c)) for c in (dark, light)) > 0.2, (world, texture)


def test_the_categories_are_simco_shapes_whose_silhouettes_are_tested_distinct():
    assert set(spar.CATEGORIES) <= set(SIMCO_SHAPES) and len(set(spar.CATEGORIES)) == 12
