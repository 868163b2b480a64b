"""Models and sample images that ship inside the package, found by name."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

MODEL_SUFFIX = ".onnx"


def _data_dir(name: str) -> Path:
    return Path(str(resources.files("gantx") / "data" / name))


def bundled_models() -> dict[str, Path]:
    """Name -> path of every model in the zoo."""
    folder = _data_dir("models")
    return {path.stem: path for path in sorted(folder.glob(f"*{MODEL_SUFFIX}"))}


def sample_images() -> list[Path]:
    folder = _data_dir("samples")
    return sorted(path for path in folder.iterdir() if path.suffix.lower() in (".jpg", ".png"))


def resolve_model(model: str | os.PathLike[str]) -> Path:
    """A path that exists, or the zoo model of that name; otherwise the path, for the caller to report."""
    path = Path(model)
    if path.exists():
        return path
    return bundled_models().get(os.fspath(model), path)
