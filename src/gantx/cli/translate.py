"""`gantx translate INPUT... -m MODEL -o OUT`: translate images and videos with a gantx model.

One function per mode: a batch of image files, one video, and numbered frames
encoded into a video. Each mode reports into a `Tally`, which makes the summary
line, the exit code, and what an interrupted run says.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Collection, Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn
from rich.text import Text

from gantx.cli.options import ModelOption, import_extra, run_options
from gantx.errors import EXIT_FAILED_FILES, EXIT_INTERRUPTED, EXIT_OK, GantxError, InputError
from gantx.images import IMAGE_FORMATS, is_image_path
from gantx.inputs import OUTPUT_FORMATS, FileJob, VideoJob, collect_sources, names_single_file, plan_jobs
from gantx.pipeline import Report, translate_files
from gantx.settings import RunSettings
from gantx.translator import Translator
from gantx.video import AUDIO_MODES, VIDEO_FORMATS, EncodeOptions, FrameReport, VideoReader, VideoWriter
from gantx.video import check_encoding, is_video_path, read_frames_dir, translate_frames, translate_video

MEDIA_SUFFIXES = [*IMAGE_FORMATS, *VIDEO_FORMATS]  # what an -o naming one file may end in


@dataclass
class Tally:
    """What a run has done so far: files translated, skipped and failed, and the images and frames translated.

    Rates count what was translated (not what failed) per second of the whole
    run, the same in the progress bar and in the summary line.
    """

    done: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)
    units: Counter = field(default_factory=Counter)  # "img" and "frames" translated
    started: float = field(default_factory=time.perf_counter)

    def fail(self, progress: Progress, reason: str) -> None:
        self.failures.append(reason)
        progress.console.print(f"[red]failed[/red] {reason}", highlight=False, soft_wrap=True)

    def rate(self, unit: str) -> str:
        """`unit`s translated per second so far, e.g. "12.5 img/s"; empty while none is."""
        count, elapsed = self.units[unit], time.perf_counter() - self.started
        return f"{count / elapsed:.1f} {unit}/s" if count and elapsed > 0 else ""

    def line(self, provider: str) -> str:
        rates = " ".join(filter(None, map(self.rate, self.units)))
        where = f", {rates} translated on {provider}" if rates else ""
        return f"translated {self.done}, skipped {self.skipped}, failed {len(self.failures)}{where}"


class RateColumn(ProgressColumn):
    """The tally's rate of `unit`: the figure the summary line gives."""

    def __init__(self, tally: Tally, unit: str) -> None:
        super().__init__()
        self.tally, self.unit = tally, unit

    def render(self, task) -> Text:
        return Text(self.tally.rate(self.unit), style="progress.data.speed")


class TimeLeftColumn(ProgressColumn):
    """Time left at the pace of the whole task so far; rich's own estimate follows only the
    last few items, and these finish a batch at a time, so it jumps to near zero."""

    def render(self, task) -> Text:
        if task.total is None:
            return Text("")
        if not task.completed or not task.elapsed:
            return Text("-:--:--", style="progress.remaining")
        left = (task.total - task.completed) * task.elapsed / task.completed
        return Text(str(timedelta(seconds=round(left))), style="progress.remaining")


def progress_bar(console: Console, tally: Tally, unit: str) -> Progress:
    """Items handled (translated or failed) of all, the tally's rate of `unit` and the time left."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(tally, unit),
        TimeLeftColumn(),
        console=console,
        transient=False,
    )


@dataclass
class Plan:
    images: list[FileJob]
    videos: list[VideoJob]
    readers: dict[Path, VideoReader | InputError]  # each video probed once, while planning

    def __iter__(self) -> Iterator[FileJob | VideoJob]:
        return iter([*self.images, *self.videos])

    def only(self, jobs: Collection[FileJob | VideoJob]) -> Plan:
        """The part of this plan that `jobs` are (--watch hands on the files that have settled)."""
        keep = set(jobs)
        return Plan([job for job in self.images if job in keep], [job for job in self.videos if job in keep], self.readers)


def probe(source: Path) -> VideoReader | InputError:
    """The video's reader, or why it cannot be read: that file's failure when its turn comes, not the run's."""
    try:
        return VideoReader(source)
    except InputError as error:
        return error


def plan(inputs: list[str], output: Optional[Path], output_format: str, frames_dir: Optional[Path], encode: EncodeOptions) -> Plan:
    """The jobs INPUT... and the output options describe; every refusal happens here, before any work."""
    if output is None and frames_dir is None:
        raise GantxError("missing --output/-o (or --frames-dir, for a video's frames)")
    sources = collect_sources(inputs, output or frames_dir, lambda path: is_image_path(path) or is_video_path(path))
    images = [(source, relative) for source, relative in sources if is_image_path(source)]
    videos = [(source, relative) for source, relative in sources if is_video_path(source)]
    if output is None:
        if images or not videos:
            raise GantxError("--output/-o is needed for images; --frames-dir alone only takes videos")
        jobs = [VideoJob(source, None, _frames_dir_for(source, frames_dir, len(videos))) for source, _ in videos]
        return Plan([], jobs, {job.source: probe(job.source) for job in jobs})
    single = names_single_file(output, inputs, MEDIA_SUFFIXES)
    if single and not sources:
        raise GantxError(f"{inputs[0]}: not an image or video gantx reads ({', '.join(MEDIA_SUFFIXES)})")
    if single and is_video_path(sources[0][0]) != is_video_path(output):
        kind = "a video" if videos else "an image"
        raise GantxError(f"-o {output}: {kind} input needs {kind} output (or an output folder)")
    video_targets = plan_jobs(videos, output, "same", single)
    readers = {job.source: probe(job.source) for job in video_targets}
    for job in video_targets:
        reader = readers[job.source]
        check_encoding(job.target, encode, reader.audio if isinstance(reader, VideoReader) else None)
    return Plan(
        plan_jobs(images, output, output_format, single),
        [VideoJob(job.source, job.target, _frames_dir_for(job.source, frames_dir, len(videos))) for job in video_targets],
        readers,
    )


def _frames_dir_for(source: Path, frames_dir: Optional[Path], videos: int) -> Optional[Path]:
    """Frames of one video go straight into --frames-dir; of several, into a sub-folder per video."""
    if frames_dir is None:
        return None
    return frames_dir if videos == 1 else frames_dir / source.stem


# -- the modes ----------------------------------------------------------------------------------------


def image_report(progress: Progress, task, tally: Tally) -> Report:
    """Advances the bar for every image file; a failed one is that file's line in the tally."""

    def report(job: FileJob, error: Optional[str]) -> None:
        if error is None:
            tally.done += 1
            tally.units["img"] += 1
        else:
            tally.fail(progress, error)
        progress.advance(task)

    return report


def translate_images(translator: Translator, jobs: list[FileJob], console: Console, tally: Tally, workers: Optional[int]) -> None:
    """Every image job through the batched pipeline; each failure is that file's line."""
    with progress_bar(console, tally, "img") as progress:
        translate_files(translator, jobs, image_report(progress, progress.add_task("translating", total=len(jobs)), tally), workers)


def frame_report(progress: Progress, task, tally: Tally) -> FrameReport:
    """Advances the bar for every frame; a frame image or PNG that failed is that file's line in the tally."""

    def report(failure: Optional[str]) -> None:
        if failure is None:
            tally.units["frames"] += 1
        else:
            tally.fail(progress, failure)
        progress.advance(task)

    return report


def translate_one_video(
    translator: Translator,
    job: VideoJob,
    reader: VideoReader | InputError,
    encode: EncodeOptions,
    console: Console,
    tally: Tally,
    workers: Optional[int],
) -> None:
    """One video (and/or its frames); a video that cannot be read or written is that file's failure."""
    with progress_bar(console, tally, "frames") as progress:
        try:
            if isinstance(reader, InputError):
                raise reader
            total = reader.frames or (round(reader.seconds * float(reader.rate)) if reader.seconds else None)
            task = progress.add_task(job.source.name, total=total)
            translate_video(translator, reader, job.target, encode, job.frames_dir, frame_report(progress, task, tally), workers)
            tally.done += 1
        except InputError as error:
            tally.fail(progress, str(error))


def encode_frames(
    translator: Translator, frames_dir: Path, output: Path, fps: float, encode: EncodeOptions, console: Console, tally: Tally, workers: Optional[int]
) -> None:
    """Numbered frames from `frames_dir`, translated and encoded into the video `output`; a bad frame is left out."""
    frames = read_frames_dir(frames_dir)
    with progress_bar(console, tally, "frames") as progress:
        task = progress.add_task(output.name, total=len(frames))
        try:
            with VideoWriter(output, fps, encode) as writer:
                translate_frames(translator, frames, writer, None, frame_report(progress, task, tally), workers)
            tally.done += 1
        except InputError as error:  # not one frame could be read
            tally.fail(progress, str(error))


def unfinished(work: Plan, overwrite: bool, tally: Tally) -> tuple[list[FileJob], list[VideoJob]]:
    """The image and video jobs of `work` whose output is missing (all of them with `overwrite`); the others count as skipped."""
    images = [job for job in work.images if overwrite or not job.target.exists()]
    videos = [job for job in work.videos if overwrite or job.target is None or not job.target.exists()]
    tally.skipped += len(work.images) + len(work.videos) - len(images) - len(videos)
    return images, videos


def translate_plan(
    translator: Translator, work: Plan, overwrite: bool, encode: EncodeOptions, console: Console, tally: Tally, workers: Optional[int]
) -> None:
    """Every job of `work` whose output is missing (every job with `overwrite`); the others count as skipped."""
    images, videos = unfinished(work, overwrite, tally)
    if images:
        translate_images(translator, images, console, tally, workers)
    for job in videos:
        translate_one_video(translator, job, work.readers[job.source], encode, console, tally, workers)


# -- the verb -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (kill, timeout, a service manager) ends a run as Ctrl-C does: the summary line, then exit 130 (--watch: its usual end)."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@run_options()
def translate(
    model: ModelOption,
    inputs: Annotated[
        Optional[list[str]], typer.Argument(help="Image and video files, folders (walked recursively) or globs.", show_default=False)
    ] = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Output folder (or file, for one input image or video).", show_default=False)
    ] = None,
    output_format: Annotated[str, typer.Option("--format", "-f", help=f"Image output format: {', '.join(OUTPUT_FORMATS)}.")] = "same",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Translate again even where the output exists.")] = False,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Threads that decode and encode files.")] = None,
    codec: Annotated[str, typer.Option("--codec", help="Video encoder: auto (H.264; VP9 for .webm), libx264, libvpx-vp9, libsvtav1, ...")] = "auto",
    crf: Annotated[int, typer.Option("--crf", min=0, help="Video constant quality (lower is better) for encoders that have it.")] = 18,
    pix_fmt: Annotated[str, typer.Option("--pix-fmt", help="Video pixel format; yuv420p plays everywhere.")] = "yuv420p",
    audio: Annotated[
        str,
        typer.Option(
            "--audio",
            help=f"Video audio: {', '.join(AUDIO_MODES)}. copy keeps the packets untouched; encode re-encodes it in the "
            "output's usual codec (Opus in .webm, MP3 in .avi, AAC otherwise); drop writes none.",
        ),
    ] = "copy",
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
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep running: translate each new image or video in the INPUT folders once its writer has finished.")
    ] = False,
    engine: Annotated[str, typer.Option("--engine", help="local, or ray: a Ray cluster (images only; needs gantx's ray extra).")] = "local",
    ray_address: Annotated[
        Optional[str], typer.Option("--ray-address", help="Ray: join this cluster (auto: the one this machine is in); default: a local Ray.", show_default=False)
    ] = None,
    actors: Annotated[
        Optional[int],
        typer.Option("--actors", min=1, help="Ray: actors, each loading the model once (default: as many as fit).",
                     show_default=False),
    ] = None,
    gpus_per_actor: Annotated[
        float, typer.Option("--gpus-per-actor", min=0, help="Ray: GPUs each actor reserves.")
    ] = 0.0,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Ray: also show Ray's own log lines and its actors' output.")
    ] = False,
    *,
    settings: RunSettings,
) -> None:
    """Translate images and videos with a gantx model; existing outputs are skipped, so a stopped run resumes."""
    from gantx.cli.translate_ray import choose_engine, translate_images_on_ray  # here: it builds on this module (Tally, the bar)

    with sigterm_as_ctrl_c():
        encode = EncodeOptions(codec, crf, pix_fmt, audio)
        cluster = choose_engine(engine, ray_address, actors, gpus_per_actor, verbose)
        if not inputs:
            if frames_dir is None:
                raise GantxError("give INPUT files or folders (or --frames-dir with -o VIDEO to encode numbered frames)")
            if output is None or not is_video_path(output):
                raise GantxError(f"--frames-dir without INPUT encodes a video: give -o with one of {', '.join(VIDEO_FORMATS)}")
            check_encoding(output, encode)
            work = None
        else:
            work = plan(inputs, output, output_format, frames_dir, encode)
        if watch and (overwrite or not inputs):
            raise GantxError("--watch needs INPUT folders, and skips finished outputs (no --overwrite)")
        if cluster is not None and (work is None or work.videos or frames_dir is not None or watch):
            raise GantxError("--engine ray translates images; translate videos, frame folders and --watch with the local engine")
        watcher = import_extra("gantx.watch", "serve") if watch else None
        folders = watcher.watched_folders(inputs) if watcher else []
        translator = None if cluster else Translator(model, settings)
        where = "Ray" if translator is None else translator.providers[0]
        console = Console(stderr=True)
        tally = Tally()
        try:
            if work is None:
                encode_frames(translator, frames_dir, output, fps, encode, console, tally, workers)
            elif cluster is not None:
                images, _ = unfinished(work, overwrite, tally)  # videos were refused above
                if images:
                    where = translate_images_on_ray(cluster, images, model, console, tally, settings, workers)
            elif watcher:
                watcher.watch_folders(
                    folders,
                    lambda: plan(inputs, output, output_format, frames_dir, encode),
                    lambda settled: translate_plan(translator, settled, False, encode, console, tally, workers),
                )
            else:
                translate_plan(translator, work, overwrite, encode, console, tally, workers)
        except KeyboardInterrupt:
            if not watcher:
                typer.echo(f"stopped: {tally.line(where)}; run the same command again to resume (finished outputs are skipped)", err=True)
                raise typer.Exit(EXIT_INTERRUPTED) from None
            typer.echo(f"stopped watching {', '.join(inputs)}", err=True)  # how a watch ends: then the summary of a normal run
        typer.echo(tally.line(where))
        raise typer.Exit(EXIT_FAILED_FILES if tally.failures else EXIT_OK)
