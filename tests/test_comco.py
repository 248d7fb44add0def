"""ComCO: user meshes of COCO categories, found by name, imported and measured with Blender, placed by the
SIMCO scene generator and rendered. The meshes are written here by Blender in the three accepted formats."""
import json
import math

import bpy
import numpy as np
import pytest
from PIL import Image

from test_simco_scenes import nearest_colors
from workflow_scripts.common.camera import project
from workflow_scripts.datasets.comco import mesh_files
from workflow_scripts.datasets.clevr import COLORS
from workflow_scripts.datasets.comco import KIND as COMCO
from workflow_scripts.datasets.comco import MESHES_KEY
from workflow_scripts.datasets.kind import ItemContext
from workflow_scripts.render.meshes import geometry, import_mesh, measure_meshes
from workflow_scripts.render.shard import render_scenes

# Box dimensions (x, y, z) per category, and the format each is written in.
BOXES = {
    "teddy_bear": ((2.0, 1.0, 0.5), ".glb"),
    "fire_hydrant": ((0.6, 0.6, 1.5), ".obj"),
    "clock": ((1.0, 0.2, 1.0), ".blend"),
    "cake": ((1.0, 1.0, 0.7), ".obj"),
    "vase": ((0.5, 0.5, 1.2), ".glb"),
    "bowl": ((1.2, 1.2, 0.5), ".blend"),
}


def write_box(path, dims, rotation_deg=0.0):
    """A box of `dims` (after the object's own transform, which .blend files keep unapplied) saved to `path`."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.mesh.primitive_cube_add(size=1.0)
    obj = bpy.context.active_object
    obj.scale = dims
    obj.rotation_euler = (0.0, 0.0, math.radians(rotation_deg))
    if path.suffix == ".obj":
        bpy.ops.wm.obj_export(filepath=str(path), export_materials=False)
    elif path.suffix == ".glb":
        bpy.ops.export_scene.gltf(filepath=str(path))
    else:
        bpy.ops.wm.save_as_mainfile(filepath=str(path))


@pytest.fixture(scope="module")
def mesh_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("comco_meshes")
    for name, (dims, suffix) in BOXES.items():
        write_box(folder / f"{name}{suffix}", dims)
    (folder / "README.txt").write_text("not a mesh")
    return folder


def box_geometry(dims) -> dict:
    """Known answer: a box scaled to largest extent 2, standing on the ground, centred on the Z axis."""
    x, y, z = np.array(dims) * 2 / max(dims)
    return {"footprint": math.hypot(x / 2, y / 2), "reach": math.sqrt((x / 2) ** 2 + (y / 2) ** 2 + (z / 2) ** 2),
            "height": z}


def test_categories_come_from_file_names(mesh_folder):
    files = mesh_files(mesh_folder)
    assert list(files) == sorted(n.replace("_", " ") for n in BOXES)
    assert files["teddy bear"].name == "teddy_bear.glb"
    assert list(mesh_files(mesh_folder, ["vase", "fire hydrant"])) == ["vase", "fire hydrant"]


def test_a_missing_category_names_the_file_it_expects(mesh_folder):
    with pytest.raises(FileNotFoundError, match=r"'traffic light'.*traffic_light\.glb"):
        mesh_files(mesh_folder, ["vase", "traffic light"])


def test_two_files_of_one_category_are_refused(mesh_folder, tmp_path):
    for suffix in (".obj", ".glb"):
        (tmp_path / f"vase{suffix}").write_bytes((mesh_folder / "vase.glb").read_bytes())
    with pytest.raises(ValueError, match="two mesh files for category 'vase'"):
        mesh_files(tmp_path)


@pytest.mark.parametrize("name", list(BOXES))
def test_each_format_imports_at_unit_size_with_its_measured_geometry(mesh_folder, name):
    dims, suffix = BOXES[name]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    mesh = import_mesh(mesh_folder / f"{name}{suffix}", name)
    coords = np.array([v.co for v in mesh.vertices])
    assert np.ptp(coords, axis=0).max() == pytest.approx(2.0)
    assert coords[:, 2].min() == pytest.approx(0.0, abs=1e-6)
    assert (coords[:, :2].min(axis=0) + coords[:, :2].max(axis=0)) == pytest.approx([0.0, 0.0], abs=1e-6)
    expected = box_geometry(dims)
    measured = geometry(mesh)
    for key, value in expected.items():  # rounded up to 4 decimals
        assert value - 1e-6 <= measured[key] <= value + 1.01e-4, key
    assert len(bpy.data.objects) == 0, "the importer's objects are removed"


def test_a_blend_file_keeps_its_object_rotation(tmp_path):
    write_box(tmp_path / "clock.blend", (1.0, 0.2, 1.0), rotation_deg=90.0)  # turned: 0.2 wide along x
    bpy.ops.wm.read_factory_settings(use_empty=True)
    coords = np.array([v.co for v in import_mesh(tmp_path / "clock.blend", "clock").vertices])
    assert np.ptp(coords, axis=0) == pytest.approx([0.4, 2.0, 2.0], abs=1e-5)


@pytest.mark.parametrize("content, message", [(b"not a gltf file", "could not be imported"),
                                              (b"v 0 0 0\nv 1 0 0\n", "holds no mesh with faces")])
def test_a_bad_file_is_named(tmp_path, content, message):
    path = tmp_path / ("broken.glb" if content.startswith(b"not") else "points.obj")
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as error:
        measure_meshes({"broken": path})
    assert str(path) in str(error.value)


WIDTH = HEIGHT = 96


@pytest.fixture(scope="module")
def comco_rows(mesh_folder, tmp_path_factory):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    measured = measure_meshes(mesh_files(mesh_folder))
    table_path = tmp_path_factory.mktemp("comco") / "meshes.json"
    table_path.write_text(json.dumps(measured))
    spec = {"kind": "comco", "objects_per_scene": [3, 4], "scenes_per_count": 1, "shards": 1,
            "layout": "one_large", "splits": {"train": 0.0, "val": 0.0, "test": 1.0}}
    context = ItemContext(seed=0, resolution=(WIDTH, HEIGHT), inputs={"meshes": str(table_path)})
    scenes, vocabulary = COMCO.items("comco_test", spec, context)
    references, _ = COMCO.references("comco_test-references", {"kind": "comco"}, context)
    files = {c: m["file"] for c, m in measured.items()}
    assert vocabulary.objects == tuple(files)
    assert json.loads(scenes.schema.metadata[MESHES_KEY]) == files  # where the renderer finds the meshes
    return scenes.to_pylist(), references.to_pylist(), files


def test_comco_scenes_use_the_mesh_categories(comco_rows):
    scenes, references, files = comco_rows
    assert [r["caption"] for r in references] == list(files)
    for scene in scenes:
        names = [o["object"] for o in scene["objects"]]
        assert scene["caption"] == " and ".join(names) and set(names) <= set(files)
        assert [o["size"] for o in scene["objects"]].count("large") == 1


def test_rendered_meshes_show_their_colour_at_their_positions(comco_rows, tmp_path):
    scenes, references, files = comco_rows
    rows = scenes + references[:2]
    render_scenes(rows, tmp_path, {"samples": 8, "denoise": True, "device": "CPU", "gpu_backend": "CUDA"}, 2,
                  mesh_files=files)
    # The boxes' flat faces catch the lights' highlights, which wash their colour out towards the ground's
    # gray: name the pixel's colour among the colours other than gray.
    names = [name for name in COLORS if name != "gray"]
    checked = 0
    for row in rows:
        image = np.asarray(Image.open(tmp_path / f"{row['item_id']}.png").convert("RGB"), float)
        uvd = project([o["position"] for o in row["objects"]], **row["camera"], width=WIDTH, height=HEIGHT)
        for obj, (u, v, _) in zip(row["objects"], uvd):
            if obj["attribute"] != "gray":
                assert names[nearest_colors(image[int(v), int(u)], names)] == obj["attribute"], (row["caption"], obj)
                checked += 1
    assert checked >= 7
