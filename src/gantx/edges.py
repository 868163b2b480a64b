"""The edge extractor that `fashion-edges2item` (and any pix2pix run on `fashion-mnist-edges`) was trained on.

A model trained on edge maps only works on edge maps made the same way, so
the extractor ships with the runtime (numpy alone) rather than with the
trainers: binary Sobel edges, uint8 0 or 255.

    from gantx.edges import edges
    item = gantx.Translator("fashion-edges2item").translate(edges(photo_of_a_shoe))
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from gantx.images import array_image

THRESHOLD = 0.2  # of the largest possible Sobel magnitude


def edge_map(items: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """Binary Sobel edges of uint8 N x H x W or H x W grey images: 255 on an edge, 0 elsewhere.

    Pixels are scaled to [0, 1]; gradients use zero padding (an item touching
    the border keeps its outline); the magnitude is divided by the Sobel
    maximum, 4 * sqrt(2), and a pixel is an edge where it exceeds `threshold`.
    """
    x = items.astype(np.float32) / 255.0
    pad = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)])
    h, w = x.shape[-2:]

    def at(dy: int, dx: int) -> np.ndarray:
        return pad[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

    gx = (at(-1, 1) + 2 * at(0, 1) + at(1, 1)) - (at(-1, -1) + 2 * at(0, -1) + at(1, -1))
    gy = (at(1, -1) + 2 * at(1, 0) + at(1, 1)) - (at(-1, -1) + 2 * at(-1, 0) + at(-1, 1))
    magnitude = np.hypot(gx, gy) / (4 * np.sqrt(2))
    return np.where(magnitude > threshold, 255, 0).astype(np.uint8)


def edges(image: Image.Image | np.ndarray, threshold: float = THRESHOLD) -> Image.Image | np.ndarray:
    """The edge map of a Pillow image or a uint8 array, as a grey image of the same kind.

    The image is taken as Translator takes it, and made grey first.
    """
    as_array = isinstance(image, np.ndarray)
    grey = (array_image(image) if as_array else image).convert("L")
    result = edge_map(np.asarray(grey), threshold)
    return result if as_array else Image.fromarray(result)
