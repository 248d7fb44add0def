"""Object masks of rendered items: the renderer's object-index pass (render/blender.py, `render_object_index`),
an 8-bit greyscale PNG beside each image (`<item_id>.objects.png`) whose pixel is k * MASK_STEP where the k-th
object of the item's object list (caption order, from 1) covers the pixel's centre and 0 where no object does
(ground, sky, props)."""
from pathlib import Path

import numpy as np

MASK_STEP = 40  # 8-bit value per object index: objects 1..6 fit in 0..255 and stay visible to the eye
MASK_SUFFIX = ".objects.png"


def mask_path(image) -> Path:
    """Where the object-index pass of a rendered image lies."""
    image = Path(image)
    return image.with_name(image.name.removesuffix(".png") + MASK_SUFFIX)


def read_object_masks(path, n_objects: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """(n_objects, height, width) boolean masks, object k of the caption at index k - 1, from an object-index
    PNG; FileNotFoundError naming the file when it is missing, ValueError naming it when it is of another size
    than `size` (width, height) or holds a value that is no object's."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no object-index pass beside the image; renders have written it since the "
                                f"object masks were added: delete the shard folder {path.parent} so that the "
                                "workflow renders it again")
    with Image.open(path) as image:
        values = np.asarray(image.convert("L"))
    if size is not None and (values.shape[1], values.shape[0]) != tuple(size):
        raise ValueError(f"{path}: object-index pass is {values.shape[1]}x{values.shape[0]} pixels, the image "
                         f"{size[0]}x{size[1]}")
    index, remainder = np.divmod(values.astype(int), MASK_STEP)
    if remainder.any() or index.max() > n_objects:
        bad = sorted(set(np.unique(values[(remainder != 0) | (index > n_objects)]).tolist()))[:5]
        raise ValueError(f"{path}: pixel values {bad} are no object index of an item with {n_objects} objects "
                         f"(expected multiples of {MASK_STEP} up to {n_objects * MASK_STEP})")
    return index[None] == np.arange(1, n_objects + 1)[:, None, None]
