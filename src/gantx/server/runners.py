"""How `gantx serve` runs one kind of model: a runner per kind, all with the same steps (LitServe's LitAPI shape).

The routes and the batcher never ask which kind of model they hold; the
runner, chosen once from the model's kind (`RUNNERS`), knows:

- `decode(body, options)`: the request's bytes -> an item (I/O thread pool);
- `batch_key(item)`: items with equal keys may share one model call;
- `run(items)`: one model call for a batch -> one output per item (model thread);
- `encode(item, output, options)`: -> the answer's bytes and media type (I/O thread pool).

`load` opens the session and runs it once (model thread), so the first
request does not pay for allocation.
"""

from __future__ import annotations

import io
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from gantx.generator import Generator, generator_settings, grid
from gantx.images import IMAGE_FORMATS, OUTPUT_SUFFIX, open_image, write_image
from gantx.model import ModelInfo
from gantx.settings import SizeSpec
from gantx.translator import Prepared, Translator, prepare_image

if TYPE_CHECKING:
    from gantx.server.config import ServeSettings

MAX_SAMPLES = 256  # per generate request: a grid of 256 items is already a large image


class Runner(Protocol):
    kind: str  # the contract's gantx.kind it serves
    action: str  # the endpoint's last segment: /v1/models/NAME/ACTION
    max_batch: int  # most requests in one model call

    def load(self) -> str: ...
    def decode(self, body: bytes, options: Any) -> Any: ...
    def batch_key(self, item: Any) -> Hashable: ...
    def run(self, items: Sequence[Any]) -> list[Any]: ...
    def encode(self, item: Any, output: Any, options: Any) -> tuple[bytes, str]: ...


def encode_image(image: Image.Image, image_format: str) -> tuple[bytes, str]:
    """`image` written as `gantx translate` writes it, and its media type."""
    buffer = io.BytesIO()
    write_image(image, buffer, image_format)
    return buffer.getvalue(), Image.MIME[image_format]


@dataclass(frozen=True)
class TranslateOptions:
    """The query of a translate request."""

    output_format: str  # png, jpg or webp
    size: SizeSpec


class TranslateRunner:
    """image2image: requests whose prepared tensors have one shape share a model call of up to --max-batch."""

    kind, action = "image2image", "translate"

    def __init__(self, path: Path, info: ModelInfo, settings: ServeSettings) -> None:
        self.path, self.info = path, info
        self.max_batch = settings.max_batch
        self.settings = settings.run.replace(batch_size=settings.max_batch)  # size: each request asks its own
        self.translator: Translator | None = None

    def load(self) -> str:
        translator = Translator(self.path, self.settings)
        blank = Image.new("L" if self.info.channels_in == 1 else "RGB", self.info.size[::-1])
        translator.infer([prepare_image(blank, self.info)])
        self.translator = translator
        return translator.engine

    def decode(self, body: bytes, options: TranslateOptions) -> Prepared:
        return prepare_image(open_image(body, "upload"), self.info, options.size)

    def batch_key(self, item: Prepared) -> Hashable:
        return item.tensor.shape

    def run(self, items: Sequence[Prepared]) -> list[np.ndarray]:
        return self.translator.infer(items)

    def encode(self, item: Prepared, output: np.ndarray, options: TranslateOptions) -> tuple[bytes, str]:
        return encode_image(self.translator.finish(item, output), IMAGE_FORMATS[OUTPUT_SUFFIX[options.output_format]])


class GenerateRequest(BaseModel):
    """The JSON body of a generate request."""

    model_config = ConfigDict(extra="forbid")

    labels: list[int | str] = Field(
        default_factory=list,
        max_length=MAX_SAMPLES,
        description="Class names or indices, cycled (conditional models; default: every class).",
    )
    n: int = Field(1, ge=1, le=MAX_SAMPLES, description="How many samples: one PNG for 1, a grid otherwise.")
    seed: int | None = Field(None, ge=0, description="Same seed, same samples (default: random).")
    truncation: float | None = Field(None, gt=0, description="Redraw latent values beyond +-T.")


class GenerateRunner:
    """noise2image: each request is a model call of its own (its n samples are already a batch)."""

    kind, action = "noise2image", "generate"
    max_batch = 1

    def __init__(self, path: Path, info: ModelInfo, settings: ServeSettings) -> None:
        self.path, self.info = path, info
        self.settings = generator_settings(settings.run)
        self.generator: Generator | None = None

    def load(self) -> str:
        generator = Generator(self.path, self.settings)
        generator.generate(1, seed=0)
        self.generator = generator
        return generator.engine

    def decode(self, body: bytes, options: None) -> GenerateRequest:
        return GenerateRequest.model_validate_json(body or b"{}")

    def batch_key(self, item: GenerateRequest) -> Hashable:
        return id(item)

    def run(self, items: Sequence[GenerateRequest]) -> list[list[Image.Image]]:
        return [self.generator.generate(asked.n, asked.labels, asked.seed, asked.truncation) for asked in items]

    def encode(self, item: GenerateRequest, output: list[Image.Image], options: None) -> tuple[bytes, str]:
        sheet = output[0] if len(output) == 1 else grid(output, self.generator.grid_columns(item.labels, item.n))
        return encode_image(sheet, "PNG")


RUNNERS = {runner.kind: runner for runner in (TranslateRunner, GenerateRunner)}  # a new kind of model: one runner here
