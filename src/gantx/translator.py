"""`gantx.Translator`: run an image-to-image gantx model on images, in batches."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
from PIL import Image

from gantx.binding import batch_runner
from gantx.errors import GantxError, InputError, ModelError
from gantx.images import ImageTooLarge, array_image, array_to_image, max_pixels, open_image, split_alpha
from gantx.model import ModelInfo, to_model_units, to_pixels
from gantx.pipeline import translate_ordered
from gantx.session import engine_label, open_model
from gantx.settings import RunSettings, SizeSpec
from gantx.tiles import Grid, blend, overlap_for, plan_grid

ImageLike = Image.Image | np.ndarray
ImageInput = Image.Image | np.ndarray | str | os.PathLike | bytes  # bytes: an encoded image file
ONE_IMAGE = (Image.Image, np.ndarray, str, os.PathLike, bytes)
RESAMPLE = Image.Resampling.LANCZOS


def resolve_size(size: SizeSpec, own: tuple[int, int]) -> tuple[int, int]:
    """The (H, W) `size` gives an image of size `own`."""
    if size == "auto":
        return own
    return _shorter_side(own, size) if isinstance(size, int) else size


def _resize(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize uint8 HxWxC to (H, W) with Pillow."""
    if pixels.shape[:2] == size:
        return pixels
    image = array_to_image(pixels, None)
    resized = np.asarray(image.resize((size[1], size[0]), RESAMPLE))
    return resized if resized.ndim == 3 else resized[:, :, None]


def _shorter_side(size: tuple[int, int], shorter: int) -> tuple[int, int]:
    height, width = size
    scale = shorter / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


@dataclass
class Prepared:
    """One image ready for the model, and what it takes to bring the result back."""

    tensor: np.ndarray  # float32 C x H x W, the shape the model runs at
    box: tuple[int, int, int, int]  # top, left, height, width of the image inside `tensor`
    out_size: tuple[int, int]  # (H, W) of the translated image handed back: the size asked for, times gantx.scale
    alpha: np.ndarray | None  # original alpha, already at `out_size`
    as_array: bool  # the caller gave a numpy array, so return one


def prepare_image(image: ImageInput, info: ModelInfo, size: SizeSpec = "auto") -> Prepared:
    """Apply the size policy `size` and the contract `info` to one image: what every gantx runtime feeds a model."""
    as_array = isinstance(image, np.ndarray)
    pil = array_image(image) if as_array else image if isinstance(image, Image.Image) else open_image(image)
    pixels, alpha = split_alpha(pil, info.channels_in)
    if not pixels.size:
        raise InputError(f"an empty image ({pixels.shape[1]}x{pixels.shape[0]} pixels) has nothing to translate")
    in_size = resolve_size(size, pixels.shape[:2])
    if in_size[0] * in_size[1] > max_pixels():  # a size asked for may be far larger than the image itself
        raise ImageTooLarge(f"size {in_size[0]}x{in_size[1]} is over the limit of {max_pixels():,} pixels")
    pixels = _resize(pixels, in_size)
    out_size = (in_size[0] * info.scale, in_size[1] * info.scale)
    if alpha is not None and alpha.shape != out_size:
        alpha = np.asarray(Image.fromarray(alpha).resize((out_size[1], out_size[0]), RESAMPLE))
    multiple = info.size_multiple
    fill = info.pad_value if info.fit == "pad" else None  # the background the model was trained on
    if multiple > 0:
        tensor = to_model_units(pixels)
        padded_size = tuple(side + -side % multiple for side in tensor.shape[1:])
        tensor, box = _pad_around(tensor, padded_size, fill)
    elif fill is not None:
        tensor, box = _pad_around(to_model_units(_shrink_to_fit(pixels, info.size)), info.size, fill)
    else:
        tensor = to_model_units(_resize(pixels, info.size))
        box = (0, 0, *info.size)
    return Prepared(tensor, box, out_size, alpha, as_array)


class Translator:
    """Loads a gantx image-to-image model once and translates images with it.

    Safe to share between threads: ONNX Runtime sessions are, OpenVINO sessions
    give each thread its own infer request, and a Translator keeps no per-call
    state. How it runs (provider, precision, batch size, size policy, tiles,
    threads, ...) is one `RunSettings`; keywords change single fields:
    `Translator("m.onnx", provider="cpu", batch_size=4)`.
    """

    def __init__(self, model: str | os.PathLike[str], settings: RunSettings | None = None, **changes: Any) -> None:
        self.settings = settings = (settings or RunSettings()).replace(**changes)
        self.session, self.info = open_model(model, settings)
        if self.info.kind != "image2image":
            raise ModelError(f"{model}: is a {self.info.kind} model; it generates images rather than translating them")
        names = [node.name for node in self.session.get_inputs()]
        if names != ["input"]:
            raise ModelError(f"{model}: an image2image model must have one input named 'input', it has {names}")
        self.run_batch = batch_runner(self.session, settings)
        self.model_path = os.fspath(model)
        multiple, tile = self.info.size_multiple, settings.tile
        if tile is not None and (multiple == 0 or tile % multiple or tile < 4 * multiple):
            raise GantxError(
                f"--tile {tile}: this model only takes {self.info.size[0]}x{self.info.size[1]} images"
                if multiple == 0
                else (
                    f"--tile {tile}: tiles must be a multiple of {multiple} (the model's gantx.size_multiple) "
                    f"of at least {4 * multiple}"
                )
            )

    @property
    def batch_size(self) -> int:
        """Images per model call: what the pipelines (gantx.pipeline.BatchModel) read."""
        return self.settings.batch_size

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    @property
    def engine(self) -> str:
        """Where and at what precision it runs, for people: "OpenVINO bf16", "CPUExecutionProvider fp32"."""
        return engine_label(self.session)

    # -- one image in, one image out --------------------------------------------------------------
    def prepare(self, image: ImageInput) -> Prepared:
        """Bring `image` (a Pillow image, a uint8 array, a file's path or its bytes) to a shape the model takes."""
        return prepare_image(image, self.info, self.settings.size)

    def finish(self, prepared: Prepared, output: np.ndarray) -> ImageLike:
        """Crop the model output back to the image, restore its size and alpha."""
        channels, out_h, out_w = output.shape
        in_h, in_w = prepared.tensor.shape[1:]
        scale_y, scale_x = out_h / in_h, out_w / in_w  # models may upscale
        top, left, height, width = prepared.box
        crop = output[
            :,
            round(top * scale_y) : round((top + height) * scale_y),
            round(left * scale_x) : round((left + width) * scale_x),
        ]
        pixels = _resize(to_pixels(crop), prepared.out_size)
        if prepared.as_array:
            planes = pixels if prepared.alpha is None else np.concatenate([pixels, prepared.alpha[:, :, None]], axis=2)
            return planes[:, :, 0] if planes.shape[2] == 1 else planes
        return array_to_image(pixels, prepared.alpha)

    # -- batches ------------------------------------------------------------------------------------
    def infer(self, batch: Sequence[Prepared]) -> list[np.ndarray]:
        """Run prepared images through the model (in tiles, where `tile` asks), equal shapes batched together."""
        pieces: list[np.ndarray] = []
        plans: list[tuple[Grid | None, range]] = []
        for prepared in batch:
            tensor, grid = prepared.tensor, self._grid(prepared.tensor)
            tiles = (
                [tensor]
                if grid is None
                else [tensor[:, top : top + grid.height, left : left + grid.width] for top, left in grid.boxes()]
            )
            plans.append((grid, range(len(pieces), len(pieces) + len(tiles))))
            pieces += tiles
        outputs = self._run(pieces)
        return [
            outputs[indices[0]]
            if grid is None
            else blend(grid, [outputs[index] for index in indices], *prepared.tensor.shape[1:], self.info.scale)
            for prepared, (grid, indices) in zip(batch, plans)
        ]

    def _grid(self, tensor: np.ndarray) -> Grid | None:
        """How `tensor` is cut into tiles, or None when it runs whole (no `tile`, or one tile covers it)."""
        tile = self.settings.tile
        if tile is None:
            return None
        _, height, width = tensor.shape
        multiple = self.info.size_multiple
        grid = plan_grid(height, width, tile, overlap_for(tile, multiple), multiple)
        return grid if len(grid.boxes()) > 1 else None

    def _run(self, tensors: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The model's outputs for C x H x W tensors, in order; equal shapes go through in batches of `batch_size`."""
        outputs: dict[int, np.ndarray] = {}
        by_shape: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for index, tensor in enumerate(tensors):
            by_shape[tensor.shape].append(index)
        for indices in by_shape.values():
            for start in range(0, len(indices), self.settings.batch_size):
                chunk = indices[start : start + self.settings.batch_size]
                outputs.update(zip(chunk, self.run_batch(np.stack([tensors[index] for index in chunk]))))
        return [outputs[index] for index in range(len(tensors))]

    def translate_many(self, images: Sequence[ImageInput]) -> list[ImageLike]:
        prepared = [self.prepare(image) for image in images]
        return [self.finish(item, output) for item, output in zip(prepared, self.infer(prepared))]

    def translate_stream(self, images: Iterable[ImageInput]) -> Iterator[ImageLike]:
        """Translate an iterator (camera frames, a generator) lazily and in order, with
        preparing and finishing in worker threads beside the model (gantx.pipeline)."""
        for _, outcome in translate_ordered(self, images, self.prepare):
            yield outcome.result()

    @overload
    def translate(self, images: Image.Image | str | os.PathLike | bytes) -> Image.Image: ...
    @overload
    def translate(self, images: np.ndarray) -> np.ndarray: ...
    @overload
    def translate(self, images: list[ImageInput] | tuple[ImageInput, ...]) -> list[ImageLike]: ...
    @overload
    def translate(self, images: Iterable[ImageInput]) -> Iterator[ImageLike]: ...
    def translate(self, images):
        """An image (or its file's path or bytes) gives an image, a list a list, and any other iterable an iterator.

        Anything else is a TypeError at once, not on the iterator's first step.
        """
        if isinstance(images, ONE_IMAGE):
            return self.translate_many([images])[0]
        if isinstance(images, (list, tuple)):
            return self.translate_many(images)
        try:
            stream = iter(images)
        except TypeError:
            raise TypeError(
                f"translate takes an image (Pillow, uint8 array, path or bytes) or an iterable of them, "
                f"not {type(images).__name__}"
            ) from None
        return self.translate_stream(stream)

    __call__ = translate


def _shrink_to_fit(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale H x W x C down, keeping its aspect, until it fits inside `size`; smaller images stay as they are."""
    height, width = pixels.shape[:2]
    scale = min(size[0] / height, size[1] / width)
    if scale >= 1:
        return pixels
    return _resize(pixels, (max(1, int(height * scale)), max(1, int(width * scale))))


def _pad_around(
    tensor: np.ndarray, size: tuple[int, int], fill: float | None
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Pad C x H x W to `size`, split evenly around the image: with `fill` (fit=pad), else reflected."""
    _, height, width = tensor.shape
    pad_h, pad_w = size[0] - height, size[1] - width
    top, left = pad_h // 2, pad_w // 2
    widths = ((0, 0), (top, pad_h - top), (left, pad_w - left))
    if fill is not None:
        padded = np.pad(tensor, widths, mode="constant", constant_values=fill)
    else:
        padded = np.pad(
            tensor, widths, mode="reflect" if min(height, width) > 1 else "edge"
        )  # reflect needs two pixels
    return padded, (top, left, height, width)
