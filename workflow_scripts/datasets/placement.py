"""Where objects stand in a rendered scene: the camera, the shapes' geometry, and seeded placement that keeps
every object apart from the others, inside the part of the frame that CLIP sees, and in sight. Shared by the
rendered dataset kinds.

CLIP's preprocessing (open_clip's: resize the shortest side, then centre-crop a square input) keeps only the
central min(width, height) square of a render (`visible_square`; for a 320x240 render x in [40, 280)), give or
take half a model-input pixel of rounding; placement keeps every object's bounding sphere (its exact image:
`camera.sphere_bounds`) inside that square, FRAME_MARGIN of its side from its edges, which covers the rounding.
workflow_scripts/models/preprocessing.py derives the kept region from a model's own transform.

The shape library is the renderer's (workflow_scripts/render/shapes.py): CLEVR's three primitives and SIMCO's
procedural shapes; ComCO's meshes bring their own measured geometry. An object's "position" is a point the
camera sees the object at: for CLEVR's primitives it is CLEVR's centre; for the other shapes the centre of
the object's bounding box (at half its height), except where that point lies in a hole of the shape
(`SIMCO_ANCHORS`: torus, moon). `object_origin` gives back where the object stands.

Pure Python: the renderer reads the item table and adds nothing random beyond each scene's render seed.
"""

import numpy as np

from workflow_scripts.common.camera import segment_point_distance, sphere_bounds

CLEVR_PRIMITIVES = ("cube", "sphere", "cylinder")
MATERIALS = ("rubber", "metal")
SIZES = {"large": 0.7, "small": 0.35}  # CLEVR's object radius in Blender units

# SIMCO shapes built by workflow_scripts/render/shapes.py (all but CLEVR's three, which keep CLEVR's
# primitives), in units of the object's size (its "radius"; largest extent 2 * size), measured from the
# meshes (tests/test_simco_scenes.py re-measures them): (footprint, reach, height) where footprint is the
# largest horizontal distance of the mesh from its vertical axis through the bounding box centre, reach the
# largest distance from the bounding box centre, height the vertical extent. Both radii are rounded up and
# do not change with the rotation about that axis.
SIMCO_GEOMETRY = {
    "mug": (1.0000, 1.2761, 1.5854),
    "pentagon": (1.0219, 1.1536, 1.9021),
    "heart": (1.0199, 1.1566, 1.8076),
    "cone": (1.0001, 1.4143, 2.0000),
    "pyramid": (1.4143, 1.6008, 1.5000),
    "diamond": (1.0824, 1.1399, 1.5153),
    "moon": (0.8511, 1.1386, 2.0000),
    "cross": (0.6161, 1.0434, 2.0000),
    "snowflake": (0.9230, 1.0223, 2.0000),
    "leaf": (0.7638, 1.2123, 2.0000),
    "arrow": (1.0199, 1.0339, 1.0000),
    "star": (1.0219, 1.1536, 1.9021),
    "torus": (1.0001, 1.0001, 0.5600),
    "pot": (1.0001, 1.0220, 1.5048),
    "cap": (1.0001, 1.0516, 0.6588),
}
# Extruded outlines that stand upright facing -Y at rotation 0 (render/shapes.py): turned towards the camera,
# give or take FACING_JITTER_DEG, so the camera sees the outline rather than its edge.
FLAT_SIMCO_SHAPES = ("pentagon", "heart", "moon", "cross", "snowflake", "leaf", "arrow", "star")
FACING_JITTER_DEG = 20.0
# Stored positions of the SIMCO shapes whose bounding box centre lies in a hole, in units of size in the
# object's frame at rotation 0 (origin: the bottom centre of its bounding box, -Y towards the camera once
# turned): the moon's lower horn where it crosses the vertical axis (the centre is in the crescent's cut-out),
# and the torus's tube on the side nearest the camera (the centre is in the hole; the torus is turned by
# exactly the facing angle, which changes nothing in its look, so that -Y is that side).
SIMCO_ANCHORS = {"moon": (0.0, 0.0, 0.235), "torus": (0.0, -0.72, 0.28)}
FACE_CAMERA_EXACTLY = ("torus",)  # every shape whose anchor is off its axis must be listed here
assert all(shape in FACE_CAMERA_EXACTLY for shape, (ax, ay, _) in SIMCO_ANCHORS.items() if (ax, ay) != (0, 0))
# SIMCO and ComCO scenes: CLEVR's camera zoomed in on a smaller floor, so that CLIP's 224 px input
# sees each object over more pixels than in CLEVR's wide view.
SIMCO_FOCAL_LENGTH_MM = 60.0
SIMCO_GROUND_HALF_EXTENT = 2.0

# Camera in the spirit of CLEVR's base scene, jittered per scene.
CAMERA_LOCATION = (7.36, -6.93, 4.96)
CAMERA_JITTER = 0.5
FOCAL_LENGTH_MM = 35.0
SENSOR_WIDTH_MM = 36.0
GROUND_HALF_EXTENT = 3.0  # objects are placed in [-3, 3]^2
MIN_GAP = 0.25  # free space between the footprints of two objects
FRAME_MARGIN = 0.02  # fraction of the visible square's side kept free at its border
MAX_PLACEMENT_TRIES = 200
MAX_SCENE_TRIES = 100


def bounding_radius(shape: str, radius: float, geometry=SIMCO_GEOMETRY) -> float:
    """Radius of a sphere around the object's centre (for SIMCO's own shapes and meshes: its bounding box
    centre) that contains it. `geometry`: (footprint, reach, height) per shape, in units of its size."""
    if shape in geometry:
        return geometry[shape][1] * radius
    return {"sphere": 1.0, "cube": np.sqrt(3 / 2), "cylinder": np.sqrt(2)}[shape] * radius


def centre_height(shape: str, radius: float, geometry=SIMCO_GEOMETRY) -> float:
    """Height of the centre of an object resting on the ground (cubes have half-side radius/sqrt 2;
    SIMCO's own shapes and meshes: half the height of their bounding box)."""
    if shape in geometry:
        return geometry[shape][2] / 2 * radius
    return radius / np.sqrt(2) if shape == "cube" else radius


def footprint_radius(shape: str, radius: float, geometry=SIMCO_GEOMETRY) -> float:
    """Radius of a vertical cylinder around the object's axis that contains it: CLEVR's shapes `radius`
    (a cube's corners reach it too), SIMCO's own shapes and meshes their measured footprint."""
    if shape in geometry:
        return geometry[shape][0] * radius
    return radius


def facing_angle(x: float, y: float, camera_location) -> float:
    """rotation_deg (about Z, in [0, 360)) that turns an object's -Y axis towards the camera in the ground plane."""
    dx, dy = camera_location[0] - x, camera_location[1] - y
    return float(np.degrees(np.arctan2(dx, -dy)) % 360.0)


def _rotated_anchor(shape: str, radius: float, rotation_deg: float) -> np.ndarray:
    ax, ay, az = SIMCO_ANCHORS[shape]
    a = np.radians(rotation_deg)
    return radius * np.array([ax * np.cos(a) - ay * np.sin(a), ax * np.sin(a) + ay * np.cos(a), az])


def object_anchor(shape: str, radius: float, x: float, y: float, rotation_deg: float,
                  geometry=SIMCO_GEOMETRY) -> np.ndarray:
    """The stored "position" of an object standing at (x, y): a point inside it, or (mug) inside the
    walls that surround it, that the camera sees on the object (see the module's docstring)."""
    if shape not in SIMCO_ANCHORS:
        return np.array([x, y, centre_height(shape, radius, geometry)])
    return np.array([x, y, 0.0]) + _rotated_anchor(shape, radius, rotation_deg)


def object_origin(obj: dict) -> tuple[float, float]:
    """Where an object row's shape stands: the (x, y) of its vertical axis (inverse of `object_anchor`)."""
    x, y, _ = obj["position"]
    if obj["object"] not in SIMCO_ANCHORS:
        return x, y
    dx, dy, _ = _rotated_anchor(obj["object"], obj["radius"], obj["rotation_deg"])
    return x - dx, y - dy


def object_rotation(rng, shape: str, x: float, y: float, camera: dict) -> float:
    """rotation_deg of an object at (x, y): flat SIMCO outlines face the camera within +-FACING_JITTER_DEG
    (one uniform draw), FACE_CAMERA_EXACTLY shapes face it exactly (no draw), others uniform in [0, 360)."""
    if shape in FLAT_SIMCO_SHAPES:
        jitter = float(rng.uniform(-FACING_JITTER_DEG, FACING_JITTER_DEG))
        return (facing_angle(x, y, camera["location"]) + jitter) % 360.0
    if shape in FACE_CAMERA_EXACTLY:
        return facing_angle(x, y, camera["location"])
    return float(rng.uniform(0, 360))


def camera_at(location, focal_length_mm: float = FOCAL_LENGTH_MM) -> dict:
    """The scene camera at `location`, aimed at the origin."""
    return {
        "location": [float(c) for c in location],
        "target": [0.0, 0.0, 0.0],
        "focal_length_mm": focal_length_mm,
        "sensor_width_mm": SENSOR_WIDTH_MM,
    }


def sample_camera(rng, focal_length_mm: float = FOCAL_LENGTH_MM) -> dict:
    """CLEVR's camera, its location jittered."""
    return camera_at(np.asarray(CAMERA_LOCATION) + rng.uniform(-CAMERA_JITTER, CAMERA_JITTER, 3), focal_length_mm)


def visible_square(width: int, height: int) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) in pixels of the central min(width, height) square of a width x height image:
    what CLIP's preprocessing (resize the shortest side, centre-crop a square) keeps of it."""
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return left, top, left + side, top + side


def in_frame(centre, reach, camera, width, height) -> bool:
    """Whether the image of a sphere of radius `reach` around `centre` (its exact bounding box) lies inside
    the visible square (`visible_square`), FRAME_MARGIN of the square's side from its edges."""
    bounds = sphere_bounds(centre, reach, **camera, width=width, height=height)
    if bounds is None:
        return False
    left, top, right, bottom = visible_square(width, height)
    margin = FRAME_MARGIN * (right - left)
    u_min, v_min, u_max, v_max = bounds
    return left + margin <= u_min and u_max <= right - margin and top + margin <= v_min and v_max <= bottom - margin


def unobstructed(centre, reach, placed, camera, anchor=None) -> bool:
    """Whether the sight lines to this object's anchor (default: its centre) and to every placed object's
    anchor stay clear of the other objects' bounding spheres (around their centres)."""
    eye = camera["location"]
    anchor = centre if anchor is None else anchor
    for other in placed:
        if segment_point_distance(eye, anchor, other["centre"]) <= other["reach"]:
            return False
        if segment_point_distance(eye, other["anchor"], centre) <= reach:
            return False
    return True


def place_objects(rng, shapes, camera, width, height, sizes=None, material=None,
                  half_extent=GROUND_HALF_EXTENT, geometry=SIMCO_GEOMETRY) -> list[dict] | None:
    """Sizes, materials, positions and rotations for the shapes, or None if they do not fit.

    `sizes` (a size name per shape) and `material` fix what is otherwise drawn at random per object
    (CLEVR's way: size before the position, material then rotation after it). Objects keep their
    footprints MIN_GAP apart, their bounding spheres inside the visible square (`in_frame`), and their anchors
    (`object_anchor`) in sight, on the ground within [-half_extent, half_extent]^2. `geometry` as for `bounding_radius`.
    Each placed dict has "centre" (bounding sphere centre) and "anchor" (the stored position).
    """
    placed = []
    for index, shape in enumerate(shapes):
        size = str(rng.choice(list(SIZES))) if sizes is None else sizes[index]
        radius = SIZES[size]
        reach = bounding_radius(shape, radius, geometry)
        footprint = footprint_radius(shape, radius, geometry)
        for _ in range(MAX_PLACEMENT_TRIES):
            x, y = rng.uniform(-half_extent, half_extent, 2)
            centre = np.array([x, y, centre_height(shape, radius, geometry)])
            # Shapes with an off-axis anchor face the camera (FACE_CAMERA_EXACTLY); for the others it is the centre.
            anchor = object_anchor(shape, radius, x, y, facing_angle(x, y, camera["location"]), geometry)
            if all(
                np.hypot(x - o["centre"][0], y - o["centre"][1]) >= footprint + o["footprint"] + MIN_GAP
                for o in placed
            ) and in_frame(centre, reach, camera, width, height) and unobstructed(
                centre, reach, placed, camera, anchor
            ):
                break
        else:
            return None
        chosen_material = str(rng.choice(MATERIALS)) if material is None else material
        rotation_deg = object_rotation(rng, shape, x, y, camera)
        placed.append(
            {
                "shape": shape,
                "material": chosen_material,
                "size": size,
                "radius": radius,
                "centre": centre,
                "anchor": anchor,
                "reach": reach,
                "footprint": footprint,
                "rotation_deg": rotation_deg,
            }
        )
    return placed


def object_rows(placed: list[dict], attributes: list[str]) -> list[dict]:
    """The item table's object structs for placed objects and their attributes."""
    return [
        {
            "object": p["shape"],
            "attribute": attribute,
            "material": p["material"],
            "size": p["size"],
            "radius": p["radius"],
            "position": p["anchor"].tolist(),
            "rotation_deg": p["rotation_deg"],
        }
        for p, attribute in zip(placed, attributes)
    ]


