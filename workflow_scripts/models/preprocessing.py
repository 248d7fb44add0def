"""Which pixels of a render a model's image preprocessing keeps.

open_clip's eval transform resizes an image and centre-crops it (by default: the shortest side to the input
size, then a square crop), so a 320x240 render reaches the model only through its central region.
`kept_region` reads that region off the transform's Resize / crop steps; `measured_kept_region` measures it by
pushing coordinate-encoding images through any transform (a check on the first, and a way to look at a
transform it cannot read). Scene placement (workflow_scripts/datasets/placement.py, `visible_square`) keeps
objects inside the central min(width, height) square, which every resize-shortest-side-and-centre-crop to a
square keeps to within half a model-input pixel (the resize and crop round), less than placement's margin.

Regions are (left, top, right, bottom) in continuous source-pixel coordinates (pixel i spans [i, i + 1)).
"""
import numbers

import numpy as np
from PIL import Image
from torchvision import transforms as T

try:  # torchvision's v2 transforms take the same size arguments
    from torchvision.transforms import v2 as T2
except ImportError:  # pragma: no cover
    T2 = None

try:
    from open_clip import transform as oc
except ImportError:  # pragma: no cover
    oc = None


def _classes(*names, modules=(T, T2)) -> tuple:
    return tuple(getattr(m, n) for m in modules if m is not None for n in names if hasattr(m, n))


RESIZES = _classes("Resize")
CENTRE_CROPS = _classes("CenterCrop")
# Steps that change no pixel's place: colour-mode conversion, to-tensor, dtype, normalisation.
GEOMETRY_FREE = _classes("ToTensor", "PILToTensor", "ConvertImageDtype", "Normalize", "ToDtype", "ToImage",
                         "ToPureTensor", "Grayscale")
GEOMETRY_FREE_FUNCTIONS = ("_convert_to_rgb",)
if oc is not None:
    GEOMETRY_FREE += tuple(getattr(oc, n) for n in ("MaybeConvertMode", "MaybeToTensor") if hasattr(oc, n))


class UnknownTransform(ValueError):
    """A preprocessing step whose effect on pixel positions `kept_region` cannot read."""


def _pair(size) -> tuple[int, int]:
    """(height, width) of a torchvision size argument."""
    if isinstance(size, numbers.Number):
        return int(size), int(size)
    if len(size) == 1:
        return int(size[0]), int(size[0])
    return int(size[0]), int(size[1])


def _resized_size(step, width: int, height: int) -> tuple[int, int]:
    """(width, height) after a torchvision Resize, as torchvision computes it."""
    size, max_size = step.size, getattr(step, "max_size", None)
    if isinstance(size, numbers.Number) or len(size) == 1:  # the shortest side to size
        requested = int(size) if isinstance(size, numbers.Number) else int(size[0])
        short, long = sorted((width, height))
        new_short, new_long = requested, int(requested * long / short)
        if max_size is not None and new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
        return (new_short, new_long) if width <= height else (new_long, new_short)
    if max_size is not None:
        raise UnknownTransform(f"{step!r}: max_size applies only to a single size")
    new_height, new_width = _pair(size)
    return new_width, new_height


def _keep_ratio_size(step, width: int, height: int) -> tuple[int, int]:
    """(width, height) after open_clip's ResizeKeepRatio without random scale or aspect."""
    if step.random_scale_prob > 0 or step.random_aspect_prob > 0:
        raise UnknownTransform(f"{step!r} resizes at random (a training transform)")
    target_h, target_w = step.size
    ratio_h, ratio_w = height / target_h, width / target_w
    ratio = max(ratio_h, ratio_w) * step.longest + min(ratio_h, ratio_w) * (1.0 - step.longest)
    return round(width / ratio), round(height / ratio)


def _crop_offset(crop_h: int, crop_w: int, width: int, height: int) -> tuple[int, int]:
    """(left, top) of torchvision's / open_clip's centre crop in the current image's pixels, padding (zeros, no
    source pixel) included as negative offsets when the crop is larger than the image."""
    pad_left = (crop_w - width) // 2 if crop_w > width else 0
    pad_top = (crop_h - height) // 2 if crop_h > height else 0
    padded_w = width + pad_left + ((crop_w - width + 1) // 2 if crop_w > width else 0)
    padded_h = height + pad_top + ((crop_h - height + 1) // 2 if crop_h > height else 0)
    left = int(round((padded_w - crop_w) / 2.0)) - pad_left
    top = int(round((padded_h - crop_h) / 2.0)) - pad_top
    return left, top


def transform_steps(preprocess) -> list:
    """The steps of a transform: a Compose's (nested ones flattened), or the transform itself."""
    inner = getattr(preprocess, "transforms", None)
    if inner is None:
        return [preprocess]
    return [step for t in inner for step in transform_steps(t)]


def kept_region(preprocess, width: int, height: int) -> tuple[float, float, float, float]:
    """(left, top, right, bottom): the part of a width x height source image that survives `preprocess`
    (an open_clip / torchvision eval transform), read off its steps.

    Understands torchvision's Resize (shortest side, or exact size) and CenterCrop (v1 and v2), open_clip's
    ResizeKeepRatio (without randomness) and CenterCropOrPad, and steps that move no pixel (mode conversion,
    ToTensor, Normalize, ...); raises UnknownTransform for any other step. For open_clip's default
    ViT-B-32 transform and a 320x240 image: about (39.7, 0, 280.3, 240), since the image is resized to
    298x224 and cropped at x = 37; it contains `placement.visible_square` (40, 0, 280, 240).
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    # Current image's size and, per axis, the source coordinate of its pixel edge 0 and source pixels per pixel.
    w, h = width, height
    x0, y0, sx, sy = 0.0, 0.0, 1.0, 1.0
    for step in transform_steps(preprocess):
        if isinstance(step, RESIZES) or (oc is not None and isinstance(step, oc.ResizeKeepRatio)):
            new_w, new_h = (_keep_ratio_size if not isinstance(step, RESIZES) else _resized_size)(step, w, h)
            sx, sy = sx * w / new_w, sy * h / new_h  # PIL and torch map pixel edges linearly
            w, h = new_w, new_h
        elif isinstance(step, CENTRE_CROPS) or (oc is not None and isinstance(step, oc.CenterCropOrPad)):
            crop_h, crop_w = _pair(step.size)
            left, top = _crop_offset(crop_h, crop_w, w, h)
            x0, y0 = x0 + sx * left, y0 + sy * top
            w, h = crop_w, crop_h
        elif isinstance(step, GEOMETRY_FREE) or getattr(step, "__name__", None) in GEOMETRY_FREE_FUNCTIONS:
            continue
        else:
            raise UnknownTransform(
                f"cannot tell which pixels survive the preprocessing step {step!r} ({type(step).__name__}); "
                "kept_region reads Resize, CenterCrop, open_clip's ResizeKeepRatio / CenterCropOrPad and steps "
                "that move no pixel (measured_kept_region measures any transform)")
    return (max(0.0, x0), max(0.0, y0), min(float(width), x0 + sx * w), min(float(height), y0 + sy * h))


def _output_array(output) -> np.ndarray:
    """A transform's output as a float array (channels, height, width)."""
    if isinstance(output, Image.Image):
        return np.asarray(output, dtype=float).reshape(output.size[1], output.size[0], -1).transpose(2, 0, 1)
    array = output.detach().cpu().numpy() if hasattr(output, "detach") else np.asarray(output)
    return array.astype(float)


def measured_kept_region(preprocess, width: int, height: int) -> tuple[float, float, float, float]:
    """`kept_region` measured: the transform applied to an RGB image whose red channel rises linearly with x and
    green with y (values 0..255 over the source's pixel centres), decoded against its outputs for an all-black
    and an all-white image (which undo any per-channel affine steps such as Normalize); the decoded source
    coordinate of each output pixel centre, fitted linearly over the inner 80% of the output, gives the source
    coordinates of the output's edges. Assumes the transform moves pixels by resizing, cropping or padding
    (separable and affine per axis). Precise to about half a source pixel (uint8 steps of the ramps)."""
    xs = (np.arange(width) + 0.5) / width  # pixel centres, in [0, 1] of the source
    ys = (np.arange(height) + 0.5) / height
    ramp = np.zeros((height, width, 3), np.uint8)
    ramp[..., 0] = np.round(255 * xs)[None, :]
    ramp[..., 1] = np.round(255 * ys)[:, None]
    black = _output_array(preprocess(Image.new("RGB", (width, height), (0, 0, 0))))
    white = _output_array(preprocess(Image.new("RGB", (width, height), (255, 255, 255))))
    coded = _output_array(preprocess(Image.fromarray(ramp, "RGB")))
    if coded.ndim != 3 or coded.shape[0] < 2 or coded.shape != black.shape or black.shape != white.shape:
        raise UnknownTransform(f"cannot decode the output of {preprocess!r}: expected a (channels, height, width) "
                               "image whose first two channels follow the input's")
    contrast = white[:2] - black[:2]
    source = np.abs(contrast) > 1e-6  # output pixels that come from the source (not padding)
    decoded = (coded[:2] - black[:2]) / np.where(source, contrast, 1.0)  # fractions of the source

    def edges(channel, axis, n_src):  # axis: the output axis along which this channel's ramp runs
        valid = source[channel].any(axis=1 - axis)
        profile = np.where(source[channel], decoded[channel], 0.0).sum(axis=1 - axis) / np.maximum(
            source[channel].sum(axis=1 - axis), 1)
        used = np.flatnonzero(valid)
        if len(used) < 2:
            raise UnknownTransform(f"{preprocess!r} keeps too little of a {width}x{height} image to measure")
        first, last = used[0], used[-1]
        if not valid[first:last + 1].all():
            raise UnknownTransform(f"{preprocess!r} does not keep one rectangle of the source")
        n = last + 1 - first
        inner = np.arange(first + int(0.1 * n), max(first + int(0.9 * n), first + int(0.1 * n) + 2))
        slope, intercept = np.polyfit(inner + 0.5, profile[inner] * n_src, 1)
        return max(0.0, slope * first + intercept), min(float(n_src), slope * (last + 1) + intercept)

    left, right = edges(0, 1, width)
    top, bottom = edges(1, 0, height)
    return left, top, right, bottom
