"""`gantx demo`: the bundled zoo on the bundled real items and photos, no download, no flags."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from PIL import Image, ImageDraw, ImageFont

from gantx.cli.options import run_options
from gantx.edges import edges
from gantx.errors import ModelError
from gantx.generator import Generator, generator_settings, grid
from gantx.images import open_image, save_image
from gantx.settings import RunSettings
from gantx.translator import Translator
from gantx.zoo import PHOTO_UPSCALER, bundled_models, fashion_samples, sample_photos

SCALE = 3  # 28 px items are shown at 84 px
CAPTION_WIDTH = 230
PER_CLASS = 8
DEMO_MODELS = (
    "fashion-edges2item",
    "fashion-sneaker2boot",
    "fashion-boot2sneaker",
    "fashion-m2fashion",
    "fashion-cgan",
    "fashion-dcgan",
    PHOTO_UPSCALER,
)

Row = tuple[str, list[Image.Image]]


def overview(rows: list[Row]) -> Image.Image:
    """One captioned strip per row of equal-sized tiles, scaled up SCALE times."""
    tile_width, tile_height = (side * SCALE for side in rows[0][1][0].size)
    columns = max(len(images) for _, images in rows)
    sheet = Image.new("RGB", (CAPTION_WIDTH + columns * tile_width, len(rows) * tile_height), "white")
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default(size=15)
    for y, (caption, images) in enumerate(rows):
        draw.text((8, y * tile_height + tile_height // 2), caption, fill="black", font=font, anchor="lm")
        for x, image in enumerate(images):
            tile = image.convert("RGB").resize((tile_width, tile_height), Image.Resampling.NEAREST)
            sheet.paste(tile, (CAPTION_WIDTH + x * tile_width, y * tile_height))
    return sheet


def run_translator(
    name: str, inputs: dict[str, Image.Image], output: Path, settings: RunSettings
) -> dict[str, Image.Image]:
    """Translate `inputs` (stem -> image) with the zoo model `name`, save each under OUTPUT/NAME/, report the time."""
    translator = Translator(name, settings)
    started = time.perf_counter()
    results = translator.translate(list(inputs.values()))
    elapsed = time.perf_counter() - started
    for stem, result in zip(inputs, results):
        save_image(result, output / name / f"{stem}.png")
    typer.echo(f"{name}: {len(results)} items in {elapsed * 1000:.0f} ms on {translator.engine}")
    return dict(zip(inputs, results))


def run_generator(name: str, output: Path, settings: RunSettings) -> list[Row]:
    """A grid from the zoo model `name`: one row per class when it is conditional, else two rows of samples."""
    generator = Generator(name, generator_settings(settings))
    started = time.perf_counter()
    if generator.info.classes:
        rows = [
            (f"{name}: {label}", generator.generate(PER_CLASS, labels=[label], seed=index))
            for index, label in enumerate(generator.info.classes)
        ]
    else:
        samples = generator.generate(2 * PER_CLASS, seed=0)
        rows = [(name, samples[:PER_CLASS]), ("", samples[PER_CLASS:])]
    elapsed = time.perf_counter() - started
    images = [image for _, row in rows for image in row]
    save_image(grid(images, PER_CLASS, scale=SCALE), output / name / "grid.png")
    typer.echo(f"{name}: {len(images)} samples in {elapsed * 1000:.0f} ms on {generator.engine}")
    return rows


def load(paths: list[Path]) -> dict[str, Image.Image]:
    return {path.stem: open_image(path) for path in paths}


def one_per_class(images: dict[str, Image.Image]) -> list[Image.Image]:
    """The first image of each class, from stems named CLASS-INDEX."""
    first: dict[str, Image.Image] = {}
    for stem, image in images.items():
        first.setdefault(stem.rsplit("-", 1)[0], image)
    return list(first.values())


@run_options(exclude=("batch_size", "size", "tile"))  # the demo sizes and batches its inputs itself
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the results.")] = Path("gantx-demo"),
    *,
    settings: RunSettings,
) -> None:
    """Run the Fashion-MNIST zoo on real Fashion-MNIST test items and the upscaler on real photos.

    Writes the results and one overview PNG.
    """
    missing = [name for name in DEMO_MODELS if name not in bundled_models()]
    if missing:
        raise ModelError(f"the demo needs the bundled models {', '.join(missing)}; reinstall gantx")
    started = time.perf_counter()
    items = load(fashion_samples())
    outlines = {stem: edges(image) for stem, image in items.items()}
    for stem, outline in outlines.items():
        save_image(outline, output / "edges" / f"{stem}.png")
    sneakers, boots, coloured = (
        load(fashion_samples("sneaker-")),
        load(fashion_samples("ankle-boot-")),
        load(fashion_samples("m-")),
    )

    to_boots = run_translator("fashion-sneaker2boot", sneakers, output, settings)
    to_sneakers = run_translator("fashion-boot2sneaker", boots, output, settings)
    rows: list[Row] = [
        ("edges (input)", one_per_class(outlines)),
        ("fashion-edges2item", one_per_class(run_translator("fashion-edges2item", outlines, output, settings))),
        ("real item", one_per_class(items)),
        ("sneakers | boots", [*sneakers.values(), *boots.values()]),
        ("sneaker2boot | boot2sneaker", [*to_boots.values(), *to_sneakers.values()]),
        ("Fashion-MNIST-M (input)", list(coloured.values())),
        ("fashion-m2fashion", list(run_translator("fashion-m2fashion", coloured, output, settings).values())),
        *run_generator("fashion-cgan", output, settings),
        *run_generator("fashion-dcgan", output, settings),
    ]
    run_translator(PHOTO_UPSCALER, load(sample_photos()), output, settings)
    save_image(overview(rows), output / "overview.png")
    typer.echo(
        f"wrote {output / 'overview.png'} and one folder per model under {output}/ "
        f"in {time.perf_counter() - started:.1f} s"
    )
