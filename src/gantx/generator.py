"""`gantx.Generator`: sample images from a noise-to-image gantx model (DCGAN, conditional GAN)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from gantx.errors import GantxError, ModelError
from gantx.images import array_to_image
from gantx.model import to_pixels
from gantx.session import engine_label, open_model
from gantx.settings import RunSettings

DEFAULT_BATCH = 64  # samples are small: larger model calls than an image translator's


def generator_settings(settings: RunSettings = RunSettings()) -> RunSettings:
    """`settings` at a generator's batch size: the one place it is set (Generator, gantx generate, serve, demo)."""
    return settings.replace(batch_size=DEFAULT_BATCH)


class Generator:
    """Loads a noise2image model once; turns seeds (and labels) into images, reproducibly."""

    def __init__(self, model: str | os.PathLike[str], settings: RunSettings | None = None, **changes: Any) -> None:
        """`settings` as for Translator (its batch size: samples per model call); keywords change single fields."""
        self.settings = settings = (settings or generator_settings()).replace(**changes)
        self.session, self.info = open_model(model, settings)
        if self.info.kind != "noise2image":
            raise ModelError(f"{model}: is an {self.info.kind} model; translate images with it instead")
        expected = ["z", "label"] if self.info.conditional else ["z"]
        names = [node.name for node in self.session.get_inputs()]
        if names != expected:
            raise ModelError(f"{model}: a noise2image model must have inputs {expected}, it has {names}")

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    @property
    def engine(self) -> str:
        """Where and at what precision it runs, for people: "OpenVINO bf16", "CPUExecutionProvider fp32"."""
        return engine_label(self.session)

    def label_index(self, label: str | int) -> int:
        """A class name or index -> index; GantxError for labels the model does not know."""
        classes = self.info.classes
        if not classes:
            raise GantxError("this model is not conditional: it takes no labels")
        text = str(label)
        if text in classes:
            return classes.index(text)
        if text.isdigit() and int(text) < len(classes):
            return int(text)
        raise GantxError(f"unknown label {text!r}: choose a name or index of {', '.join(classes)}")

    def latents(self, count: int, seed: int | None = None, truncation: float | None = None) -> np.ndarray:
        """Standard normal z; with `truncation` T, values beyond +-T are redrawn (the truncation trick)."""
        if count < 1:
            raise GantxError(f"count must be at least 1, got {count}")
        if truncation is not None and truncation <= 0:
            raise GantxError(f"truncation must be positive, got {truncation}")
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((count, self.info.latent_dim)).astype(np.float32)
        if truncation is not None:
            while (outside := np.abs(z) > truncation).any():
                z[outside] = rng.standard_normal(int(outside.sum())).astype(np.float32)
        return z

    def decode(self, z: np.ndarray, labels: Sequence[int] | None = None) -> list[Image.Image]:
        """Run given latents (and label indices, for a conditional model) through the model."""
        if self.info.conditional and labels is None:
            raise GantxError("this model is conditional: give a label per sample")
        images: list[Image.Image] = []
        batch = self.settings.batch_size
        for start in range(0, len(z), batch):
            feeds = {"z": np.ascontiguousarray(z[start : start + batch], dtype=np.float32)}
            if self.info.conditional:
                feeds["label"] = np.asarray(labels[start : start + batch], dtype=np.int64)
            (output,) = self.session.run(["output"], feeds)
            images.extend(array_to_image(to_pixels(item), None) for item in output)
        return images

    def generate(
        self,
        count: int,
        labels: Sequence[str | int] | None = None,
        seed: int | None = None,
        truncation: float | None = None,
    ) -> list[Image.Image]:
        """`count` samples; a conditional model cycles through `labels` (default: every class)."""
        indices = None
        if self.info.conditional:
            wanted = [self.label_index(label) for label in labels] if labels else list(range(len(self.info.classes)))
            indices = [wanted[i % len(wanted)] for i in range(count)]
        elif labels:
            self.label_index(labels[0])  # raises: not conditional
        return self.decode(self.latents(count, seed, truncation), indices)

    def grid_columns(self, labels: Sequence[str | int] | None, count: int) -> int:
        """A grid of `generate`'s samples: a column per label (every class when none) if conditional, else square."""
        return len(labels or self.info.classes) if self.info.conditional else math.ceil(math.sqrt(count))


def slerp(start: np.ndarray, end: np.ndarray, steps: int) -> np.ndarray:
    """Points on the great circle from `start` to `end` (both ends included): a walk that stays at the prior's norm."""
    fractions = np.linspace(0.0, 1.0, steps, dtype=np.float64)[:, None]
    cos_angle = np.dot(start, end) / (np.linalg.norm(start) * np.linalg.norm(end))
    angle = np.arccos(np.clip(cos_angle, -1.0, 1.0))
    if angle < 1e-6:
        return ((1 - fractions) * start + fractions * end).astype(np.float32)
    return ((np.sin((1 - fractions) * angle) * start + np.sin(fractions * angle) * end) / np.sin(angle)).astype(
        np.float32
    )


def grid(images: Sequence[Image.Image], columns: int, scale: int = 1) -> Image.Image:
    """Tile equal-sized images row by row."""
    width, height = images[0].size
    rows = -(-len(images) // columns)
    sheet = Image.new(images[0].mode, (columns * width, rows * height))
    for index, image in enumerate(images):
        sheet.paste(image, ((index % columns) * width, (index // columns) * height))
    return sheet.resize((sheet.width * scale, sheet.height * scale), Image.Resampling.NEAREST) if scale > 1 else sheet
