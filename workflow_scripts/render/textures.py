"""Procedural textures and worlds for the PUG-style scenes (dataset kind `spar`), as Cycles shader node set-ups.

A texture covers a whole object: a pattern node (noise, Voronoi cells, wave bands or rings, bricks) in the
object's own generated coordinates (turned, so that 2D patterns cross every face) drives a colour ramp between
two colours, so each texture has its own colour statistics and its own pattern. A world is a stage: the ground's colour and pattern, the sky's colour and
strength, a scale on the three lights' energy, and a few props standing behind the objects (never between them
and the camera: the camera looks from +x, -y, the props stand at x < -3, y > 3), of shapes and colours no scene
object has.
"""

import bpy

from workflow_scripts.datasets.spar import CATEGORIES, TEXTURES, WORLDS

# name: (pattern, its settings, dark colour, light colour, roughness); colours linear RGB. Bricks take the two
# colours and a light mortar (MORTAR).
TEXTURE_SETUPS = {
    "blue": ("noise", {"Scale": 5.0, "Detail": 2.0}, (0.01, 0.04, 0.40), (0.10, 0.30, 0.95), 0.5),
    "red": ("noise", {"Scale": 5.0, "Detail": 2.0}, (0.40, 0.01, 0.01), (0.90, 0.10, 0.05), 0.5),
    "grass": ("noise", {"Scale": 40.0, "Detail": 8.0}, (0.02, 0.12, 0.01), (0.25, 0.55, 0.04), 0.9),
    "stone": ("voronoi", {"Scale": 6.0}, (0.10, 0.10, 0.10), (0.45, 0.44, 0.42), 0.9),
    "wood": ("rings", {"Scale": 3.0, "Distortion": 4.0}, (0.10, 0.04, 0.01), (0.45, 0.24, 0.08), 0.6),
    "sand": ("noise", {"Scale": 90.0, "Detail": 4.0}, (0.50, 0.38, 0.20), (0.85, 0.72, 0.48), 1.0),
    "brick": ("brick", {"Scale": 4.0}, (0.16, 0.04, 0.02), (0.26, 0.08, 0.03), 0.9),
    "marble": ("bands", {"Scale": 2.0, "Distortion": 12.0}, (0.20, 0.20, 0.22), (0.92, 0.92, 0.90), 0.2),
}
MORTAR = (0.60, 0.58, 0.52)
PATTERN_ROTATION = (0.9, 0.4, 0.8)  # radians about x, y, z
# Each world's ground: a set-up like a texture's, in colours no object texture has (an orange dune, a blue-green
# lawn, black asphalt, white snow), so that objects stand out from it.
GROUND_SETUPS = {
    "desert": ("noise", {"Scale": 3.0, "Detail": 2.0}, (0.45, 0.22, 0.08), (0.62, 0.34, 0.14), 1.0),
    "meadow": ("noise", {"Scale": 2.0, "Detail": 3.0}, (0.03, 0.16, 0.10), (0.08, 0.28, 0.18), 1.0),
    "night": ("voronoi", {"Scale": 1.5}, (0.015, 0.015, 0.03), (0.05, 0.05, 0.08), 0.7),
    "snow": ("noise", {"Scale": 1.5, "Detail": 1.0}, (0.62, 0.64, 0.70), (0.72, 0.74, 0.80), 0.9),
}
GROUND_SCALE = 0.25  # ground patterns in object units: features a few times larger than on an object
# name: (sky colour, sky strength, light energy scale, props [(shape, x, y, size, colour)]). The props are SIMCO
# shapes that are no category of the scenes, in plain hues no texture has (purple, yellow, teal), so that no prop
# passes for one of the named objects.
WORLD_SETUPS = {
    "desert": ((0.90, 0.70, 0.45), 1.2, 1.2,
               [("pentagon", -5.0, 6.0, 0.6, (0.30, 0.05, 0.40)), ("cap", -7.0, 3.5, 0.7, (0.30, 0.05, 0.40))]),
    "meadow": ((0.35, 0.55, 1.00), 1.0, 1.0,
               [("snowflake", -5.5, 5.0, 0.8, (0.85, 0.70, 0.02)), ("leaf", -4.0, 7.5, 0.9, (0.85, 0.70, 0.02)),
                ("snowflake", -7.5, 2.5, 1.0, (0.85, 0.70, 0.02))]),
    "night": ((0.01, 0.01, 0.05), 1.0, 0.8,
              [("arrow", -5.0, 5.0, 0.5, (0.9, 0.8, 0.1)), ("cross", -6.5, 4.0, 0.6, (0.9, 0.8, 0.1))]),
    "snow": ((0.70, 0.75, 0.85), 0.8, 0.9,
             [("cap", -5.0, 5.5, 0.9, (0.02, 0.35, 0.40)), ("leaf", -6.5, 3.0, 0.7, (0.02, 0.35, 0.40))]),
}
WORLD_TAG = "world_prop"


def _pattern(nodes, links, pattern: str, settings: dict, coordinates):
    """The node giving a 0..1 pattern value for `pattern`, fed with `coordinates`; returns its output socket."""
    if pattern == "noise":
        node, output = nodes.new("ShaderNodeTexNoise"), "Fac"
    elif pattern == "voronoi":
        node, output = nodes.new("ShaderNodeTexVoronoi"), "Distance"
    elif pattern in ("rings", "bands"):
        node, output = nodes.new("ShaderNodeTexWave"), "Fac"
        node.wave_type = "RINGS" if pattern == "rings" else "BANDS"
    else:
        raise ValueError(f"unknown pattern {pattern!r}")
    for name, value in settings.items():
        node.inputs[name].default_value = value
    links.new(coordinates, node.inputs["Vector"])
    return node.outputs[output]


def pattern_material(label: str, setup: tuple, cache: dict, space: str = "Generated", scale: float = 1.0):
    """A material of a set-up (TEXTURE_SETUPS, GROUND_SETUPS), built once per render process. Its pattern lies
    in the object's `space`: "Generated" (0..1 over the object's bounding box: the pattern scales with the
    object) or "Object" (object units, for the ground), its scale multiplied by `scale`."""
    key = (label, space, scale)
    if key in cache:
        return cache[key]
    pattern, settings, dark, light, roughness = setup
    material = bpy.data.materials.new(f"{label}_{space}")
    nodes, links = material.node_tree.nodes, material.node_tree.links
    coordinates = nodes.new("ShaderNodeTexCoord").outputs[space]
    if space == "Generated":  # turned, so that the 2D brick pattern and the bands cross every face of a box
        mapping = nodes.new("ShaderNodeMapping")
        mapping.inputs["Rotation"].default_value = PATTERN_ROTATION
        links.new(coordinates, mapping.inputs["Vector"])
        coordinates = mapping.outputs["Vector"]
    settings = {name: value * scale if name == "Scale" else value for name, value in settings.items()}
    if pattern == "brick":
        colour = nodes.new("ShaderNodeTexBrick")
        for name, value in settings.items():
            colour.inputs[name].default_value = value
        colour.inputs["Color1"].default_value, colour.inputs["Color2"].default_value = (*dark, 1.0), (*light, 1.0)
        colour.inputs["Mortar"].default_value = (*MORTAR, 1.0)
        links.new(coordinates, colour.inputs["Vector"])
        colour = colour.outputs["Color"]
    else:
        ramp = nodes.new("ShaderNodeValToRGB")
        ramp.color_ramp.elements[0].color = (*dark, 1.0)
        ramp.color_ramp.elements[1].color = (*light, 1.0)
        links.new(_pattern(nodes, links, pattern, settings, coordinates), ramp.inputs["Fac"])
        colour = ramp.outputs["Color"]
    bsdf = nodes["Principled BSDF"]
    links.new(colour, bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = roughness
    cache[key] = material
    return material


def texture_material(name: str, cache: dict):
    """The material of object texture `name`, its pattern scaled to the object."""
    if name not in TEXTURE_SETUPS:
        raise ValueError(f"no procedural texture {name!r}; textures are {sorted(TEXTURE_SETUPS)}")
    return pattern_material(f"texture_{name}", TEXTURE_SETUPS[name], cache)


def build_worlds(scene, ground, lights: dict, textures: dict) -> dict:
    """Every world's sky, ground material and props (hidden until `set_world` shows them); returns the state
    `set_world` switches. `textures`: the process's texture material cache."""
    from workflow_scripts.render.blender import OBJECT_TAG, make_material
    from workflow_scripts.render.shapes import add_simco_shape

    grounds, props, skies = {}, {}, {}
    for name, (sky, strength, _, world_props) in WORLD_SETUPS.items():
        world = bpy.data.worlds.new(f"sky_{name}")
        background = world.node_tree.nodes["Background"]
        background.inputs["Color"].default_value = (*sky, 1.0)
        background.inputs["Strength"].default_value = strength
        skies[name] = world
        props[name] = []
        for index, (shape, x, y, size, colour) in enumerate(world_props):
            material = make_material(f"prop_{name}_{index}", (*colour, 1.0), "rubber")
            prop = add_simco_shape(shape, size, (x, y, 0.0), 0.0, material)
            prop[WORLD_TAG] = name
            del prop[OBJECT_TAG]  # a prop stays when set_scene removes the previous item's objects
            prop.hide_render = True
            props[name].append(prop)
        grounds[name] = pattern_material(f"ground_{name}", GROUND_SETUPS[name], textures, "Object", GROUND_SCALE)
    energies = {light: lights[light].data.energy for light in lights}
    return {"scene": scene, "ground": ground, "lights": lights, "energies": energies, "skies": skies,
            "props": props, "grounds": grounds}


def set_world(worlds: dict, name: str) -> None:
    """Show world `name`: its sky, ground, light energy and props; hide every other world's props."""
    if name not in WORLD_SETUPS:
        raise ValueError(f"no world {name!r}; worlds are {sorted(WORLD_SETUPS)}")
    energy_scale = WORLD_SETUPS[name][2]
    worlds["scene"].world = worlds["skies"][name]
    worlds["ground"].data.materials[0] = worlds["grounds"][name]
    for light, base in worlds["energies"].items():
        worlds["lights"][light].data.energy = base * energy_scale
    for world, props in worlds["props"].items():
        for prop in props:
            prop.hide_render = world != name


assert set(TEXTURE_SETUPS) == set(TEXTURES) and set(WORLD_SETUPS) == set(GROUND_SETUPS) == set(WORLDS), \
    "a texture or world has no set-up"
assert not {prop[0] for world in WORLD_SETUPS.values() for prop in world[3]} & set(CATEGORIES), \
    "a prop has the shape of a scene category"
