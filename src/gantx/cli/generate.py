"""`gantx generate -m MODEL -o OUT`: samples, grids and latent walks from a noise-to-image model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from gantx.cli.options import ModelOption, run_options
from gantx.errors import GantxError
from gantx.generator import Generator, generator_settings, grid, slerp
from gantx.images import atomic_write, save_image
from gantx.settings import RunSettings

ANIMATION_SUFFIXES = (".gif",)


@run_options(exclude=("size", "tile"), base=generator_settings())
def generate(
    model: ModelOption,
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Folder for the samples (or a .gif with --interpolate).", show_default=False
        ),
    ],
    label: Annotated[
        list[str] | None,
        typer.Option("--label", "-l", help="Class name or index; repeat for several (default: all)."),
    ] = None,
    count: Annotated[int, typer.Option("--count", "-n", help="How many samples (keyframes with --interpolate).")] = 64,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same samples.")] = 0,
    truncation: Annotated[
        float | None, typer.Option("--truncation", help="Redraw latent values beyond +-T: fewer, cleaner modes.")
    ] = None,
    grid_file: Annotated[Path | None, typer.Option("--grid", help="Also write all samples as one grid PNG.")] = None,
    interpolate: Annotated[
        int | None, typer.Option("--interpolate", help="Frames per step of a latent walk through the keyframes.")
    ] = None,
    *,
    settings: RunSettings,
) -> None:
    """Sample images from a DCGAN or conditional GAN model (a path or a bundled name)."""
    if count < 1:
        raise GantxError(f"--count {count}: must be at least 1")
    if interpolate is not None and (interpolate < 2 or count < 2):
        raise GantxError("--interpolate needs at least 2 frames per step and --count of at least 2 keyframes")
    generator = Generator(model, settings)
    labels = list(label or [])
    if interpolate:
        _latent_walk(generator, output, labels, count, seed, truncation, interpolate)
        return
    images = generator.generate(count, labels, seed, truncation)
    classes = generator.info.classes
    names = numbered(count)
    if classes:
        wanted = [generator.label_index(item) for item in labels] if labels else list(range(len(classes)))
        names = [f"{name}-{classes[wanted[index % len(wanted)]]}" for index, name in enumerate(names)]
    for name, image in zip(names, images):
        save_image(image, output / f"{name}.png")
    if grid_file:
        save_image(grid(images, generator.grid_columns(labels, count), scale=2), grid_file)
    typer.echo(f"wrote {count} samples to {output}/" + (f" and a grid to {grid_file}" if grid_file else ""))


def numbered(count: int) -> list[str]:
    """0 to count - 1, zero-padded to one width, so that files named by them sort in order (09 before 10)."""
    width = len(str(count - 1))
    return [f"{index:0{width}d}" for index in range(count)]


def _latent_walk(
    generator: Generator,
    output: Path,
    labels: list[str],
    keyframes: int,
    seed: int,
    truncation: float | None,
    steps: int,
) -> None:
    """Walk through `keyframes` latents on great circles; a conditional model holds one label."""
    z = generator.latents(keyframes, seed, truncation)
    path = np.concatenate(
        [slerp(z[i], z[i + 1], steps)[: -1 if i < keyframes - 2 else None] for i in range(keyframes - 1)]
    )
    label_indices = None
    if generator.info.conditional:
        label_indices = [generator.label_index(labels[0] if labels else 0)] * len(path)
    frames = [frame.resize((frame.width * 4, frame.height * 4)) for frame in generator.decode(path, label_indices)]
    if output.suffix.lower() in ANIMATION_SUFFIXES:
        atomic_write(
            output,
            lambda tmp: frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=60, loop=0),
        )
    else:
        for name, frame in zip(numbered(len(frames)), frames):
            save_image(frame, output / f"{name}.png")
    typer.echo(f"wrote a {len(frames)}-frame latent walk to {output}")
