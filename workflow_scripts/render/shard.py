"""Rule `render_shard`: render one shard of a rendered dataset's item table with Blender's Cycles, in one bpy
process.

Everything in the image comes from code: the stage (blender.py), each object from the shape library
(shapes.py: CLEVR's primitives and SIMCO's procedural shapes) or, for ComCO, the mesh file the item table's
metadata names for its category (meshes.py), and per item the camera and the light jitter of its render seed.
"""

import json
import os
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import bpy
import numpy as np

from workflow_scripts.common.files import sha256_of, write_atomically
from workflow_scripts.common.masks import mask_path
from workflow_scripts.datasets.placement import object_origin
from workflow_scripts.datasets.spar import MATERIAL as TEXTURED
from workflow_scripts.render.blender import (
    GROUND,
    LIGHT_JITTER,
    LIGHTS,
    OBJECT_TAG,
    aim,
    build_stage,
    check_written,
    configure_cycles,
    object_material,
    render_object_index,
    set_camera,
)
from workflow_scripts.render.shapes import add_library_shape
from workflow_scripts.render.textures import build_worlds, set_world, texture_material


def add_object(spec: dict, material, meshes: dict):
    """Add one object row: a category with an imported mesh in `meshes` as that mesh (largest extent 2 * radius,
    standing at placement.object_origin), any other object from the shape library."""
    if spec["object"] in meshes:
        from workflow_scripts.render.meshes import add_mesh_object

        return add_mesh_object(meshes[spec["object"]], spec["radius"], object_origin(spec), spec["rotation_deg"],
                               material)
    return add_library_shape(spec, material)


def material_of(spec: dict, materials: dict):
    """An object row's material: its procedural texture (kind spar), else CLEVR's colour in rubber or metal."""
    if spec["material"] == TEXTURED:
        return texture_material(spec["attribute"], materials)
    return object_material(spec["attribute"], spec["material"], materials)


def set_scene(scene, row: dict, lights: dict, materials: dict, meshes: dict, worlds: dict | None = None) -> None:
    """Replace the previous item's objects, camera, light jitter and (where the row names one) world with this
    row's. The world sets the lights' energy before their jitter moves them."""
    for obj in [o for o in scene.objects if o.get(OBJECT_TAG)]:
        bpy.data.objects.remove(obj, do_unlink=True)
    if worlds is not None:
        set_world(worlds, row["world"])
    for index, spec in enumerate(row["objects"], start=1):  # pass_index: the object-index pass's value
        add_object(spec, material_of(spec, materials), meshes).pass_index = index
    set_camera(scene, row["camera"])
    rng = np.random.default_rng(row["render_seed"])
    for name, (location, _, _) in LIGHTS.items():
        lights[name].location = np.asarray(location) + rng.uniform(-LIGHT_JITTER, LIGHT_JITTER, 3)
        aim(lights[name])
    scene.cycles.seed = row["render_seed"] % 2**31


def render_scenes(rows: list[dict], out_dir, render_cfg: dict, threads: int = 1, progress: bool = False,
                  mesh_files: dict | None = None) -> None:
    """Render each item row (as read from the item table) to `out_dir/<item_id>.png`, and its object-index pass
    to `out_dir/<item_id>.objects.png` (common/masks.py); `mesh_files`
    {category: file} holds the meshes of a ComCO table's objects. The folder appears, complete, only at the end
    (files.write_atomically)."""
    if not rows:
        raise ValueError("no scenes to render")
    write_atomically(out_dir, lambda partial: _render_into(Path(partial), rows, render_cfg, threads, progress,
                                                           mesh_files))


def _render_into(out_dir: Path, rows, render_cfg, threads, progress, mesh_files) -> None:
    from tqdm import tqdm

    out_dir.mkdir(parents=True)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    configure_cycles(scene, render_cfg, rows[0]["image_width"], rows[0]["image_height"], threads)
    lights = build_stage(scene)
    materials, meshes = {}, {}
    worlds = build_worlds(scene, bpy.data.objects[GROUND], lights, materials) if rows[0].get("world") else None
    if mesh_files:
        from workflow_scripts.render.meshes import import_mesh

        used = {o["object"] for row in rows for o in row["objects"]}
        meshes = {c: import_mesh(path, c) for c, path in mesh_files.items() if c in used}
    for row in tqdm(rows, desc="render", unit="image", disable=not progress):
        set_scene(scene, row, lights, materials, meshes, worlds)
        image = out_dir / f"{row['item_id']}.png"
        scene.render.filepath = str(image)
        bpy.ops.render.render(write_still=True)
        check_written(image)
        render_object_index(scene, mask_path(image))


def main(snakemake) -> None:
    from workflow_scripts.common.logs import start_job
    from workflow_scripts.common.parquet import read_table
    from workflow_scripts.datasets.comco import MESHES_KEY

    logger = start_job(snakemake)
    os.dup2(sys.stderr.fileno(), 1)  # Blender prints render progress on stdout: keep it in the log
    shard = int(snakemake.wildcards.shard)
    table = read_table(snakemake.input.item_table, what="an item table", filters=[("shard", "=", shard)])
    logger.info("shard %d: %d items, render settings %s", shard, table.num_rows, snakemake.params.render)
    metadata = table.schema.metadata or {}
    mesh_files = json.loads(metadata[MESHES_KEY]) if MESHES_KEY in metadata else None
    render_scenes(table.to_pylist(), snakemake.output.images, snakemake.params.render, snakemake.threads, True,
                  mesh_files)
    write_atomically(snakemake.output.manifest, lambda partial: Path(partial).write_text(
        json.dumps(manifest_of(snakemake.output.images, table.num_rows, snakemake.params.render), indent=1)))


def manifest_of(folder, items: int, render_cfg: dict) -> dict:
    """The manifest of a finished shard (its path: datasets.items.shard_manifest): its item count, render settings and
    every file's size and sha256."""
    files = sorted(Path(folder).glob("*.png"))
    return {"items": items, "render": render_cfg,
            "files": {path.name: {"bytes": path.stat().st_size, "sha256": sha256_of(path)} for path in files}}


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
