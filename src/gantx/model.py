"""The gantx model contract (docs/model-format.md): its one reader and writer in code, and its pixel mapping.

`ModelInfo` holds every documented `gantx.*` key as a typed, validated field;
`ModelInfo.from_metadata` reads an ONNX file's metadata and `to_metadata`
writes it, so the exporter, the trainers' checkpoints and the runtime all go
through the same checks.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

from gantx.errors import ModelError
from gantx.records import from_dict

FORMATS = ("1", "2")  # format 2 adds gantx.scale; a model without it is still written as format 1
Kind = Literal["image2image", "noise2image"]
Fit = Literal["resize", "pad"]
Precision = Literal["fp32", "fp16", "int8"]
KINDS: tuple[str, ...] = get_args(Kind)
FITS: tuple[str, ...] = get_args(Fit)
PRECISIONS: tuple[str, ...] = get_args(Precision)
DIRECTIONS = ("A->B", "B->A")
Shape = tuple[int, int, int, int]


def to_model_units(pixels: np.ndarray) -> np.ndarray:
    """uint8 (...) x H x W x C -> float32 (...) x C x H x W in [-1, 1]: `x = u8 / 127.5 - 1`."""
    return np.moveaxis(pixels.astype(np.float32) / 127.5 - 1.0, -1, -3)


def to_pixels(values: np.ndarray) -> np.ndarray:
    """float (...) x C x H x W in [-1, 1] -> uint8 (...) x H x W x C: `u8 = round((clip(y, -1, 1) + 1) * 127.5)`."""
    return np.moveaxis(np.rint((np.clip(values, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8), -3, -1)


def parse_profile(text: str) -> tuple[Shape, Shape, Shape]:
    """`gantx.profile` "min;opt;max", each NxCxHxW, -> three shapes; ModelError when it is not that."""
    parts = text.lower().split(";")
    shapes = [part.split("x") for part in parts]
    if len(parts) != 3 or not all(
        len(dims) == 4 and all(dim.isdigit() and int(dim) > 0 for dim in dims) for dims in shapes
    ):
        raise ModelError(f"metadata 'gantx.profile'={text!r} is not 'min;opt;max' with each NxCxHxW")
    return tuple(tuple(int(dim) for dim in dims) for dims in shapes)  # type: ignore[return-value]


def format_profile(profile: tuple[Shape, ...]) -> str:
    return ";".join("x".join(map(str, shape)) for shape in profile)


@dataclass(frozen=True)
class ModelInfo:
    """What a runtime needs to know to feed a gantx model and read its output (one field per documented key)."""

    kind: Kind
    arch: str
    size: tuple[int, int]
    channels_out: int
    size_multiple: int = 0
    channels_in: int = 0
    domains: tuple[str, ...] = ()
    direction: str = ""
    latent_dim: int = 0
    classes: tuple[str, ...] = ()
    fit: Fit = "resize"
    pad_value: float = -1.0
    profile: tuple[Shape, ...] = ()  # TensorRT min, opt and max input shapes of a static export
    precision: Precision = "fp32"
    scale: int = 1  # output pixels per input pixel along each side (2 for a 2x upscaler)
    metadata: Mapping[str, str] = field(default_factory=dict, compare=False)  # every key as read, free-form ones too

    def __post_init__(self) -> None:
        for name in ("size", "domains", "classes", "profile"):  # lists from JSON or a checkpoint
            object.__setattr__(
                self, name, tuple(tuple(item) if name == "profile" else item for item in getattr(self, name))
            )
        problem = self._problem()
        if problem:
            raise ModelError(problem)

    def _problem(self) -> str | None:
        image_input = self.kind == "image2image"
        checks = [
            (self.kind in KINDS, "kind", self.kind, f"is not one of {', '.join(KINDS)}"),
            (
                len(self.size) == 2 and all(isinstance(side, int) and side > 0 for side in self.size),
                "size",
                self.size,
                "is not two positive sides H,W",
            ),
            (self.channels_out in (1, 3), "channels_out", self.channels_out, "must be 1 or 3"),
            (not image_input or self.channels_in in (1, 3), "channels_in", self.channels_in, "must be 1 or 3"),
            (self.size_multiple >= 0, "size_multiple", self.size_multiple, "must be 0 or more"),
            (
                image_input or self.latent_dim > 0,
                "latent_dim",
                self.latent_dim,
                "must be positive for a noise2image model",
            ),
            (
                self.direction in ("", *DIRECTIONS),
                "direction",
                self.direction,
                f"is not one of {', '.join(DIRECTIONS)}",
            ),
            (self.fit in FITS, "fit", self.fit, f"is not one of {', '.join(FITS)}"),
            (self.precision in PRECISIONS, "precision", self.precision, f"is not one of {', '.join(PRECISIONS)}"),
            (np.isfinite(self.pad_value), "pad_value", self.pad_value, "is not a finite number"),
            (
                self.scale >= 1 and (self.scale == 1 or image_input),
                "scale",
                self.scale,
                "must be 1 or more, and 1 for a noise2image model",
            ),
        ]
        for ok, key, value, why in checks:
            if not ok:
                return f"metadata 'gantx.{key}'={value!r} {why}"
        return None

    @property
    def conditional(self) -> bool:
        return bool(self.classes)

    # -- reading ----------------------------------------------------------------------------------------
    @classmethod
    def from_metadata(cls, meta: Mapping[str, str], source: str = "model") -> ModelInfo:
        """Parse and validate `gantx.*` metadata; ModelError names the source and what is wrong."""
        try:
            return cls._parse(meta)
        except ModelError as error:
            raise ModelError(f"{source}: {error}") from None

    @classmethod
    def from_session(cls, session: Any, source: str | os.PathLike[str]) -> ModelInfo:
        """The contract an open session (either engine) read from the model's metadata; ModelError when it breaks it."""
        return cls.from_metadata(session.get_modelmeta().custom_metadata_map, source=os.fspath(source))

    @classmethod
    def _parse(cls, meta: Mapping[str, str]) -> ModelInfo:
        def text(key: str, default: str | None = None) -> str:
            value = meta.get(f"gantx.{key}", default)
            if value is None:
                raise ModelError(f"not a gantx model, metadata key 'gantx.{key}' is missing")
            return value

        def number(key: str, kind: type, default: str | None = None):
            value = text(key, default)
            try:
                return kind(value)
            except ValueError:
                raise ModelError(
                    f"metadata 'gantx.{key}'={value!r} is not {'an integer' if kind is int else 'a number'}"
                ) from None

        def names(key: str) -> tuple[str, ...]:
            return tuple(name for name in text(key, "").split(",") if name)

        version = text("format")
        if version not in FORMATS:
            raise ModelError(
                f"gantx model format {version!r} is not supported (this gantx reads formats {', '.join(FORMATS)})"
            )
        kind = text("kind")
        if kind not in KINDS:
            raise ModelError(f"metadata 'gantx.kind'={kind!r} is not one of {', '.join(KINDS)}")
        size = text("size")
        try:
            height, width = (int(part) for part in size.split(","))
        except ValueError:
            raise ModelError(f"metadata 'gantx.size'={size!r} is not 'H,W'") from None
        image_input = kind == "image2image"
        return cls(
            kind=kind,  # type: ignore[arg-type]  # checked just above
            arch=text("arch"),
            size=(height, width),
            channels_out=number("channels_out", int),
            size_multiple=number("size_multiple", int) if image_input else 0,
            channels_in=number("channels_in", int) if image_input else 0,
            domains=names("domains") if image_input else (),
            direction=text("direction", "") if image_input else "",
            latent_dim=0 if image_input else number("latent_dim", int),
            classes=() if image_input else names("classes"),
            fit=text("fit", "resize"),  # type: ignore[arg-type]  # __post_init__ checks the value
            pad_value=number("pad_value", float, "-1"),
            profile=parse_profile(meta["gantx.profile"]) if "gantx.profile" in meta else (),
            precision=text("precision", "fp32"),  # type: ignore[arg-type]  # __post_init__ checks the value
            scale=number("scale", int, "1"),
            metadata=dict(meta),
        )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "model") -> ModelInfo:
        """The fields as `to_dict` wrote them (a checkpoint's contract); unknown keys are refused."""
        try:
            return from_dict(cls, values, f"{source} contract", error=ModelError)
        except ModelError as error:
            raise ModelError(f"{source}: {error}") from None

    # -- writing ----------------------------------------------------------------------------------------
    def to_metadata(self) -> dict[str, str]:
        """The documented `gantx.*` keys this model needs, as the ONNX metadata strings the contract defines."""
        meta = {
            "gantx.format": FORMATS[
                self.scale != 1
            ],  # a reader of format 1 would hand an upscaled image back at the input's size
            "gantx.kind": self.kind,
            "gantx.arch": self.arch,
            "gantx.size": ",".join(map(str, self.size)),
            "gantx.channels_out": str(self.channels_out),
            "gantx.precision": self.precision,
        }
        if self.kind == "image2image":
            meta.update(
                {
                    "gantx.channels_in": str(self.channels_in),
                    "gantx.size_multiple": str(self.size_multiple),
                    "gantx.domains": ",".join(self.domains),
                    "gantx.direction": self.direction,
                    "gantx.fit": self.fit,
                    "gantx.pad_value": repr(float(self.pad_value)),
                }
            )
        else:
            meta["gantx.latent_dim"] = str(self.latent_dim)
            if self.classes:
                meta["gantx.classes"] = ",".join(self.classes)
        if self.profile:
            meta["gantx.profile"] = format_profile(self.profile)
        if self.scale != 1:
            meta["gantx.scale"] = str(self.scale)
        return meta

    def to_dict(self) -> dict[str, Any]:
        """Plain fields (lists for tuples), for a checkpoint; `from_dict` reads them back."""
        values = {item.name: getattr(self, item.name) for item in dataclasses.fields(self) if item.name != "metadata"}
        return {
            key: [list(v) if isinstance(v, tuple) else v for v in value] if isinstance(value, tuple) else value
            for key, value in values.items()
        }
