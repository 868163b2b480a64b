"""`gantx translate INPUT... -m MODEL -o OUT`: translate images with a gantx model."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

from gantx.errors import EXIT_FAILED_FILES, EXIT_OK
from gantx.inputs import OUTPUT_FORMATS, collect_sources, names_single_file, plan_jobs
from gantx.pipeline import FileJob, translate_files
from gantx.translator import Translator, parse_size
from gantx.cli.options import BatchSizeOption, ModelOption, ProviderOption, SizeOption, ThreadsOption


class RateColumn(ProgressColumn):
    """Items per second, as rich measures it over the recent past."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        return Text(f"{task.speed or 0:.1f} {self.unit}/s", style="progress.data.speed")


def progress_bar(console: Console, unit: str) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def translate(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders (walked recursively) or globs.", show_default=False)],
    model: ModelOption,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder (or file, for a single input file).", show_default=False)],
    batch_size: BatchSizeOption = 8,
    provider: ProviderOption = "auto",
    size: SizeOption = "auto",
    output_format: Annotated[str, typer.Option("--format", "-f", help=f"Output format: {', '.join(OUTPUT_FORMATS)}.")] = "same",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Translate again even where the output exists.")] = False,
    threads: ThreadsOption = None,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Threads that decode and encode files.")] = None,
) -> None:
    """Translate images with a gantx model; existing outputs are skipped, so a stopped run resumes."""
    size_spec = parse_size(size)
    jobs = plan_jobs(collect_sources(inputs, output), output, output_format, names_single_file(output, inputs))
    translator = Translator(model, provider=provider, batch_size=batch_size, size=size_spec, threads=threads)
    todo = [job for job in jobs if overwrite or not job.target.exists()]
    skipped = len(jobs) - len(todo)
    console = Console(stderr=True)
    failures: list[str] = []

    with progress_bar(console, "img") as progress:
        task = progress.add_task("translating", total=len(todo))

        def report(job: FileJob, error: str | None) -> None:
            if error is not None:
                failures.append(error)
                progress.console.print(f"[red]failed[/red] {error}", highlight=False, soft_wrap=True)
            progress.advance(task)

        started = time.perf_counter()
        translate_files(translator, todo, report, workers)
        elapsed = time.perf_counter() - started

    done = len(todo) - len(failures)
    rate = f", {done / elapsed:.1f} img/s on {translator.providers[0]}" if done and elapsed > 0 else ""
    typer.echo(f"translated {done}, skipped {skipped}, failed {len(failures)}{rate}")
    raise typer.Exit(EXIT_FAILED_FILES if failures else EXIT_OK)
