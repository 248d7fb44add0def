"""Rule `mesh_geometry`, and ComCO's meshes in Blender: import a user's .glb/.obj/.blend file as one mesh of largest extent 2 standing
on the origin (as simco_shapes builds SIMCO's shapes), measure it for scene placement, and place copies.

Rule mesh_geometry runs `main`: it imports every configured mesh once, so a bad file stops the run, naming
it, before any scene is generated or rendered.
"""
import json
import math
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import bpy  # noqa: I001  bpy first: it makes bmesh importable
import bmesh
import numpy as np
from mathutils import Matrix

from workflow_scripts.common.files import write_atomically
from workflow_scripts.datasets.comco import MESH_SUFFIXES
from workflow_scripts.render.blender import OBJECT_TAG


def _imported_objects(path: Path) -> list:
    """Objects the file adds to bpy.data."""
    before = set(bpy.data.objects)
    suffix = path.suffix.lower()
    if suffix == ".obj":
        bpy.ops.wm.obj_import(filepath=str(path))
    elif suffix == ".glb":
        bpy.ops.import_scene.gltf(filepath=str(path))
    elif suffix == ".blend":
        with bpy.data.libraries.load(str(path)) as (source, target):
            target.objects = source.objects
        for obj in target.objects:  # linked, so that the update below computes their world matrices
            bpy.context.scene.collection.objects.link(obj)
    else:
        raise ValueError(f"unsupported suffix {suffix!r}; expected one of {MESH_SUFFIXES}")
    bpy.context.view_layer.update()
    return [o for o in bpy.data.objects if o not in before]


def import_mesh(path, name: str):
    """One mesh datablock `name` from every mesh object in the file (world transforms applied, materials
    kept), scaled to largest extent 2, its bounding box centred on the Z axis with its lowest point at z = 0.
    Linked to no object. Raises ValueError naming the file when it cannot be read or holds no geometry."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"mesh file {path} does not exist")
    try:
        objects = _imported_objects(path)
    except (RuntimeError, OSError, ValueError) as error:
        raise ValueError(f"mesh file {path} could not be imported: {error}") from None
    bm, materials = bmesh.new(), []
    for obj in objects:
        if obj.type != "MESH":
            continue
        data = obj.data.copy()
        data.transform(obj.matrix_world)
        first_face = len(bm.faces)
        bm.from_mesh(data)
        bm.faces.ensure_lookup_table()
        for face in bm.faces[first_face:]:
            face.material_index += len(materials)
        materials += list(data.materials)
        bpy.data.meshes.remove(data)
    for obj in objects:
        bpy.data.objects.remove(obj, do_unlink=True)
    coords = np.array([v.co for v in bm.verts]).reshape(-1, 3)
    extent = np.ptp(coords, axis=0).max() if len(coords) else 0.0
    if len(bm.faces) == 0 or extent <= 0:
        bm.free()
        raise ValueError(f"mesh file {path} holds no mesh with faces")
    low, high = coords.min(axis=0), coords.max(axis=0)
    centre = ((low[0] + high[0]) / 2, (low[1] + high[1]) / 2, low[2])
    bmesh.ops.transform(bm, verts=bm.verts, matrix=Matrix.Scale(2 / extent, 4) @ Matrix.Translation([-c for c in centre]))
    mesh = bpy.data.meshes.new(name)
    bm.to_mesh(mesh)
    bm.free()
    for material in materials:
        mesh.materials.append(material)
    return mesh


def geometry(mesh) -> dict:
    """The mesh's placement geometry in units of its size (placement.SIMCO_GEOMETRY's convention): footprint
    (largest distance from the Z axis), reach (largest distance from the bounding box centre) and height,
    rounded up to 4 decimals."""
    coords = np.array([v.co for v in mesh.vertices])
    height = coords[:, 2].max()
    centre = np.array([0.0, 0.0, height / 2])

    def up(x):
        return math.ceil(float(x) * 1e4) / 1e4

    return {"footprint": up(np.hypot(coords[:, 0], coords[:, 1]).max()),
            "reach": up(np.linalg.norm(coords - centre, axis=1).max()), "height": up(height)}


def add_mesh_object(mesh, radius: float, origin_xy, rotation_deg: float, material):
    """A tagged object showing `mesh` at size `radius` (largest extent 2 * radius) standing at origin_xy, turned
    about Z. A mesh without materials gets `material` (the scene's colour) on the object."""
    obj = bpy.data.objects.new(mesh.name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.location = (*origin_xy, 0.0)
    obj.scale = (radius,) * 3
    obj.rotation_euler = (0.0, 0.0, math.radians(rotation_deg))
    if not any(mesh.materials):
        if not mesh.materials:
            mesh.materials.append(None)
        obj.material_slots[0].link = "OBJECT"
        obj.material_slots[0].material = material
    obj[OBJECT_TAG] = True
    return obj


def measure_meshes(files: dict) -> dict:
    """{category: {file, sha256, footprint, reach, height}} for {category: mesh file}."""
    from workflow_scripts.common.files import sha256_of

    measured = {}
    for category, path in files.items():
        mesh = import_mesh(path, category)
        measured[category] = {"file": str(path), "sha256": sha256_of(path), **geometry(mesh)}
        bpy.data.meshes.remove(mesh)
    return measured


def main(snakemake) -> None:
    from workflow_scripts.common.logs import start_job

    logger = start_job(snakemake)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    measured = measure_meshes(snakemake.params.meshes)
    text = json.dumps(measured, indent=1)
    write_atomically(snakemake.output.geometry, lambda partial: Path(partial).write_text(text))
    logger.info("%d meshes measured: %s", len(measured), ", ".join(measured))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
