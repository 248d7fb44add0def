"""The renderer's shape library: CLEVR's three primitives as CLEVR builds them, and SIMCO's 18 simple shapes
(paper B) built procedurally with bmesh (`add_library_shape` adds either for an item's object row).

Every builder describes its shape in arbitrary units; `_finish` then scales it so its largest extent is
2 * size (CLEVR's large objects have radius size = 0.7), puts its lowest point on the ground, gives it the
material and the renderer's `scene_object` tag, and returns ONE mesh object. Shapes built from flat
outlines (pentagon, heart, moon, cross, snowflake, leaf, arrow, star) stand upright in the XZ plane, so
at rotation_deg = 0 their outline faces -Y; rotate them towards the camera to show the outline.
"""

import math
import os
import tempfile
from pathlib import Path

import bpy  # before bmesh, which bpy puts on the path
import bmesh  # noqa: I001
import numpy as np
from mathutils import Matrix, Vector

from workflow_scripts.datasets.placement import CLEVR_PRIMITIVES, centre_height, object_origin
from workflow_scripts.datasets.simco import SHAPES as SIMCO_SHAPES
from workflow_scripts.render.blender import (
    LIGHTS,
    OBJECT_TAG,
    aim,
    build_stage,
    configure_cycles,
    linear_color,
    make_material,
    set_camera,
)

SEGMENTS = 48  # around round shapes
FLAT_DEPTH = 0.4  # thickness of extruded outlines, in outline units (outlines span about 2)
UPRIGHT = Matrix.Rotation(math.pi / 2, 4, "X")  # outline plane XY -> XZ: outline y becomes height


def _orbit(azimuth_deg: float, elevation_deg: float, distance: float, target) -> list[float]:
    """Camera location `distance` from `target`, azimuth measured from -Y towards +X."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    offset = (distance * math.cos(el) * math.sin(az), -distance * math.cos(el) * math.cos(az),
              distance * math.sin(el))
    return [t + o for t, o in zip(target, offset)]


# One shape of size SHEET_SIZE at the origin, seen a little from the side and above (as in CLEVR).
SHEET_SIZE = 0.7
_SHEET_TARGET = (0.0, 0.0, 0.55)
SHEET_CAMERA = {
    "location": _orbit(25.0, 28.0, 4.2, _SHEET_TARGET),
    "target": list(_SHEET_TARGET),
    "focal_length_mm": 50.0,
    "sensor_width_mm": 36.0,
}
SHEET_COLORS = ("red", "blue", "green", "yellow", "purple", "cyan", "brown", "gray")


# ---------------------------------------------------------------- geometry helpers (all into one bmesh)

def _lathe(bm, profile, segments=SEGMENTS, matrix=None, sweep=None, closed=False) -> None:
    """Spin a (radius, height) profile about the Z axis; points with radius 0 become poles.

    `sweep` = (start, end) angles in radians for a partial (open) lathe; `closed` joins the last
    profile point back to the first (a torus's circle). A profile climbing the outside gives outward normals.
    """
    if sweep is None:
        angles = np.linspace(0.0, 2 * math.pi, segments, endpoint=False)
    else:
        angles = np.linspace(sweep[0], sweep[1], segments + 1)
    rings = []
    for r, z in profile:
        points = [(0.0, 0.0, z)] if r < 1e-9 else [(r * math.cos(a), r * math.sin(a), z) for a in angles]
        rings.append([bm.verts.new(matrix @ Vector(p) if matrix is not None else p) for p in points])
    pairs = list(zip(rings, rings[1:])) + ([(rings[-1], rings[0])] if closed else [])
    for lower, upper in pairs:
        for i in range(segments):
            j = (i + 1) % len(angles)
            quad = [lower[i % len(lower)], lower[j % len(lower)], upper[j % len(upper)], upper[i % len(upper)]]
            face = [v for k, v in enumerate(quad) if v is not quad[k - 1]]
            if len(face) >= 3:
                bm.faces.new(face)


def _extrude_outlines(bm, outlines, depth=FLAT_DEPTH, matrix=UPRIGHT, depths=None) -> None:
    """Prisms of thickness `depth` (centred on the XY plane) over 2D outlines, moved by `matrix`.

    Each outline is a closed polygon, any winding, concave allowed. Outlines may overlap (one sees their
    union), but then give them slightly different `depths` (factors of `depth`): coplanar overlapping
    faces render with speckles.
    """
    for outline, factor in zip(outlines, depths or [1.0] * len(outlines)):
        depth_here = depth * factor
        xy = np.asarray(outline, float)
        x, y = xy[:, 0], xy[:, 1]
        if np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) < 0:  # make it counter-clockwise: normals outward
            xy = xy[::-1]
        bottom = [bm.verts.new(matrix @ Vector((px, py, -depth_here / 2))) for px, py in xy]
        top = [bm.verts.new(matrix @ Vector((px, py, depth_here / 2))) for px, py in xy]
        bm.faces.new(top)
        bm.faces.new(bottom[::-1])
        for i in range(len(xy)):
            j = (i + 1) % len(xy)
            bm.faces.new((bottom[i], bottom[j], top[j], top[i]))


def _circle(n, radius=1.0, start_deg=90.0):
    """Regular n-gon outline, first corner at `start_deg` (90: pointing up)."""
    angles = np.radians(start_deg) + np.linspace(0, 2 * math.pi, n, endpoint=False)
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _rotate2d(points, degrees):
    a = math.radians(degrees)
    return np.asarray(points, float) @ np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])


def _bar(start, end, half_width):
    """Rectangle outline of a bar from `start` to `end`."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    direction = (end - start) / np.linalg.norm(end - start)
    normal = np.array([-direction[1], direction[0]]) * half_width
    return [start - normal, end - normal, end + normal, start + normal]


# ---------------------------------------------------------------- the shapes (arbitrary units)

def _cube(bm):
    bmesh.ops.create_cube(bm, size=2.0)
    return False  # flat shading


def _sphere(bm):
    bmesh.ops.create_uvsphere(bm, u_segments=SEGMENTS, v_segments=SEGMENTS // 2, radius=1.0)


def _cylinder(bm):
    bmesh.ops.create_cone(bm, cap_ends=True, segments=SEGMENTS, radius1=1.0, radius2=1.0, depth=2.0)


def _cone(bm):
    bmesh.ops.create_cone(bm, cap_ends=True, segments=SEGMENTS, radius1=1.0, radius2=0.0, depth=2.0)


def _pyramid(bm):  # square base (faces towards +-X and +-Y), a little steeper than Giza
    bmesh.ops.create_cone(bm, cap_ends=True, segments=4, radius1=math.sqrt(2), radius2=0.0, depth=1.5,
                          matrix=Matrix.Rotation(math.pi / 4, 4, "Z"))
    return False


def _diamond(bm):  # brilliant-like: octagonal table and crown over a pointed pavilion, standing on its tip
    _lathe(bm, [(0.0, 0.0), (1.0, 0.95), (1.0, 1.03), (0.58, 1.4), (0.0, 1.4)], segments=8,
           matrix=Matrix.Rotation(math.pi / 8, 4, "Z"))
    return False


def _torus(bm):  # lying flat, like a doughnut on a table
    t = np.linspace(0, 2 * math.pi, 24, endpoint=False)
    _lathe(bm, list(zip(0.72 + 0.28 * np.cos(t), 0.28 * np.sin(t))), closed=True)


def _mug(bm):  # hollow cylinder with a base, and a half-torus handle on the +X side
    radius, height, wall = 0.62, 1.3, 0.07
    _lathe(bm, [(0.0, 0.0), (radius, 0.0), (radius, height), (radius - wall, height),
                (radius - wall, 0.1), (0.0, 0.1)])
    t = np.linspace(0, 2 * math.pi, 16, endpoint=False)
    _lathe(bm, list(zip(0.36 + 0.08 * np.cos(t), 0.08 * np.sin(t))), segments=24, closed=True,
           sweep=(-math.pi / 2, math.pi / 2),
           matrix=Matrix.Translation((radius - 0.04, 0.0, 0.55 * height)) @ UPRIGHT)


def _pot(bm):  # lathed clay pot: small foot, round belly, neck, flared lip, open mouth
    belly = np.linspace(0.0, 1.0, 14)
    profile = [(0.0, 0.0), (0.42, 0.0), (0.45, 0.04)]
    profile += list(zip(0.45 + 0.55 * np.sin(math.pi * belly) ** 0.8, 0.06 + 1.04 * belly))[1:]
    profile += [(0.41, 1.22), (0.5, 1.37), (0.66, 1.45), (0.66, 1.5), (0.56, 1.5), (0.37, 1.3), (0.36, 1.15),
                (0.0, 1.15)]
    _lathe(bm, profile)


def _cap(bm):  # baseball cap: squashed dome with a button, and a visor towards +X
    t = np.linspace(0, math.pi / 2, 12)[1:]
    _lathe(bm, [(0.0, 0.0), (1.0, 0.0)] + list(zip(np.cos(t), 0.8 * np.sin(t))))
    bmesh.ops.create_uvsphere(bm, u_segments=12, v_segments=6, radius=0.09, matrix=Matrix.Translation((0, 0, 0.8)))
    y = np.linspace(-0.9, 0.9, 25)
    inner = 0.97 * np.sqrt(1 - y**2)
    outer = inner + 0.75 * np.sqrt(1 - (y / 0.9) ** 2)
    visor = np.concatenate([np.stack([outer, y], 1), np.stack([inner, y], 1)[::-1][1:-1]])
    hinge = Matrix.Translation((0.9, 0.0, 0.0))  # visor lies flat, dipping 6 degrees from the dome's rim
    tilt = Matrix.Translation((0.0, 0.0, 0.11)) @ hinge @ Matrix.Rotation(math.radians(6), 4, "Y") @ hinge.inverted()
    _extrude_outlines(bm, [visor], depth=0.06, matrix=tilt)


def _pentagon(bm):
    _extrude_outlines(bm, [_circle(5)])


def _star(bm):
    radii = np.tile([1.0, 0.45], 5)
    _extrude_outlines(bm, [_circle(10) * radii[:, None]])


def _heart(bm):
    t = np.linspace(0, 2 * math.pi, 96, endpoint=False)
    _extrude_outlines(bm, [np.stack([16 * np.sin(t) ** 3, 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t)
                                     - np.cos(4 * t)], 1) / 16])


def _moon(bm):  # crescent: unit disc minus a disc of radius 0.9 shifted right by 0.45, horns to the right
    big, small, shift = 1.0, 0.9, 0.45
    x = (shift**2 + big**2 - small**2) / (2 * shift)
    outer = math.atan2(math.sqrt(big**2 - x**2), x)
    inner = math.atan2(math.sqrt(big**2 - x**2), x - shift)
    a = np.linspace(outer, 2 * math.pi - outer, 40)
    b = np.linspace(2 * math.pi - inner, inner, 40)[1:-1]
    crescent = np.concatenate([np.stack([np.cos(a), np.sin(a)], 1),
                               np.stack([shift + small * np.cos(b), small * np.sin(b)], 1)])
    _extrude_outlines(bm, [_rotate2d(crescent, 15)])


def _cross(bm):  # Latin cross
    w, arm, mid = 0.2, 0.55, 0.35
    _extrude_outlines(bm, [[(-w, -1), (w, -1), (w, mid - w), (arm, mid - w), (arm, mid + w), (w, mid + w),
                            (w, 0.9), (-w, 0.9), (-w, mid + w), (-arm, mid + w), (-arm, mid - w), (-w, mid - w)]])


def _arrow(bm):  # pointing right (+X)
    shaft, head, neck = 0.17, 0.5, 0.15
    _extrude_outlines(bm, [[(-1, -shaft), (neck, -shaft), (neck, -head), (1, 0), (neck, head), (neck, shaft),
                            (-1, shaft)]])


def _leaf(bm):  # thin pointed blade with a raised midrib and a stem, tilted like a drawn leaf
    t = np.linspace(0, math.pi, 24)
    right = np.stack([0.42 * np.sin(t) * (1 - 0.25 * np.cos(t)), -0.75 + 1.6 * t / math.pi], 1)
    blade = np.concatenate([right, right[::-1][1:-1] * [-1, 1]])
    parts = [blade, _bar((0, -0.7), (0, 0.6), 0.025), _bar((0, -0.72), (0, -1.05), 0.05)]
    _extrude_outlines(bm, [_rotate2d(part, -35) for part in parts], depths=[0.45, 0.65, 0.55])


def _snowflake(bm):  # six arms with two pairs of side branches each, arms at top and bottom
    parts, depths = [_circle(6, 0.22)], [1.06]  # thicker hub, then arms, then thinner branches
    for k in range(6):
        axis = np.array([math.cos(math.radians(90 + 60 * k)), math.sin(math.radians(90 + 60 * k))])
        parts.append(_bar(0.1 * axis, 1.0 * axis, 0.07))
        depths.append(1.0)
        for along, length in ((0.45, 0.32), (0.72, 0.22)):
            for side in (-1, 1):
                branch = _rotate2d(axis[None], side * 50)[0]
                parts.append(_bar(along * axis, (along * axis) + length * branch, 0.055))
                depths.append(0.94)
    _extrude_outlines(bm, parts, depths=depths)


BUILDERS = {
    "cube": _cube, "sphere": _sphere, "cylinder": _cylinder, "mug": _mug, "pentagon": _pentagon,
    "heart": _heart, "cone": _cone, "pyramid": _pyramid, "diamond": _diamond, "moon": _moon, "cross": _cross,
    "snowflake": _snowflake, "leaf": _leaf, "arrow": _arrow, "star": _star, "torus": _torus, "pot": _pot,
    "cap": _cap,
}
assert tuple(BUILDERS) == SIMCO_SHAPES


def _finish(bm, name, size, location, rotation_deg, material, smooth, sharp_deg=40.0):
    """Scale to largest extent 2 * size, lowest point at the origin, then one tagged object at `location`."""
    coords = np.array([v.co for v in bm.verts])
    low, high = coords.min(axis=0), coords.max(axis=0)
    scale = 2 * size / (high - low).max()
    centre = ((low[0] + high[0]) / 2, (low[1] + high[1]) / 2, low[2])
    bmesh.ops.transform(bm, verts=bm.verts, matrix=Matrix.Scale(scale, 4) @ Matrix.Translation([-c for c in centre]))
    for face in bm.faces:
        face.smooth = smooth
    if smooth:  # smooth curved surfaces, keep creases (cap rims, outline corners) sharp
        for edge in bm.edges:
            if edge.calc_face_angle(0.0) > math.radians(sharp_deg):
                edge.smooth = False
    mesh = bpy.data.meshes.new(name)
    bm.to_mesh(mesh)
    bm.free()
    if material is not None:
        mesh.materials.append(material)
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.location = location
    obj.rotation_euler = (0.0, 0.0, math.radians(rotation_deg))
    obj[OBJECT_TAG] = True
    bpy.context.view_layer.update()
    return obj


def add_simco_shape(name: str, size: float, location=(0.0, 0.0, 0.0), rotation_deg: float = 0.0, material=None):
    """Add SIMCO shape `name` with largest extent 2 * size, lowest point at location's z, turned about Z."""
    if name not in BUILDERS:
        raise ValueError(f"unknown SIMCO shape {name!r}; valid shapes: {', '.join(SIMCO_SHAPES)}")
    bm = bmesh.new()
    flat = BUILDERS[name](bm) is False
    return _finish(bm, name, size, location, rotation_deg, material, smooth=not flat)


def add_clevr_primitive(shape: str, radius: float, position, rotation_deg: float, material):
    """CLEVR's cube, sphere or cylinder of `radius`, centred above (x, y) of `position` as CLEVR places it."""
    x, y, _ = position
    location = (x, y, centre_height(shape, radius))
    rotation = (0.0, 0.0, np.radians(rotation_deg))
    if shape == "cube":
        bpy.ops.mesh.primitive_cube_add(size=2 * centre_height(shape, radius), location=location, rotation=rotation)
    elif shape == "sphere":
        bpy.ops.mesh.primitive_uv_sphere_add(radius=radius, segments=48, ring_count=24, location=location)
    else:
        bpy.ops.mesh.primitive_cylinder_add(radius=radius, depth=2 * radius, vertices=48, location=location,
                                            rotation=rotation)
    obj = bpy.context.active_object
    if shape != "cube":
        bpy.ops.object.shade_smooth()
    obj.data.materials.append(material)
    obj[OBJECT_TAG] = True
    return obj


def add_library_shape(spec: dict, material):
    """Add an item's object row from the library: CLEVR's primitives centred on the row's position, SIMCO's
    other shapes standing at placement.object_origin (the row's position is then a point on them)."""
    name, radius = spec["object"], spec["radius"]
    if name in CLEVR_PRIMITIVES:
        return add_clevr_primitive(name, radius, spec["position"], spec["rotation_deg"], material)
    if name not in BUILDERS:
        raise ValueError(f"object {name!r} is not in the renderer's shape library ({', '.join(SIMCO_SHAPES)}) "
                         "and the item table names no mesh for it")
    x, y = object_origin(spec)
    return add_simco_shape(name, radius, (x, y, 0.0), spec["rotation_deg"], material)


def render_shape_sheet(out_path, resolution: int = 128, samples: int = 8, columns: int = 6, denoise: bool = True,
                       threads: int | None = None) -> None:
    """Render every SIMCO shape alone at the origin (SHEET_CAMERA, CLEVR lights) into one labelled PNG.

    For people to look at; it resets this Blender session to an empty scene first.
    """
    from PIL import Image, ImageDraw

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    render_cfg = {"samples": samples, "denoise": denoise, "device": "CPU", "gpu_backend": "CUDA"}
    configure_cycles(scene, render_cfg, resolution, resolution, threads or os.cpu_count() or 1)
    lights = build_stage(scene)
    for light_name, (light_location, _, _) in LIGHTS.items():
        lights[light_name].location = light_location
        aim(lights[light_name])
    set_camera(scene, SHEET_CAMERA)

    label = 14
    rows = -(-len(SIMCO_SHAPES) // columns)
    sheet = Image.new("RGB", (columns * resolution, rows * (resolution + label)), "white")
    draw = ImageDraw.Draw(sheet)
    with tempfile.TemporaryDirectory() as tmp:
        for i, name in enumerate(SIMCO_SHAPES):
            for obj in [o for o in scene.objects if o.get(OBJECT_TAG)]:
                bpy.data.objects.remove(obj, do_unlink=True)
            color = SHEET_COLORS[i % len(SHEET_COLORS)]
            material = make_material(name, linear_color(color), "rubber")
            add_simco_shape(name, SHEET_SIZE, (0.0, 0.0, 0.0), 0.0, material)
            scene.render.filepath = str(Path(tmp) / f"{name}.png")
            bpy.ops.render.render(write_still=True)
            x, y = (i % columns) * resolution, (i // columns) * (resolution + label)
            with Image.open(scene.render.filepath) as tile:
                sheet.paste(tile.convert("RGB"), (x, y))
            draw.text((x + 3, y + resolution + 1), name, fill="black")
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_path)
