"""Reading and writing the images real users have, with Pillow.

Everything comes out as uint8 colour (L or RGB) plus an optional alpha plane,
the way a viewer shows the file (EXIF orientation applied).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from gantx.errors import InputError, first_line

# Extension -> Pillow format name. Anything else in a folder is not an image to us.
IMAGE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
OUTPUT_SUFFIX = {"png": ".png", "jpg": ".jpg", "webp": ".webp"}
FORMATS_WITH_ALPHA = {"PNG", "WEBP", "TIFF"}
SAVE_OPTIONS = {"JPEG": {"quality": 95}, "WEBP": {"quality": 95}}


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; done once, at import
    os.umask(mask)
    return mask


UMASK = _umask()


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_FORMATS


ImageSource = str | os.PathLike | bytes
# Modes split_alpha reads directly; anything else Pillow decodes is converted to RGB(A) on reading.
MODES = {
    "1",
    "L",
    "LA",
    "La",
    "P",
    "PA",
    "RGB",
    "RGBA",
    "RGBa",
    "RGBX",
    "CMYK",
    "YCbCr",
    "I",
    "I;16",
    "I;16B",
    "I;16L",
    "I;16N",
    "F",
}


class ImageTooLarge(InputError):
    """An image over the pixel limit (Pillow's decompression-bomb limit): refused before it is decoded."""


def max_pixels() -> int:
    """Pillow's `Image.MAX_IMAGE_PIXELS` (89.5 megapixels unless the application changed it)."""
    return Image.MAX_IMAGE_PIXELS or 2**63


def open_image(source: ImageSource, name: str | None = None) -> Image.Image:
    """Decode a file (or its bytes) fully and upright; InputError names it when it cannot be.

    Pillow parses untrusted data, and a damaged file can make it raise almost
    any exception, so every failure while decoding is this one input's error.
    """
    name = name or (os.fspath(source) if not isinstance(source, bytes) else "image")
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            if image.width * image.height > max_pixels():
                raise ImageTooLarge(
                    f"{name}: {image.width}x{image.height} pixels is over the limit of {max_pixels():,}"
                )
            image.load()
            upright = ImageOps.exif_transpose(image)
            return upright if upright.mode in MODES else upright.convert("RGBA" if "A" in upright.getbands() else "RGB")
    except InputError:
        raise
    except UnidentifiedImageError as error:  # for bytes, Pillow's message quotes a BytesIO and its address
        reason = "not in a format gantx reads" if isinstance(source, bytes) else first_line(error)
        raise InputError(f"{name}: cannot read image ({reason})") from None
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"{name}: over the limit of {max_pixels():,} pixels") from None
    except Exception as error:  # noqa: BLE001 - see the docstring
        raise InputError(f"{name}: cannot read image ({first_line(error)})") from None


def to_uint8(image: Image.Image) -> Image.Image:
    """Bring 16-bit and float images into 8 bits per channel; other modes pass through."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        # Pillow reports 16-bit PNGs as I or I;16, both on a 0..65535 scale.
        return Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8), "L")
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")
    return image


def split_alpha(image: Image.Image, channels: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Colour as uint8 HxWxC (C = `channels`) and the alpha plane, if the image has one."""
    try:
        image = to_uint8(image)
        if image.mode == "P":
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        alpha = None
        if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
            alpha = np.asarray(image.getchannel("A"))
        colour = image.convert("L" if channels == 1 else "RGB")
        array = np.asarray(colour)
    except (ValueError, OSError) as error:  # a mode Pillow cannot convert
        raise InputError(f"cannot read a {image.mode} image ({first_line(error)})") from None
    return (array[:, :, None] if channels == 1 else array), alpha


def array_image(array: np.ndarray) -> Image.Image:
    """A caller's uint8 array as a Pillow image: HxW or HxWx1 (grey), HxWx3 (RGB) or HxWx4 (RGBA).

    InputError for any other.
    """
    if array.dtype != np.uint8:
        raise InputError(f"numpy images must be uint8, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return Image.fromarray(array, "L")
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return Image.fromarray(array, "RGB" if array.shape[2] == 3 else "RGBA")
    raise InputError(f"numpy images must be HxW, HxWx3 or HxWx4, got shape {array.shape}")


def array_to_image(colour: np.ndarray, alpha: np.ndarray | None) -> Image.Image:
    """HxWxC uint8 (+ alpha) back to a Pillow image: L, LA, RGB or RGBA."""
    planes = colour if colour.ndim == 3 else colour[:, :, None]
    if alpha is not None:
        planes = np.concatenate([planes, alpha[:, :, None]], axis=2)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[planes.shape[2]]
    return Image.fromarray(planes[:, :, 0] if mode == "L" else planes, mode)


TEMPORARY_SUFFIX = ".part"


@contextlib.contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """A temporary name beside `path` that becomes `path` only when the block completes; gone otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    os.close(handle)
    try:
        os.chmod(tmp_name, 0o666 & ~UMASK)  # mkstemp makes 0600; outputs get the permissions open() would give
        yield Path(tmp_name)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def remove_temporaries(targets: Iterable[Path]) -> list[Path]:
    """Delete what atomic_target left beside `targets` in a process killed mid-write (kill -9 gives no clean-up).

    One listing per folder. Only when nothing writes these targets any more:
    a temporary still being written would be taken from under its writer.
    """
    names: dict[Path, set[str]] = defaultdict(set)
    for target in targets:
        names[target.parent].add(target.name)
    removed = []
    for folder, targets_here in names.items():
        with contextlib.suppress(FileNotFoundError), os.scandir(folder) as entries:
            for entry in entries:
                name = entry.name
                if (
                    name.startswith(".")
                    and name.endswith(TEMPORARY_SUFFIX)
                    and name[1:].rsplit(".", 2)[0] in targets_here
                ):
                    Path(entry.path).unlink(missing_ok=True)
                    removed.append(Path(entry.path))
    return removed


def atomic_write(path: Path, write) -> None:
    """Call `write(tmp_path)` then rename into place, so `path` is never half-written."""
    with atomic_target(path) as tmp:
        write(tmp)


def write_image(image: Image.Image, target: Path | BinaryIO, image_format: str) -> None:
    """Write `image` as `image_format` (a Pillow name) to a file or a buffer; formats without alpha drop it."""
    if image_format not in FORMATS_WITH_ALPHA and image.mode in ("RGBA", "LA"):
        image = image.convert(image.mode[:-1])
    image.save(target, format=image_format, **SAVE_OPTIONS.get(image_format, {}))


def save_image(image: Image.Image, path: Path) -> None:
    """Write `image` atomically in the format `path`'s extension names."""
    atomic_write(path, lambda tmp: write_image(image, tmp, IMAGE_FORMATS[path.suffix.lower()]))
