"""Models and sample items that ship inside the package, found by name."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from gantx.images import is_image_path

MODEL_SUFFIX = ".onnx"
PHOTO_UPSCALER = (
    "photo-upscale2x"  # the zoo's photo model (benchmarks/upscale.py trains it), beside the Fashion-MNIST ones
)


def data_file(name: str) -> Path:
    """A file or folder that ships in the package's data folder (read through importlib.resources, so wheels work)."""
    return Path(str(resources.files("gantx") / "data" / name))


def bundled_models() -> dict[str, Path]:
    """Name -> path of every model in the zoo (hidden files, like cached graphs of an older gantx, are not models)."""
    folder = data_file("models")
    return {path.stem: path for path in sorted(folder.glob(f"*{MODEL_SUFFIX}")) if not path.name.startswith(".")}


def fashion_samples(prefix: str = "") -> list[Path]:
    """Real Fashion-MNIST test items bundled for the demo (data/fashion/SOURCES.md), named CLASS-INDEX.png.

    `prefix` picks a subset: "sneaker-", "ankle-boot-", or "m-" for their Fashion-MNIST-M versions.
    """
    folder = data_file("fashion")
    paths = sorted(folder.glob(f"{prefix}*.png"))
    return paths if prefix.startswith("m-") else [path for path in paths if not path.name.startswith("m-")]


def sample_photos() -> list[Path]:
    """The colour photos bundled with gantx (data/samples/SOURCES.md).

    Fashion-MNIST-M blends items with patches of them.
    """
    return sorted(path for path in data_file("samples").iterdir() if is_image_path(path))


def resolve_model(model: str | os.PathLike[str]) -> Path:
    """A path that exists, or the zoo model of that name; otherwise the path, for the caller to report."""
    path = Path(model)
    if path.exists():
        return path
    return bundled_models().get(os.fspath(model), path)
