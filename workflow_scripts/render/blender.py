"""The Blender stage every render shares: Cycles settings, the ground, world light and three CLEVR-like area
lights, the camera, Principled BSDF rubber and metal materials in CLEVR's colours, and the object-index pass
(each object's pixels, written beside the image)."""

from contextlib import contextmanager

import bpy
from mathutils import Matrix

from workflow_scripts.common.camera import camera_matrix_world
from workflow_scripts.datasets.clevr import COLORS

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
GROUND = "ground"  # the ground plane's object name
LIGHT_PATHS = {"max_bounces": 4, "diffuse_bounces": 2, "glossy_bounces": 2}  # the schema's render.light_paths defaults


def srgb_to_linear(channel: float) -> float:
    return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4


def linear_color(name: str) -> tuple[float, float, float, float]:
    return (*(srgb_to_linear(c / 255) for c in COLORS[name]), 1.0)


def aim(obj, target=(0.0, 0.0, 0.0)) -> None:
    """Point a camera or light (which look down their local -Z) at `target`."""
    obj.matrix_world = Matrix(camera_matrix_world(tuple(obj.location), target).tolist())


STAMPS = ("use_stamp_date", "use_stamp_time", "use_stamp_render_time", "use_stamp_frame", "use_stamp_frame_range",
          "use_stamp_camera", "use_stamp_lens", "use_stamp_scene", "use_stamp_filename", "use_stamp_memory",
          "use_stamp_hostname", "use_stamp_marker", "use_stamp_note", "use_stamp_sequencer_strip")


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
    for stamp in STAMPS:  # no render date or time in the PNG: the same scene gives the same bytes
        setattr(scene.render, stamp, False)
    scene.cycles.samples = render_cfg["samples"]
    scene.cycles.use_adaptive_sampling = False
    # Cycles' light tree varied a rare pixel by a few 8-bit levels from render to render (even on one CPU); without
    # it fewer scenes vary, though a rarer one-pixel difference of unknown cause remains (README, "The lab").
    scene.cycles.use_light_tree = False
    # Diffuse and glossy objects on a plane need few bounces (render.light_paths); caustics and volumes none.
    bounces = {**LIGHT_PATHS, **render_cfg.get("light_paths", {})}
    scene.cycles.max_bounces = bounces["max_bounces"]
    scene.cycles.diffuse_bounces = bounces["diffuse_bounces"]
    scene.cycles.glossy_bounces = bounces["glossy_bounces"]
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
    ground.name = GROUND
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


def set_camera(scene, camera: dict) -> None:
    """Give the scene's camera an item's camera (location, target, focal length, sensor width)."""
    scene.camera.data.lens = camera["focal_length_mm"]
    scene.camera.data.sensor_width = camera["sensor_width_mm"]
    scene.camera.data.sensor_fit = "AUTO"
    scene.camera.matrix_world = Matrix(camera_matrix_world(camera["location"], camera["target"]).tolist())


@contextmanager
def changed(owner, **values):
    """Set attributes of a Blender datablock for the length of a `with` block, then restore them."""
    saved = {name: getattr(owner, name) for name in values}
    for name, value in values.items():
        setattr(owner, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(owner, name, value)


def index_material():
    """An emission-only material whose colour is the object's pass_index * MASK_STEP / 255: rendered raw
    (no view transform, no dither) with one centred sample per pixel, each pixel's 8-bit value is exactly that."""
    from workflow_scripts.common.masks import MASK_STEP

    material = bpy.data.materials.get("object_index")
    if material is not None:
        return material
    material = bpy.data.materials.new("object_index")
    nodes, links = material.node_tree.nodes, material.node_tree.links
    nodes.clear()
    info = nodes.new("ShaderNodeObjectInfo")
    scale = nodes.new("ShaderNodeMath")
    scale.operation = "MULTIPLY"
    scale.inputs[1].default_value = MASK_STEP / 255
    emission = nodes.new("ShaderNodeEmission")
    output = nodes.new("ShaderNodeOutputMaterial")
    links.new(info.outputs["Object Index"], scale.inputs[0])
    links.new(scale.outputs["Value"], emission.inputs["Color"])
    links.new(emission.outputs["Emission"], output.inputs["Surface"])
    return material


def render_object_index(scene, path) -> None:
    """Write the object-index pass of the current scene to `path`: an 8-bit greyscale PNG whose pixel is
    k * MASK_STEP where object k (its pass_index: caption order from 1, 0 for the ground and props) covers the
    pixel's centre, 0 elsewhere. One camera ray per pixel through its centre (pixel filter 0.01 px), no bounces, so
    occlusion is exact."""
    black = bpy.data.worlds.get("index_black") or bpy.data.worlds.new("index_black")
    if black.node_tree is not None:
        black.node_tree.nodes["Background"].inputs["Color"].default_value = (0.0, 0.0, 0.0, 1.0)
    lights = [obj for obj in scene.objects if obj.type == "LIGHT" and not obj.hide_render]
    with changed(scene.cycles, samples=1, use_denoising=False, filter_width=0.01, max_bounces=0,
                 use_adaptive_sampling=False), \
            changed(scene.view_settings, view_transform="Raw", look="None", exposure=0.0, gamma=1.0), \
            changed(scene.render, dither_intensity=0.0, filepath=str(path)), \
            changed(scene.render.image_settings, color_mode="BW"), \
            changed(scene, world=black), \
            changed(bpy.context.view_layer, material_override=index_material()):
        for light in lights:
            light.hide_render = True
        try:
            bpy.ops.render.render(write_still=True)
        finally:
            for light in lights:
                light.hide_render = False
    check_written(path)


def check_written(path) -> None:
    """Blender logs "Saved" and carries on when the disk is full, leaving an empty or truncated PNG: decode the file
    it wrote, or raise OSError naming it, so that no such shard is marked complete."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
    except (OSError, SyntaxError) as error:  # PIL raises SyntaxError for some malformed PNG chunks
        raise OSError(f"{path}: Blender wrote no readable PNG ({error}); is the disk full?") from error
