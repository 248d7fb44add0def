"""Render one shard of a CLEVR-style or SIMCO scene table with Blender's Cycles, in one bpy process.

Everything in the image comes from code: primitives (CLEVR's three shapes) and procedural meshes (the other
SIMCO shapes, workflow_scripts/simco_shapes.py), Principled BSDF rubber and metal, a ground plane, three
area lights jittered by the scene's render seed, and the scene's own camera.
"""

import os
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

import bpy
import numpy as np
from mathutils import Matrix

from workflow_scripts.camera import camera_matrix_world
from workflow_scripts.scenes import COLORS, SHAPES, centre_height, object_origin

# (location, energy in W, area size) of CLEVR-like key, fill and back lights, each aimed at the origin.
LIGHTS = {
    "key": ((6.4, -2.9, 4.2), 300.0, 1.5),
    "fill": ((-4.7, -4.0, 3.0), 100.0, 2.0),
    "back": ((-1.2, 2.7, 5.3), 200.0, 1.5),
}
LIGHT_JITTER = 1.0
GROUND_GRAY = 0.35
WORLD_GRAY = 0.05
OBJECT_TAG = "scene_object"


def srgb_to_linear(channel: float) -> float:
    return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4


def linear_color(name: str) -> tuple[float, float, float, float]:
    return (*(srgb_to_linear(c / 255) for c in COLORS[name]), 1.0)


def aim(obj, target=(0.0, 0.0, 0.0)) -> None:
    """Point a camera or light (which look down their local -Z) at `target`."""
    obj.matrix_world = Matrix(camera_matrix_world(tuple(obj.location), target).tolist())


def configure_cycles(scene, render_cfg: dict, width: int, height: int, threads: int) -> None:
    scene.render.engine = "CYCLES"
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.render.image_settings.color_depth = "8"
    scene.render.use_file_extension = False
    scene.render.threads_mode = "FIXED"
    scene.render.threads = max(1, threads)
    scene.view_settings.view_transform = "Standard"  # keep CLEVR's colours recognisable
    scene.cycles.samples = render_cfg["samples"]
    scene.cycles.use_adaptive_sampling = False
    # Diffuse and glossy objects on a plane need few bounces; caustics and volumes none.
    scene.cycles.max_bounces = 4
    scene.cycles.diffuse_bounces = 2
    scene.cycles.glossy_bounces = 2
    scene.cycles.transmission_bounces = 0
    scene.cycles.volume_bounces = 0
    scene.cycles.transparent_max_bounces = 0
    scene.cycles.caustics_reflective = False
    scene.cycles.caustics_refractive = False
    scene.cycles.use_denoising = render_cfg["denoise"]
    if render_cfg["denoise"]:
        scene.cycles.denoiser = "OPENIMAGEDENOISE"
    scene.cycles.device = render_cfg["device"]
    if render_cfg["device"] == "GPU":
        enable_gpu(render_cfg["gpu_backend"])


def enable_gpu(backend: str) -> None:
    """Switch Cycles to every `backend` device (CUDA, OPTIX, HIP, ONEAPI, METAL), or fail naming it."""
    preferences = bpy.context.preferences.addons["cycles"].preferences
    preferences.compute_device_type = backend
    preferences.refresh_devices()
    devices = [d for d in preferences.devices if d.type == backend]
    if not devices:
        raise RuntimeError(
            f"config render.device is GPU, but Cycles finds no {backend} device here; "
            "set render.gpu_backend to this machine's backend or render.device to CPU"
        )
    for device in preferences.devices:
        device.use = device.type == backend


def build_stage(scene) -> dict:
    """Ground plane, world light and the three area lights; returns the lights by name."""
    world = bpy.data.worlds.new("world")
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (WORLD_GRAY,) * 3 + (1.0,)
    scene.world = world

    bpy.ops.mesh.primitive_plane_add(size=400.0)
    ground = bpy.context.active_object
    ground.data.materials.append(make_material("ground", (GROUND_GRAY,) * 3 + (1.0,), "rubber"))

    lights = {}
    for name, (_, energy, size) in LIGHTS.items():
        data = bpy.data.lights.new(name, type="AREA")
        data.energy, data.size = energy, size
        lights[name] = bpy.data.objects.new(name, data)
        scene.collection.objects.link(lights[name])

    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    scene.collection.objects.link(camera)
    scene.camera = camera
    return lights


def make_material(name: str, base_color, kind: str):
    material = bpy.data.materials.new(name)
    bsdf = material.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = base_color
    bsdf.inputs["Metallic"].default_value = 1.0 if kind == "metal" else 0.0
    bsdf.inputs["Roughness"].default_value = 0.25 if kind == "metal" else 0.8
    return material


def object_material(color: str, kind: str, cache: dict):
    key = (color, kind)
    if key not in cache:
        cache[key] = make_material(f"{color}_{kind}", linear_color(color), kind)
    return cache[key]


def add_object(spec: dict, material, meshes: dict) -> None:
    """Add one object row's shape: a ComCO category as its imported mesh (`meshes`) and any other non-CLEVR
    (SIMCO) shape as simco_shapes' mesh, both of largest extent 2 * radius standing on the ground at
    scenes.object_origin (the row's position is then a point on it, not necessarily its centre); CLEVR's
    shapes as CLEVR primitives centred on the row's position."""
    shape, radius = spec["shape"], spec["radius"]
    if shape in meshes:
        from workflow_scripts.meshes import add_mesh_object

        add_mesh_object(meshes[shape], radius, object_origin(spec), spec["rotation_deg"], material)
        return
    if shape not in SHAPES:
        from workflow_scripts.simco_shapes import add_simco_shape  # simco_shapes imports this module

        x, y = object_origin(spec)
        add_simco_shape(shape, radius, (x, y, 0.0), spec["rotation_deg"], material)
        return
    x, y, _ = spec["position"]
    location = (x, y, centre_height(shape, radius))
    rotation = (0.0, 0.0, np.radians(spec["rotation_deg"]))
    if shape == "cube":
        bpy.ops.mesh.primitive_cube_add(size=2 * centre_height(shape, radius), location=location, rotation=rotation)
    elif shape == "sphere":
        bpy.ops.mesh.primitive_uv_sphere_add(radius=radius, segments=48, ring_count=24, location=location)
    elif shape == "cylinder":
        bpy.ops.mesh.primitive_cylinder_add(
            radius=radius, depth=2 * radius, vertices=48, location=location, rotation=rotation
        )
    else:
        raise ValueError(f"unknown shape {shape!r}")
    obj = bpy.context.active_object
    if shape != "cube":
        bpy.ops.object.shade_smooth()
    obj.data.materials.append(material)
    obj[OBJECT_TAG] = True


def set_scene(scene, row: dict, lights: dict, materials: dict, meshes: dict) -> None:
    """Replace the previous scene's objects, camera and light jitter with this row's."""
    for obj in [o for o in scene.objects if o.get(OBJECT_TAG)]:
        bpy.data.objects.remove(obj, do_unlink=True)
    for spec in row["objects"]:
        add_object(spec, object_material(spec["color"], spec["material"], materials), meshes)

    camera = row["camera"]
    scene.camera.data.lens = camera["focal_length_mm"]
    scene.camera.data.sensor_width = camera["sensor_width_mm"]
    scene.camera.data.sensor_fit = "AUTO"
    scene.camera.matrix_world = Matrix(camera_matrix_world(camera["location"], camera["target"]).tolist())

    rng = np.random.default_rng(row["render_seed"])
    for name, (location, _, _) in LIGHTS.items():
        lights[name].location = np.asarray(location) + rng.uniform(-LIGHT_JITTER, LIGHT_JITTER, 3)
        aim(lights[name])
    scene.cycles.seed = row["render_seed"] % 2**31


def render_scenes(rows: list[dict], out_dir, render_cfg: dict, threads: int = 1, progress: bool = False,
                  mesh_files: dict | None = None) -> None:
    """Render each scene row (as read from the scene table) to `out_dir/<scene_id>.png`; `mesh_files`
    {category: file} holds the meshes of a ComCO table's objects."""
    from tqdm import tqdm

    if not rows:
        raise ValueError("no scenes to render")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    configure_cycles(scene, render_cfg, rows[0]["image_width"], rows[0]["image_height"], threads)
    lights = build_stage(scene)
    materials, meshes = {}, {}
    if mesh_files:
        from workflow_scripts.meshes import import_mesh

        used = {o["shape"] for row in rows for o in row["objects"]}
        meshes = {c: import_mesh(path, c) for c, path in mesh_files.items() if c in used}
    for row in tqdm(rows, desc="render", unit="image", disable=not progress):
        set_scene(scene, row, lights, materials, meshes)
        target = out_dir / f"{row['scene_id']}.png"
        partial = out_dir / f".{row['scene_id']}.partial.png"
        scene.render.filepath = str(partial)
        bpy.ops.render.render(write_still=True)
        os.replace(partial, target)


def main(snakemake) -> None:
    import pyarrow.parquet as pq

    from workflow_scripts.rule_logging import log_to

    logger = log_to(snakemake.log[0])
    os.dup2(sys.stderr.fileno(), 1)  # Blender prints render progress on stdout: keep it in the log
    shard = int(snakemake.wildcards.shard)
    table = pq.read_table(snakemake.input.scenes, filters=[("shard", "=", shard)])
    logger.info("shard %d: %d scenes, render settings %s", shard, table.num_rows, snakemake.params.render)
    mesh_files = None
    if snakemake.input.meshes:
        import json

        mesh_files = {c: m["file"] for c, m in json.loads(Path(snakemake.input.meshes[0]).read_text()).items()}
    render_scenes(table.to_pylist(), snakemake.output.images, snakemake.params.render, snakemake.threads, True,
                  mesh_files)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
