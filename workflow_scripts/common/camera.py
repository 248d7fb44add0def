"""Pinhole camera shared by scene placement (visibility checks) and the Blender renderer.

The conventions are Blender's: the camera looks down its local -Z axis with +Y up, the sensor is
fitted to the larger image dimension (sensor_fit AUTO) and pixels are square.
"""

import numpy as np


def look_at_rotation(location, target) -> np.ndarray:
    """3x3 camera-to-world rotation whose columns are the camera's right, up and backward axes."""
    forward = np.asarray(target, float) - np.asarray(location, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return np.stack([right, up, -forward], axis=1)


def camera_matrix_world(location, target) -> np.ndarray:
    """4x4 camera-to-world transform, as Blender's Object.matrix_world expects."""
    matrix = np.eye(4)
    matrix[:3, :3] = look_at_rotation(location, target)
    matrix[:3, 3] = location
    return matrix


def project(points, location, target, focal_length_mm, sensor_width_mm, width, height) -> np.ndarray:
    """Pixel coordinates (u right, v down, origin at the top-left corner) and depth of world points.

    Returns an array of shape (n, 3): u, v, depth in front of the camera (negative behind it).
    """
    points = np.atleast_2d(np.asarray(points, float))
    rotation = look_at_rotation(location, target)
    in_camera = (points - np.asarray(location, float)) @ rotation
    depth = -in_camera[:, 2]
    focal_px = focal_length_mm / sensor_width_mm * max(width, height)
    u = width / 2 + focal_px * in_camera[:, 0] / depth
    v = height / 2 - focal_px * in_camera[:, 1] / depth
    return np.stack([u, v, depth], axis=1)


def segment_point_distance(start, end, point) -> float:
    """Distance from `point` to the segment start-end."""
    start, end, point = (np.asarray(a, float) for a in (start, end, point))
    direction = end - start
    t = np.clip(np.dot(point - start, direction) / np.dot(direction, direction), 0.0, 1.0)
    return float(np.linalg.norm(start + t * direction - point))


def sphere_bounds(centre, radius, location, target, focal_length_mm, sensor_width_mm, width, height):
    """The exact pixel bounding box (u_min, v_min, u_max, v_max) of a sphere's image, or None when the sphere
    reaches the camera's plane (its depth is not above its radius). Conventions as `project`.

    Along each image axis the sphere's image spans the two tangent rays from the eye to the disc that the
    sphere projects to in the plane of that axis and the view direction: for a sphere off the axis it is
    wider than 2 * focal_px * radius / depth.
    """
    rotation = look_at_rotation(location, target)
    x, y, z = (np.asarray(centre, float) - np.asarray(location, float)) @ rotation
    depth = -z
    if depth <= radius:
        return None
    focal_px = focal_length_mm / sensor_width_mm * max(width, height)

    def span(offset):  # tan of the two tangent directions in the plane (offset, depth)
        angle, half = np.arctan2(offset, depth), np.arcsin(radius / np.hypot(offset, depth))
        return np.tan(angle - half), np.tan(angle + half)

    (x_lo, x_hi), (y_lo, y_hi) = span(x), span(y)
    return (width / 2 + focal_px * x_lo, height / 2 - focal_px * y_hi,
            width / 2 + focal_px * x_hi, height / 2 - focal_px * y_lo)
