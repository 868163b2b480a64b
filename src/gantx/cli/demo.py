"""`gantx demo`: the bundled models on the bundled sample images, no download, no flags."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from PIL import Image

from gantx.images import open_image, save_image
from gantx.session import open_model
from gantx.translator import Translator
from gantx.zoo import bundled_models, sample_images
from gantx.cli.options import ProviderOption

TILE = 192


def overview(rows: list[list[Image.Image]]) -> Image.Image:
    """A grid, one row per sample, one column per model, each tile fitted into TILE x TILE."""
    columns = max(len(row) for row in rows)
    sheet = Image.new("RGB", (columns * TILE, len(rows) * TILE), "white")
    for y, row in enumerate(rows):
        for x, image in enumerate(row):
            tile = image.convert("RGB")
            tile.thumbnail((TILE, TILE))
            sheet.paste(tile, (x * TILE + (TILE - tile.width) // 2, y * TILE + (TILE - tile.height) // 2))
    return sheet


def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the results.")] = Path("gantx-demo"),
    provider: ProviderOption = "auto",
) -> None:
    """Translate the bundled sample images with every bundled translator; write results and an overview."""
    samples = sample_images()
    images = [open_image(path) for path in samples]
    rows = [[image] for image in images]
    for name, path in bundled_models().items():
        _, info = open_model(path, "cpu")
        if info.kind != "image2image":
            continue
        translator = Translator(path, provider=provider)
        started = time.perf_counter()
        results = translator.translate(images)
        elapsed = time.perf_counter() - started
        for sample, result, row in zip(samples, results, rows):
            save_image(result, output / name / f"{sample.stem}.png")
            row.append(result)
        typer.echo(f"{name}: {len(images)} images in {elapsed * 1000:.0f} ms on {translator.providers[0]}")
    save_image(overview(rows), output / "overview.png")
    typer.echo(f"wrote {output / 'overview.png'} and one folder per model under {output}/")
