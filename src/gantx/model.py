"""The gantx model contract (docs/model-format.md), read from ONNX metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping

from gantx.errors import ModelError

FORMAT_VERSION = "1"
KINDS = ("image2image", "noise2image")
FITS = ("resize", "pad")


@dataclass(frozen=True)
class ModelInfo:
    """What a runtime needs to know to feed a gantx model and read its output."""

    kind: Literal["image2image", "noise2image"]
    arch: str
    size: tuple[int, int]
    size_multiple: int
    channels_in: int
    channels_out: int
    domains: tuple[str, ...] = ()
    direction: str = ""
    latent_dim: int = 0
    classes: tuple[str, ...] = ()
    fit: Literal["resize", "pad"] = "resize"
    pad_value: float = -1.0
    metadata: Mapping[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str], source: str = "model") -> ModelInfo:
        """Parse and validate `gantx.*` metadata; raise ModelError naming what is wrong."""

        def get(key: str, default: str | None = None) -> str:
            value = meta.get(f"gantx.{key}", default)
            if value is None:
                raise ModelError(f"{source}: not a gantx model, metadata key 'gantx.{key}' is missing")
            return value

        def integer(key: str, default: str | None = None) -> int:
            value = get(key, default)
            try:
                return int(value)
            except ValueError:
                raise ModelError(f"{source}: metadata 'gantx.{key}'={value!r} is not an integer") from None

        version = get("format")
        if version != FORMAT_VERSION:
            raise ModelError(f"{source}: gantx model format {version!r} is not supported (this gantx reads format {FORMAT_VERSION})")
        kind = get("kind")
        if kind not in KINDS:
            raise ModelError(f"{source}: metadata 'gantx.kind'={kind!r} is not one of {', '.join(KINDS)}")
        size_text = get("size")
        try:
            height, width = (int(part) for part in size_text.split(","))
        except ValueError:
            raise ModelError(f"{source}: metadata 'gantx.size'={size_text!r} is not 'H,W'") from None
        image_input = kind == "image2image"
        channels_in = integer("channels_in") if image_input else 0
        channels_out = integer("channels_out")
        for key, channels in (("channels_in", channels_in), ("channels_out", channels_out)):
            if channels not in (1, 3) and not (key == "channels_in" and not image_input):
                raise ModelError(f"{source}: metadata 'gantx.{key}'={channels} must be 1 or 3")
        fit = get("fit", "resize")
        if fit not in FITS:
            raise ModelError(f"{source}: metadata 'gantx.fit'={fit!r} is not one of {', '.join(FITS)}")
        return cls(
            kind=kind,  # type: ignore[arg-type]
            arch=get("arch"),
            size=(height, width),
            size_multiple=integer("size_multiple") if image_input else 0,
            channels_in=channels_in,
            channels_out=channels_out,
            domains=tuple(name for name in get("domains", "").split(",") if name),
            direction=get("direction", ""),
            latent_dim=integer("latent_dim") if not image_input else 0,
            classes=tuple(name for name in get("classes", "").split(",") if name),
            fit=fit,  # type: ignore[arg-type]
            pad_value=float(get("pad_value", "-1")),
            metadata=dict(meta),
        )

    @property
    def conditional(self) -> bool:
        return bool(self.classes)
