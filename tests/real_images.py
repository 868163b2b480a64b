"""A folder of real photos in the modes real users' folders hold.

The photos ship inside scikit-image and scikit-learn (the `dev` extra); each is
shrunk to odd sizes so the tests stay fast and padding paths are exercised.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import skimage
import sklearn
from PIL import Image, ImageOps

SKIMAGE_DATA = Path(os.path.dirname(skimage.__file__)) / "data"
SKLEARN_IMAGES = Path(os.path.dirname(sklearn.__file__)) / "datasets" / "images"
EXIF_ORIENTATION = 0x0112


def real_photo(name: str, longest: int = 97) -> Image.Image:
    """A bundled photo, shrunk so its longer side is `longest` (odd sizes on purpose)."""
    folder = SKLEARN_IMAGES if name in ("china.jpg", "flower.jpg") else SKIMAGE_DATA
    with Image.open(folder / name) as image:
        image.load()
    scale = longest / max(image.size)
    return image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.LANCZOS
    )


def make_mixed_folder(folder: Path) -> dict[str, str]:
    """Write one file per tricky mode; returns {relative path: what it is}."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nested" / "deeper").mkdir(parents=True)
    kinds = {}

    def add(relative: str, what: str, image: Image.Image, **save) -> None:
        image.save(folder / relative, **save)
        kinds[relative] = what

    add("cat.png", "RGB", real_photo("chelsea.png"))
    add("camera.png", "greyscale", real_photo("camera.png", 64))
    add("logo.png", "RGBA with real alpha", real_photo("logo.png", 71))
    add("nested/china.jpg", "RGB JPEG", real_photo("china.jpg", 90))
    add("nested/deeper/coffee-palette.png", "palette", real_photo("coffee.png", 77).quantize(48))
    coins = np.asarray(real_photo("coins.png", 66), dtype=np.uint16) * 257
    add("coins-16bit.png", "16-bit greyscale", Image.fromarray(coins))
    add("flower-cmyk.jpg", "CMYK JPEG", real_photo("flower.jpg", 80).convert("CMYK"), quality=95)
    rocket = real_photo("rocket.jpg", 75)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # stored sideways: viewers rotate it 90 degrees clockwise
    add("rocket-rotated.jpg", "EXIF-rotated JPEG", rocket, exif=exif, quality=95)
    (folder / "notes.txt").write_text("not an image, ignored\n")
    return kinds


def upright_colour_and_alpha(path: Path, channels: int = 3) -> tuple[np.ndarray, np.ndarray | None]:
    """What a viewer shows, as uint8 colour and alpha: computed here without gantx's code."""
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image)
        if image.mode in ("I", "I;16"):
            image = Image.fromarray(np.rint(np.asarray(image, dtype=np.float64) / 257).astype(np.uint8))
        if image.mode == "P":
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        alpha = np.asarray(image.getchannel("A")) if "A" in image.getbands() else None
        return np.asarray(image.convert("RGB" if channels == 3 else "L")), alpha
