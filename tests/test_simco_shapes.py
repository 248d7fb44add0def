"""SIMCO's 18 procedural shapes (paper B), built with real bpy: grounded, sized, tagged, and pairwise distinct.

Distinctness is the issue's acceptance test: each shape's silhouette from the contact sheet's camera is
rasterised from its triangles with numpy (through the project's own pinhole `project`), centred on its
centroid, and compared with every other shape's by intersection over union (IoU). A test against Blender's
own render (alpha of a transparent-film Cycles image) checks that the silhouettes are what Blender draws.
"""

import numpy as np
import pytest
from PIL import Image

from workflow_scripts.common.camera import project

bpy = pytest.importorskip("bpy")

from workflow_scripts.render.blender import configure_cycles, make_material, set_camera  # noqa: E402
from workflow_scripts.datasets.simco import SHAPES as SIMCO_SHAPES  # noqa: E402
from workflow_scripts.render.shapes import (  # noqa: E402
    SHEET_CAMERA, SHEET_SIZE, add_simco_shape, render_shape_sheet,
)

RES = 128  # silhouette masks, pixels a side; a large shape spans about 40-70 of them
# Two different shapes must overlap less than a compact shape does with a copy of itself 5% smaller
# (IoU 0.95^2 ~ 0.90; measured 0.86-0.90 in test_the_measure_can_fail, thin shapes lower): a pair above
# that differs by less than a 5% change of size would, which nobody would call a different shape.
MAX_IOU = 0.9


@pytest.fixture(scope="module")
def material():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return make_material("simco_test", (0.8, 0.8, 0.8, 1.0), "rubber")


def world_vertices(obj) -> np.ndarray:
    co = np.empty(len(obj.data.vertices) * 3)
    obj.data.vertices.foreach_get("co", co)
    matrix = np.array(obj.matrix_world)
    return co.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]


def silhouette(obj, camera=SHEET_CAMERA, res=RES) -> np.ndarray:
    """Boolean mask of the pixels whose centre lies inside some projected triangle of the object."""
    mesh = obj.data
    mesh.calc_loop_triangles()
    triangles = np.empty(len(mesh.loop_triangles) * 3, np.int64)
    mesh.loop_triangles.foreach_get("vertices", triangles)
    uv = project(world_vertices(obj), **camera, width=res, height=res)[:, :2][triangles.reshape(-1, 3)]
    mask = np.zeros((res, res), bool)
    for a, b, c in uv:
        low = np.clip(np.floor(np.minimum(np.minimum(a, b), c)).astype(int), 0, res)
        high = np.clip(np.ceil(np.maximum(np.maximum(a, b), c)).astype(int) + 1, 0, res)
        if (high <= low).any():
            continue
        x, y = np.meshgrid(np.arange(low[0], high[0]) + 0.5, np.arange(low[1], high[1]) + 0.5)
        edges = [(q[0] - p[0]) * (y - p[1]) - (q[1] - p[1]) * (x - p[0]) for p, q in ((a, b), (b, c), (c, a))]
        inside = ((edges[0] >= 0) & (edges[1] >= 0) & (edges[2] >= 0)) | (
            (edges[0] <= 0) & (edges[1] <= 0) & (edges[2] <= 0))
        mask[low[1]:high[1], low[0]:high[0]] |= inside
    return mask


def centred(mask) -> np.ndarray:
    assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()), "cropped by the frame"
    rows, cols = np.nonzero(mask)
    shift = (round(mask.shape[0] / 2 - rows.mean()), round(mask.shape[1] / 2 - cols.mean()))
    return np.roll(mask, shift, axis=(0, 1))


def iou(a, b) -> float:
    return float((a & b).sum() / (a | b).sum())


def shape_mask(name, material, size=SHEET_SIZE) -> np.ndarray:
    """Centred silhouette of `name` alone at the origin; the object is removed again."""
    obj = add_simco_shape(name, size, (0.0, 0.0, 0.0), 0.0, material)
    try:
        return centred(silhouette(obj))
    finally:
        bpy.data.objects.remove(obj, do_unlink=True)


def ranked_pairs(masks: dict) -> list[tuple[float, str, str]]:
    names = list(masks)
    return sorted(((iou(masks[a], masks[b]), a, b) for i, a in enumerate(names) for b in names[i + 1:]),
                  reverse=True)


@pytest.fixture(scope="module")
def masks(material):
    return {name: shape_mask(name, material) for name in SIMCO_SHAPES}


def test_the_eighteen_names_in_order():
    assert SIMCO_SHAPES == ("cube", "sphere", "cylinder", "mug", "pentagon", "heart", "cone", "pyramid", "diamond",
                            "moon", "cross", "snowflake", "leaf", "arrow", "star", "torus", "pot", "cap")


@pytest.mark.parametrize("name", SIMCO_SHAPES)
def test_shape_is_one_grounded_tagged_object_of_about_twice_size(name, material):
    size = 0.35
    before = set(bpy.context.scene.objects)
    obj = add_simco_shape(name, size, (1.0, -0.5, 0.0), 0.0, material)
    assert set(bpy.context.scene.objects) - before == {obj}
    assert obj.type == "MESH" and obj.get("scene_object") is True
    assert list(obj.data.materials) == [material]
    vertices = world_vertices(obj)
    assert abs(vertices[:, 2].min()) < 1e-3
    extent = (vertices.max(axis=0) - vertices.min(axis=0)).max()
    assert 1.2 * size <= extent <= 2.6 * size
    assert np.allclose((vertices.max(axis=0) + vertices.min(axis=0))[:2] / 2, (1.0, -0.5), atol=0.5 * size)

    turned = add_simco_shape(name, size, (0.0, 0.0, 0.25), 40.0, material)  # rests on a raised ground too
    assert abs(world_vertices(turned)[:, 2].min() - 0.25) < 1e-3
    assert np.degrees(turned.matrix_world.to_euler().z) == pytest.approx(40.0)
    for o in (obj, turned):
        bpy.data.objects.remove(o, do_unlink=True)


def test_unknown_name_raises_naming_the_valid_ones(material):
    with pytest.raises(ValueError, match="triangle") as error:
        add_simco_shape("triangle", 0.7, (0.0, 0.0, 0.0), 0.0, material)
    assert all(name in str(error.value) for name in SIMCO_SHAPES)


def test_the_measure_can_fail(material, masks):
    """A rebuilt shape matches itself exactly, a 5% smaller copy scores about MAX_IOU, and the masks are real."""
    for name in SIMCO_SHAPES:
        assert masks[name].sum() > 300, name  # hundreds of pixels: a visible shape, not a speck
        assert iou(masks[name], shape_mask(name, material)) > 0.999, name
        assert 0.85 < iou(masks[name], shape_mask(name, material, 0.95 * SHEET_SIZE)) < 0.92, name


def test_silhouettes_differ_pairwise(masks):
    pairs = ranked_pairs(masks)
    print("\nhighest silhouette IoUs (same size):", ", ".join(f"{a}-{b} {v:.3f}" for v, a, b in pairs[:5]))
    assert len(pairs) == 18 * 17 // 2
    assert pairs[0][0] < MAX_IOU, f"too alike: {pairs[:3]}"


def test_silhouettes_differ_pairwise_at_equal_area(material, masks):
    """Stricter: rescale every shape to the same silhouette area, so only the outline can tell them apart."""
    target = 2000
    equal = {name: shape_mask(name, material, SHEET_SIZE * np.sqrt(target / masks[name].sum())) for name in masks}
    assert all(abs(m.sum() / target - 1) < 0.15 for m in equal.values())
    pairs = ranked_pairs(equal)
    print("\nhighest silhouette IoUs (equal area):", ", ".join(f"{a}-{b} {v:.3f}" for v, a, b in pairs[:5]))
    assert pairs[0][0] < MAX_IOU, f"too alike: {pairs[:3]}"


def test_silhouette_matches_blenders_own_render(material, tmp_path):
    """Cycles' alpha (transparent film, no ground) covers the same pixels as the numpy silhouette."""
    res = 96
    scene = bpy.context.scene
    configure_cycles(scene, {"samples": 4, "denoise": False, "device": "CPU", "gpu_backend": "CUDA"}, res, res, 2)
    scene.render.film_transparent = True
    scene.render.image_settings.color_mode = "RGBA"
    scene.camera = bpy.data.objects.new("silhouette_camera", bpy.data.cameras.new("silhouette_camera"))
    scene.collection.objects.link(scene.camera)
    set_camera(scene, SHEET_CAMERA)
    for name in ("mug", "snowflake"):
        obj = add_simco_shape(name, SHEET_SIZE, (0.0, 0.0, 0.0), 0.0, material)
        scene.render.filepath = str(tmp_path / f"{name}.png")
        bpy.ops.render.render(write_still=True)
        alpha = np.asarray(Image.open(scene.render.filepath))[..., 3] > 127
        assert iou(alpha, silhouette(obj, res=res)) > 0.9, name
        bpy.data.objects.remove(obj, do_unlink=True)


def test_contact_sheet_has_a_tile_per_shape(tmp_path):
    out = tmp_path / "sheet.png"
    render_shape_sheet(out, resolution=32, samples=1, columns=6, denoise=False, threads=2)
    sheet = np.asarray(Image.open(out).convert("RGB"), float)
    assert sheet.shape == (3 * (32 + 14), 6 * 32, 3)
    tiles = [sheet[r * 46:r * 46 + 32, c * 32:(c + 1) * 32] for r in range(3) for c in range(6)]
    for i, tile in enumerate(tiles):  # each shape changes its tile: no two tiles are the same picture
        assert min(np.abs(tile - other).mean() for j, other in enumerate(tiles) if j != i) > 1.0
