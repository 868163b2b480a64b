"""`gantx translate INPUT... -m MODEL -o OUT`: translate images and videos with a gantx model."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

from gantx.errors import EXIT_FAILED_FILES, EXIT_OK, GantxError, InputError
from gantx.images import IMAGE_FORMATS, is_image_path
from gantx.inputs import OUTPUT_FORMATS, collect_sources, names_single_file, plan_jobs
from gantx.inputs import FileJob
from gantx.pipeline import translate_files
from gantx.translator import Translator, parse_size
from gantx.video import VIDEO_FORMATS, EncodeOptions, VideoReader, VideoWriter, check_encoding, is_video_path
from gantx.video import read_frames_dir, translate_frames, translate_video
from gantx.cli.options import (
    BatchSizeOption,
    CudaGraphOption,
    Fp16Option,
    ModelOption,
    ProviderOption,
    SizeOption,
    ThreadsOption,
)


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


def _is_media(path: Path) -> bool:
    return is_image_path(path) or is_video_path(path)


def plan(inputs: list[str], output: Optional[Path], output_format: str, frames_dir: Optional[Path]) -> tuple[list[FileJob], list[FileJob]]:
    """(image jobs, video jobs). `-o` names a file for one input file; a video job's target may be None (frames only)."""
    if output is None and frames_dir is None:
        raise GantxError("missing --output/-o (or --frames-dir, for a video's frames)")
    sources = collect_sources(inputs, output or frames_dir, _is_media)
    images = [(source, relative) for source, relative in sources if is_image_path(source)]
    videos = [(source, relative) for source, relative in sources if is_video_path(source)]
    if output is None:
        if images or not videos:
            raise GantxError("--output/-o is needed for images; --frames-dir alone only takes videos")
        return [], [FileJob(source, None) for source, _ in videos]  # type: ignore[arg-type]
    single = names_single_file(output, inputs, {*IMAGE_FORMATS, *VIDEO_FORMATS})
    if single and len(sources) == 1 and is_video_path(sources[0][0]) != is_video_path(output):
        kind = "a video" if videos else "an image"
        raise GantxError(f"-o {output}: {kind} input needs {kind} output (or an output folder)")
    return plan_jobs(images, output, output_format, single), plan_jobs(videos, output, "same", single)


def translate(
    inputs: Annotated[
        Optional[list[str]], typer.Argument(help="Image and video files, folders (walked recursively) or globs.", show_default=False)
    ] = None,
    model: ModelOption = ...,  # type: ignore[assignment]
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Output folder (or file, for one input image or video).", show_default=False)
    ] = None,
    batch_size: BatchSizeOption = 8,
    provider: ProviderOption = "auto",
    size: SizeOption = "auto",
    output_format: Annotated[str, typer.Option("--format", "-f", help=f"Image output format: {', '.join(OUTPUT_FORMATS)}.")] = "same",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Translate again even where the output exists.")] = False,
    threads: ThreadsOption = None,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Threads that decode and encode files.")] = None,
    codec: Annotated[str, typer.Option("--codec", help="Video encoder: auto (H.264; VP9 for .webm), libx264, libvpx-vp9, libsvtav1, ...")] = "auto",
    crf: Annotated[int, typer.Option("--crf", min=0, help="Video constant quality (lower is better) for encoders that have it.")] = 18,
    pix_fmt: Annotated[str, typer.Option("--pix-fmt", help="Video pixel format; yuv420p plays everywhere.")] = "yuv420p",
    frames_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--frames-dir",
            help="With a video INPUT: also write its translated frames here as numbered PNGs. "
            "With no INPUT: read numbered frames from here and encode them into the video -o.",
            show_default=False,
        ),
    ] = None,
    fps: Annotated[float, typer.Option("--fps", min=0.001, help="Frame rate of a video made from --frames-dir.")] = 25.0,
    fp16: Fp16Option = False,
    cuda_graph: CudaGraphOption = False,
) -> None:
    """Translate images and videos with a gantx model; existing outputs are skipped, so a stopped run resumes."""
    size_spec = parse_size(size)
    encode = EncodeOptions(codec, crf, pix_fmt)
    inputs = inputs or []
    if not inputs and frames_dir is None:
        raise GantxError("give INPUT files or folders (or --frames-dir with -o VIDEO to encode numbered frames)")
    if not inputs:
        if output is None or not is_video_path(output):
            raise GantxError(f"--frames-dir without INPUT encodes a video: give -o with one of {', '.join(VIDEO_FORMATS)}")
        image_jobs, video_jobs = [], []
        check_encoding(output, encode)
    else:
        image_jobs, video_jobs = plan(inputs, output, output_format, frames_dir)
        for job in video_jobs:
            if job.target is not None:
                check_encoding(job.target, encode)
    translator = Translator(model, provider, batch_size, size_spec, threads, fp16=fp16, cuda_graph=cuda_graph)
    console = Console(stderr=True)
    failures: list[str] = []
    started = time.perf_counter()

    if not inputs:
        with progress_bar(console, "frames") as progress:
            task = progress.add_task(output.name, total=None)
            with VideoWriter(output, fps, encode) as writer:
                count = translate_frames(translator, read_frames_dir(frames_dir), writer, None, lambda: progress.advance(task), workers)
        typer.echo(f"wrote {output}: {count} frames at {fps:g} fps")
        raise typer.Exit(EXIT_OK)

    todo_images = [job for job in image_jobs if overwrite or not job.target.exists()]
    todo_videos = [job for job in video_jobs if overwrite or job.target is None or not job.target.exists()]
    skipped = len(image_jobs) + len(video_jobs) - len(todo_images) - len(todo_videos)
    counts = {"img": 0, "frames": 0}
    if todo_images:
        with progress_bar(console, "img") as progress:
            task = progress.add_task("translating", total=len(todo_images))

            def report(job: FileJob, error: str | None) -> None:
                if error is not None:
                    failures.append(error)
                    progress.console.print(f"[red]failed[/red] {error}", highlight=False, soft_wrap=True)
                progress.advance(task)

            translate_files(translator, todo_images, report, workers)
        counts["img"] = len(todo_images) - len(failures)
    videos_done = 0
    for job in todo_videos:
        with progress_bar(console, "frames") as progress:
            try:
                reader = VideoReader(job.source)
                total = reader.frames or (round(reader.seconds * float(reader.rate)) if reader.seconds else None)
                task = progress.add_task(job.source.name, total=total)
                frames = _frames_dir_for(job.source, frames_dir, len(video_jobs))
                counts["frames"] += translate_video(translator, job.source, job.target, encode, frames, lambda: progress.advance(task), workers)
                videos_done += 1
            except InputError as error:
                failures.append(str(error))
                progress.console.print(f"[red]failed[/red] {error}", highlight=False, soft_wrap=True)
    elapsed = time.perf_counter() - started

    rates = " ".join(f"{count / elapsed:.1f} {unit}/s" for unit, count in counts.items() if count and elapsed > 0)
    where = f", {rates} on {translator.providers[0]}" if rates else ""
    typer.echo(f"translated {counts['img'] + videos_done}, skipped {skipped}, failed {len(failures)}{where}")
    raise typer.Exit(EXIT_FAILED_FILES if failures else EXIT_OK)


def _frames_dir_for(source: Path, frames_dir: Optional[Path], videos: int) -> Optional[Path]:
    """Frames of one video go straight into --frames-dir; of several, into a sub-folder per video."""
    if frames_dir is None:
        return None
    return frames_dir if videos == 1 else frames_dir / source.stem
