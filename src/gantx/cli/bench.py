"""`gantx bench -m MODEL`: latency, throughput and peak memory per provider and batch size."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gantx.bench import AUTO_SIDE, BenchReport, bench_folder, bench_models
from gantx.cli.options import ModelsOption, print_table, run_options, table_console
from gantx.errors import GantxError
from gantx.images import atomic_write
from gantx.settings import RunSettings
from gantx.translator import Translator


def parse_batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise GantxError(f"--batch-sizes {text!r}: expected positive integers separated by commas, e.g. 1,4,8")
    return sizes


SIZE_HELP = (
    f"auto: a fixed-size model's own size; {AUTO_SIDE}x{AUTO_SIDE} for a fully convolutional one (the size "
    "gantx models lists is its training crop). N (shorter side) or HxW, as in translate; --end-to-end sizes each "
    "image as translate --size does."
)


@run_options(exclude=("provider", "batch_size", "precision"), helps={"size": SIZE_HELP})
def bench(
    models: ModelsOption,
    batch_sizes: Annotated[str, typer.Option("--batch-sizes", help="Batch sizes to time, comma-separated.")] = "1,4,8",
    providers: Annotated[
        str,
        typer.Option(
            "--provider", "-p", help="Providers to time, comma-separated: auto, cpu, cuda, tensorrt, openvino."
        ),
    ] = "auto",
    precisions: Annotated[
        str,
        typer.Option(
            "--precision", help="Precisions to time, comma-separated: auto, fp32, fp16, bf16 (each on every provider)."
        ),
    ] = "auto",
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed batches first (engine builds, caches).")] = 3,
    iters: Annotated[int, typer.Option("--iters", min=1, help="Timed batches per configuration.")] = 20,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the results here (docs/bench-json.md).", show_default=False),
    ] = None,
    end_to_end: Annotated[
        Path | None,
        typer.Option(
            "--end-to-end",
            help="A folder of images: time the whole folder path beside the model alone.",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Threads that decode and encode files.")
    ] = None,
    *,
    settings: RunSettings,
) -> None:
    """Time models per provider and batch size: latency p50/p90/p99, images/s and peak memory.

    Several models are timed in turn.
    """
    sizes = parse_batch_sizes(batch_sizes)
    if end_to_end is not None and not end_to_end.is_dir():
        raise GantxError(f"--end-to-end {end_to_end}: not a folder")
    names = [str(model) for model in models]
    timing = {"warmup": warmup, "iters": iters, "threads": settings.threads, "precision": ",".join(_listed(precisions))}
    report = BenchReport(names[0], names, settings={**timing, "cuda_graph": settings.cuda_graph})
    console = table_console()
    # Every model on every provider at every precision, all timed in turn, each row against the first.
    configurations = [(provider, precision) for provider in _listed(providers) for precision in _listed(precisions)]
    rows_per_batch = len(configurations) * len(models)
    for batch_size in sizes:  # opened per batch size: auto's engine choice is made for the batch it runs
        translators, labels = [], []
        for provider, precision in configurations:
            asked = settings.replace(provider=provider, precision=precision, batch_size=batch_size)
            translators += [Translator(model, asked) for model in models]
            labels += names
        report.results += bench_models(translators, labels, batch_size, settings.size, warmup, iters)
        if end_to_end is not None:
            # The folder path resizes each image as translate --size would; the model rows apply --size to the
            # model's own size.
            report.end_to_end += [
                bench_folder(translator, name, end_to_end, workers) for name, translator in zip(labels, translators)
            ]

    compared = len(models) > 1
    first = report.results[0]
    against = f"vs {names[0]}" + (
        f" on {_provider(first.requested, first.provider, first.precision)}" if len(configurations) > 1 else ""
    )
    columns = (
        ["model"] * compared
        + ["provider", "batch", "HxW", "p50 ms", "p90 ms", "p99 ms", "img/s"]
        + [against] * (rows_per_batch > 1)
        + ["peak MB"]
    )
    title = "the models alone, timed in turn" if compared else f"{names[0]}: the model alone"
    table = Table(*columns, title=title)
    for result in report.results:
        latency = result.latency_ms
        table.add_row(
            *[result.model] * compared,
            _provider(result.requested, result.provider, result.precision),
            str(result.batch_size),
            f"{result.height}x{result.width}",
            *(_number(latency[key]) for key in ("p50", "p90", "p99")),
            _number(result.images_per_s),
            *[f"{result.relative_to_first:.2f}x"] * (rows_per_batch > 1),
            f"{result.peak_rss_mb:.0f}",
        )
    print_table(console, table)
    if report.end_to_end:
        columns = ["model"] * compared + [
            "provider",
            "batch",
            "images",
            "failed",
            "path img/s",
            "model img/s",
            "kept",
            "peak MB",
        ]
        table = Table(*columns, title=f"{end_to_end}: folder path vs model alone")
        for row in report.end_to_end:
            table.add_row(
                *[row.model] * compared,
                _provider(row.requested, row.provider, row.precision),
                str(row.batch_size),
                str(row.images),
                str(row.failed),
                _number(row.images_per_s),
                _number(row.model_images_per_s),
                f"{row.ratio:.1%}",
                f"{row.peak_rss_mb:.0f}",
            )
        print_table(console, table)
    cpu = report.machine["cpu"]
    console.print(
        f"on {cpu}, {report.machine['cores']} cores, onnxruntime {report.machine['onnxruntime']}", highlight=False
    )
    if json_path is not None:
        atomic_write(json_path, lambda tmp: tmp.write_text(json.dumps(report.to_dict(), indent=2) + "\n"))
        console.print(f"wrote {json_path}", highlight=False)


def _listed(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _provider(requested: str, active: str, precision: str) -> str:
    name = f"{active.removesuffix('ExecutionProvider')} {precision}"
    return f"{requested} -> {name}" if requested == "auto" else name


def _number(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"
