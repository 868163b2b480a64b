"""Training data, loaded whole into memory as tensors in [-1, 1]: image folders and built-in Fashion-MNIST selections.

A SPEC (`--data`, `--data-b`) is a folder or a built-in selection:

    fashion-mnist                     all ten classes (labels kept, for cGAN)
    fashion-mnist:sneaker,ankle-boot  a class subset, by name or index
    fashion-mnist-edges[:classes]     pix2pix pairs: edge map (A) -> item (B), see gantx.edges
    fashion-mnist-m[:classes]         colour items: |photo patch - item| per channel (the MNIST-M recipe)

Everything is checked and decoded before training starts, so an empty folder,
an unreadable file or a pair without its partner stops the run with one line
naming the file (GantxError, exit code 2), not a traceback an hour in.
Fashion-MNIST comes from its standard idx files: /usr/share/datasets/fashion-mnist
(Debian's dataset-fashion-mnist) or any folder holding them (`fashion-mnist@DIR`,
or the GANTX_FASHION_MNIST environment variable).
"""

from __future__ import annotations

import gzip
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gantx.edges import edge_map
from gantx.errors import GantxError, InputError
from gantx.images import is_image_path, open_image, split_alpha
from gantx.model import to_model_units
from gantx.zoo import sample_photos

FASHION_DIRS = (Path("/usr/share/datasets/fashion-mnist"), Path.home() / ".cache/gantx/fashion-mnist")
FASHION_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot")
SPLIT_FILES = {"train": "train", "test": "t10k"}


@dataclass
class Images:
    """Images N x C x H x W in [-1, 1], optional integer labels, and the names of the labels."""

    images: torch.Tensor
    labels: torch.Tensor | None = None
    classes: tuple[str, ...] = ()
    name: str = ""

    def __len__(self) -> int:
        return len(self.images)


# -- Fashion-MNIST ----------------------------------------------------------------------------------


def fashion_dir(root: str | Path | None = None) -> Path:
    candidates = (
        [Path(root)]
        if root
        else [Path(os.environ["GANTX_FASHION_MNIST"])]
        if "GANTX_FASHION_MNIST" in os.environ
        else list(FASHION_DIRS)
    )
    for folder in candidates:
        if (folder / "train-images-idx3-ubyte.gz").is_file() or (folder / "train-images-idx3-ubyte").is_file():
            return folder
    raise GantxError(
        f"Fashion-MNIST idx files not found in {', '.join(map(str, candidates))}: "
        "apt-get install dataset-fashion-mnist, or download them and pass fashion-mnist@DIR"
    )


def read_idx(path: Path) -> np.ndarray:
    """One idx file (gzipped or not): magic (0, 0, dtype 0x08 = uint8, ndim), big-endian sizes, then the data."""
    if not path.is_file() and path.with_suffix("").is_file():
        path = path.with_suffix("")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except OSError as error:
        raise GantxError(f"{path}: cannot read idx file ({error})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise GantxError(f"{path}: not a uint8 idx file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise GantxError(f"{path}: idx header says {shape} but holds {data.size} values")
    return data.reshape(shape)


def fashion_mnist(split: str = "train", root: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(items N x 28 x 28 uint8, labels N uint8) of the train or test split."""
    folder = fashion_dir(root)
    prefix = SPLIT_FILES[split]
    return read_idx(folder / f"{prefix}-images-idx3-ubyte.gz"), read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")


def parse_classes(text: str) -> tuple[int, ...]:
    """'sneaker,ankle-boot' or '7,9' -> class indices; unknown names raise GantxError."""
    indices = []
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        if part.isdigit() and int(part) < len(FASHION_CLASSES):
            indices.append(int(part))
        elif part in FASHION_CLASSES:
            indices.append(FASHION_CLASSES.index(part))
        else:
            raise GantxError(f"unknown Fashion-MNIST class {part!r}; classes: {', '.join(FASHION_CLASSES)} (or 0-9)")
    return tuple(indices)


def photos(split: str) -> list[np.ndarray]:
    """Colour photos for Fashion-MNIST-M: left halves of gantx's bundled sample photos for train, right halves for test.

    They ship inside the package (read through importlib.resources, so a wheel
    install finds them too), the trainers need no extra dependency, and test
    items are blended with photo regions training never saw.
    """
    halves = []
    for path in sample_photos():
        array = np.asarray(open_image(path).convert("RGB"))
        middle = array.shape[1] // 2
        halves.append(array[:, :middle] if split == "train" else array[:, middle:])
    return halves


def blend_with_photos(items: np.ndarray, split: str, seed: int) -> np.ndarray:
    """MNIST-M recipe: out = |patch - item| per channel, a random 28x28 photo patch per item; N x 28 x 28 x 3 uint8."""
    rng = np.random.default_rng(seed)
    pool = photos(split)
    n, h, w = items.shape
    out = np.empty((n, h, w, 3), np.uint8)
    which = rng.integers(len(pool), size=n)
    for i in range(n):
        photo = pool[which[i]]
        y = rng.integers(photo.shape[0] - h + 1)
        x = rng.integers(photo.shape[1] - w + 1)
        patch = photo[y : y + h, x : x + w].astype(np.int16)
        out[i] = np.abs(patch - items[i][:, :, None].astype(np.int16)).astype(np.uint8)
    return out


# -- turning arrays into training tensors ---------------------------------------------------------------


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """uint8 N x H x W (x C) -> float N x C x H x W in [-1, 1], by the contract's pixel mapping."""
    return torch.from_numpy(np.ascontiguousarray(to_model_units(array[..., None] if array.ndim == 3 else array)))


def fit(images: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """Bring images to `channels` and `size`: 28 -> 32 by padding 2 px of background (-1), never by resizing."""
    if images.shape[1] != channels:
        images = images.mean(1, keepdim=True) if channels == 1 else images.expand(-1, channels, -1, -1)
    margin = size - images.shape[-1]
    if margin < 0 or margin % 2:
        raise GantxError(f"cannot pad {images.shape[-1]}x{images.shape[-2]} images to {size}x{size}")
    return F.pad(images, [margin // 2] * 4, value=-1.0) if margin else images.contiguous()


def _limit(n: int, limit: int | None, seed: int) -> np.ndarray:
    """Which of n samples to keep: all, or `limit` of them chosen at random (sorted, reproducible)."""
    if not limit or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def builtin(spec: str, split: str, limit: int | None, seed: int) -> tuple[Images, Images | None]:
    """A built-in selection: (images, paired targets or None)."""
    name, _, rest = spec.partition(":")
    name, _, root = name.partition("@")
    items, labels = fashion_mnist(split, root or None)
    classes = parse_classes(rest) if rest else tuple(range(len(FASHION_CLASSES)))
    keep = np.isin(labels, classes)
    items, labels = items[keep], labels[keep]
    chosen = _limit(len(items), limit, seed)
    items, labels = items[chosen], labels[chosen]
    # Labels are renumbered 0..k-1 in the order the classes were named.
    remap = np.zeros(10, np.int64)
    remap[list(classes)] = np.arange(len(classes))
    label_tensor = torch.from_numpy(remap[labels])
    names = tuple(FASHION_CLASSES[c] for c in classes)
    target = Images(to_tensor(items), label_tensor, names, name="item")
    if name == "fashion-mnist":
        target.name = names[0] if len(names) == 1 else "-".join(names) if len(names) <= 2 else "fashion-mnist"
        return target, None
    if name == "fashion-mnist-edges":
        return Images(to_tensor(edge_map(items)), label_tensor, names, name="edges"), target
    if name == "fashion-mnist-m":
        return Images(
            to_tensor(blend_with_photos(items, split, seed)), label_tensor, names, name="fashion-mnist-m"
        ), None
    raise GantxError(
        f"unknown dataset {spec!r}: give a folder or one of fashion-mnist, fashion-mnist-edges, fashion-mnist-m"
    )


# -- image folders ------------------------------------------------------------------------------------


def image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise GantxError(f"{folder}: no such folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_image_path(p))
    if not files:
        raise GantxError(f"{folder}: no images in this folder")
    return files


def _read(path: Path) -> Image.Image:
    try:
        return open_image(path)
    except InputError as error:
        raise GantxError(str(error)) from None


def _resized(image: Image.Image, channels: int, size: int) -> np.ndarray:
    """`image` as uint8 size x size x C (bicubic)."""
    colour, _ = split_alpha(image, channels)
    plane = Image.fromarray(colour[:, :, 0], "L") if channels == 1 else Image.fromarray(colour, "RGB")
    array = np.asarray(plane.resize((size, size), Image.BICUBIC))
    return array[:, :, None] if channels == 1 else array


def load_image(path: Path, channels: int, size: int) -> np.ndarray:
    """One image, decoded and resized to size x size; GantxError naming the file when it cannot be read."""
    return _resized(_read(path), channels, size)


def _stack(arrays: list[np.ndarray]) -> torch.Tensor:
    return to_tensor(np.stack(arrays))


def load_folder(folder: Path, channels: int, size: int, limit: int | None, seed: int) -> Images:
    files = image_files(folder)
    files = [files[i] for i in _limit(len(files), limit, seed)]
    return Images(_stack([load_image(p, channels, size) for p in files]), name=folder.name)


def load_classes(folder: Path, channels: int, size: int, limit: int | None, seed: int) -> Images:
    """Class sub-folders (cGAN): one folder per class, named after it."""
    if not folder.is_dir():
        raise GantxError(f"{folder}: no such folder")
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir())
    if not class_dirs:
        raise GantxError(f"{folder}: no class sub-folders (expected one folder of images per class)")
    files, labels = [], []
    for index, class_dir in enumerate(class_dirs):
        found = image_files(class_dir)
        files += found
        labels += [index] * len(found)
    chosen = _limit(len(files), limit, seed)
    images = _stack([load_image(files[i], channels, size) for i in chosen])
    return Images(
        images, torch.tensor([labels[i] for i in chosen]), tuple(d.name for d in class_dirs), name=folder.name
    )


def load_pairs(
    folder: Path, channels_a: int, channels_b: int, size: int, limit: int | None, seed: int
) -> tuple[Images, Images]:
    """Aligned pairs: `A/` and `B/` holding equal file names, or images holding A and B side by side."""
    if (folder / "A").is_dir() or (folder / "B").is_dir():
        files_a, files_b = image_files(folder / "A"), image_files(folder / "B")
        names_b = {p.name for p in files_b}
        for path in files_a:
            if path.name not in names_b:
                raise GantxError(f"{path}: no partner {folder / 'B' / path.name} (pairs need equal names in A/ and B/)")
        names_a = {p.name for p in files_a}
        for path in files_b:
            if path.name not in names_a:
                raise GantxError(f"{path}: no partner {folder / 'A' / path.name} (pairs need equal names in A/ and B/)")
        chosen = _limit(len(files_a), limit, seed)
        a = [load_image(files_a[i], channels_a, size) for i in chosen]
        b = [load_image(folder / "B" / files_a[i].name, channels_b, size) for i in chosen]
        return Images(_stack(a), name="A"), Images(_stack(b), name="B")
    files = image_files(folder)
    files = [files[i] for i in _limit(len(files), limit, seed)]
    a, b = [], []
    for path in files:
        image = _read(path)
        width, height = image.size
        if width < 2 or width % 2:
            raise GantxError(f"{path}: a side-by-side pair must have an even width (A left, B right), got {width}")
        a.append(_resized(image.crop((0, 0, width // 2, height)), channels_a, size))
        b.append(_resized(image.crop((width // 2, 0, width, height)), channels_b, size))
    return Images(_stack(a), name="A"), Images(_stack(b), name="B")


def photo_pairs(
    folder: Path, size: int, scale: int, count: int, seed: int, jpeg: int = 0, noise: float = 0.0
) -> tuple[Images, Images]:
    """Super-resolution pairs: `count` random size x size crops from `folder` (the targets) and each reduced by `scale`.

    Each crop covers a random square of 1 to 2 times `size` pixels of a photo
    (chosen in proportion to its area), brought to size x size with Lanczos,
    so the network sees detail at several scales; its input is that crop
    reduced with Lanczos, as `gantx translate` users' photos would be upscaled
    from, then optionally JPEG-compressed (a random quality from `jpeg` to 95)
    and given Gaussian noise (`noise` levels): real photos are rarely clean.
    """
    photographs = [_read(path).convert("RGB") for path in image_files(folder)]
    small = [photo for photo in photographs if min(photo.size) < size]
    if small:
        raise GantxError(f"{folder}: every photo must be at least {size} px on its shorter side for {size}-px crops")
    rng, degrade = (
        np.random.default_rng(seed),
        np.random.default_rng([seed, 1]),
    )  # the same crops, whatever the degradation
    areas = np.array([photo.width * photo.height for photo in photographs], np.float64)
    targets, inputs = [], []
    for index in rng.choice(len(photographs), size=count, p=areas / areas.sum()):
        photo = photographs[index]
        side = int(rng.integers(size, min(2 * size, *photo.size) + 1))
        left, top = int(rng.integers(photo.width - side + 1)), int(rng.integers(photo.height - side + 1))
        target = photo.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)
        reduced = target.resize((size // scale, size // scale), Image.Resampling.LANCZOS)
        if jpeg:
            buffer = io.BytesIO()
            reduced.save(buffer, format="JPEG", quality=int(degrade.integers(jpeg, 96)))
            reduced = Image.open(buffer).convert("RGB")
        pixels = np.asarray(reduced, np.float64)
        if noise:
            pixels = pixels + degrade.normal(0.0, noise, pixels.shape)
        inputs.append(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
        targets.append(np.asarray(target))
    return Images(_stack(inputs), name="photo"), Images(_stack(targets), name=f"photo-x{scale}")


def is_builtin(spec: str) -> bool:
    return spec.split(":")[0].split("@")[0] in ("fashion-mnist", "fashion-mnist-edges", "fashion-mnist-m")
