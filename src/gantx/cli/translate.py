"""`gantx translate INPUT... -m MODEL -o OUT`: translate images and videos with a gantx model.

One function per mode: image files, one video, numbered frames encoded into a
video, images on a Ray cluster (gantx.cli.translate_ray) and --watch. The work
is planned by gantx.planning; every mode reports into one `Tally`
(gantx.cli.progress), which makes the summary line and the exit code.
"""

from __future__ import annotations

import contextlib
import functools
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer
from rich.console import Console

from gantx.cli.options import ModelOption, run_options
from gantx.cli.progress import Tally, images_report, item_report, progress_bar
from gantx.cli.translate_ray import choose_engine, translate_images_on_ray
from gantx.deflicker import DEFAULT_STRENGTH
from gantx.errors import EXIT_FAILED_FILES, EXIT_INTERRUPTED, EXIT_OK, GantxError, InputError
from gantx.extras import import_extra
from gantx.inputs import OUTPUT_FORMATS, FileJob, VideoJob
from gantx.pipeline import translate_files
from gantx.planning import Plan, plan
from gantx.settings import RunSettings
from gantx.translator import Translator
from gantx.video import (
    AUDIO_MODES,
    VIDEO_FORMATS,
    EncodeOptions,
    VideoReader,
    VideoWriter,
    check_encoding,
    is_video_path,
    read_frames_dir,
    translate_frames,
    translate_video,
)

# -- the modes ----------------------------------------------------------------------------------------


def translate_images(
    translator: Translator, jobs: list[FileJob], console: Console, tally: Tally, workers: int | None
) -> None:
    """Every image job through the batched pipeline; each failure is that file's line."""
    with images_report(console, tally, len(jobs)) as report:
        translate_files(translator, jobs, report, workers)


def translate_one_video(
    translator: Translator,
    job: VideoJob,
    reader: VideoReader | InputError,
    encode: EncodeOptions,
    console: Console,
    tally: Tally,
    workers: int | None,
) -> None:
    """One video (and/or its frames); a video that cannot be read or written is that file's failure."""
    with progress_bar(console, tally, "frames") as progress:
        try:
            if isinstance(reader, InputError):
                raise reader
            total = reader.frames or (round(reader.seconds * float(reader.rate)) if reader.seconds else None)
            report = item_report(progress, progress.add_task(job.source.name, total=total), tally, "frames")
            on_frame = functools.partial(report, None)  # a frame is no file job
            translate_video(translator, reader, job.target, encode, job.frames_dir, on_frame, workers)
            tally.finished(job.source)
        except InputError as error:
            tally.fail(progress, str(error), job.source)


def encode_frames(
    translator: Translator,
    frames_dir: Path,
    output: Path,
    fps: float,
    encode: EncodeOptions,
    console: Console,
    tally: Tally,
    workers: int | None,
) -> None:
    """Numbered frames from `frames_dir`, translated and encoded into the video `output`; a bad frame is left out."""
    frames = read_frames_dir(frames_dir)
    with progress_bar(console, tally, "frames") as progress:
        report = item_report(progress, progress.add_task(output.name, total=len(frames)), tally, "frames")
        try:
            with VideoWriter(output, fps, encode) as writer:
                on_frame = functools.partial(report, None)
                translate_frames(translator, frames, writer, None, on_frame, workers, encode.deflicker)
            tally.finished(frames_dir)
        except InputError as error:  # not one frame could be read
            tally.fail(progress, str(error), frames_dir)


def skip_finished(work: Plan, overwrite: bool, tally: Tally) -> Plan:
    """The jobs of `work` whose output is missing (all with `overwrite`); the others count as skipped."""
    todo = work.unfinished(overwrite)
    tally.skipped += len(work) - len(todo)
    return todo


def translate_plan(
    translator: Translator, work: Plan, encode: EncodeOptions, console: Console, tally: Tally, workers: int | None
) -> None:
    """Every job of `work`: the images in one batched stream, then each video."""
    if work.images:
        translate_images(translator, work.images, console, tally, workers)
    for job in work.videos:
        translate_one_video(translator, job, work.readers[job.source], encode, console, tally, workers)


def watch_and_translate(
    watcher: ModuleType,
    folders: list[Path],
    replan: Callable[[], Plan],
    translator: Translator,
    encode: EncodeOptions,
    console: Console,
    tally: Tally,
    workers: int | None,
) -> None:
    """--watch: translate each new file of the INPUT folders once it has settled, until Ctrl-C or SIGTERM.

    Either is how a watch ends, not an interruption: the summary of a normal
    run follows, and its exit code, where only files whose last try failed count.
    """

    def translate_settled(settled: Plan) -> None:
        translate_plan(translator, skip_finished(settled, False, tally), encode, console, tally, workers)

    try:
        watcher.watch_folders(folders, replan, translate_settled)
    except KeyboardInterrupt:
        typer.echo(f"stopped watching {', '.join(map(str, folders))}", err=True)


# -- the verb -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (kill, timeout, a service manager) ends a run as Ctrl-C does: the summary line, then exit 130.

    A --watch run ends only this way: for it either is the normal end (see `watch_and_translate`)."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_frames_to_encode(frames_dir: Path | None, output: Path | None, encode: EncodeOptions) -> None:
    """No INPUT: --frames-dir is read and encoded into the video -o; refused in one line unless both are given."""
    if frames_dir is None:
        raise GantxError("give INPUT files or folders (or --frames-dir with -o VIDEO to encode numbered frames)")
    if output is None or not is_video_path(output):
        raise GantxError(f"--frames-dir without INPUT encodes a video: give -o with one of {', '.join(VIDEO_FORMATS)}")
    check_encoding(output, encode)


@run_options()
def translate(
    model: ModelOption,
    inputs: Annotated[
        list[str] | None,
        typer.Argument(help="Image and video files, folders (walked recursively) or globs.", show_default=False),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Output folder (or file, for one input image or video).", show_default=False
        ),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", "-f", help=f"Image output format: {', '.join(OUTPUT_FORMATS)}.")
    ] = "same",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Translate again even where the output exists.")
    ] = False,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Threads that decode and encode files.")
    ] = None,
    codec: Annotated[
        str,
        typer.Option("--codec", help="Video encoder: auto (H.264; VP9 for .webm), libx264, libvpx-vp9, libsvtav1, ..."),
    ] = "auto",
    crf: Annotated[
        int, typer.Option("--crf", min=0, help="Video constant quality (lower is better) for encoders that have it.")
    ] = 18,
    pix_fmt: Annotated[
        str, typer.Option("--pix-fmt", help="Video pixel format; yuv420p plays everywhere.")
    ] = "yuv420p",
    audio: Annotated[
        str,
        typer.Option(
            "--audio",
            help=f"Video audio: {', '.join(AUDIO_MODES)}. copy keeps the packets untouched; encode re-encodes it "
            "in the output's usual codec (Opus in .webm, MP3 in .avi, AAC otherwise); drop writes none.",
        ),
    ] = "copy",
    deflicker: Annotated[
        bool,
        typer.Option(
            "--deflicker",
            help="Videos and frames: follow the input's motion (optical flow) and blend each translated frame with "
            "the previous one where the motion is reliable, so textures and colours stop flickering. Needs gantx's "
            "flow extra.",
        ),
    ] = False,
    deflicker_strength: Annotated[
        float | None,
        typer.Option(
            "--deflicker-strength",
            help=f"The previous frame's weight in that blend, from 0 (none) to below 1 (default {DEFAULT_STRENGTH}): "
            "higher is steadier, lower keeps each frame closer to its own translation. Giving it turns --deflicker on.",
            show_default=False,
        ),
    ] = None,
    frames_dir: Annotated[
        Path | None,
        typer.Option(
            "--frames-dir",
            help="With a video INPUT: also write its translated frames here as numbered PNGs. "
            "With no INPUT: read numbered frames from here and encode them into the video -o.",
            show_default=False,
        ),
    ] = None,
    fps: Annotated[
        float, typer.Option("--fps", min=0.001, help="Frame rate of a video made from --frames-dir.")
    ] = 25.0,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Keep running: translate each new image or video in the INPUT folders once its writer has finished.",
        ),
    ] = False,
    engine: Annotated[
        str, typer.Option("--engine", help="local, or ray: a Ray cluster (images only; needs gantx's ray extra).")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="Ray: join this cluster (auto: the one this machine is in); default: a local Ray.",
            show_default=False,
        ),
    ] = None,
    actors: Annotated[
        int | None,
        typer.Option(
            "--actors",
            min=1,
            help="Ray: actors, each loading the model once (default: as many as fit).",
            show_default=False,
        ),
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
    with sigterm_as_ctrl_c():
        strength = deflicker_strength if deflicker_strength is not None else DEFAULT_STRENGTH if deflicker else 0.0
        encode = EncodeOptions(codec, crf, pix_fmt, audio, strength)
        cluster = choose_engine(engine, ray_address, actors, gpus_per_actor, verbose)
        if inputs:
            work: Plan | None = plan(inputs, output, output_format, frames_dir, encode)
        else:
            check_frames_to_encode(frames_dir, output, encode)
            work = None  # the frames mode
        if watch and (overwrite or not inputs):
            raise GantxError("--watch needs INPUT folders, and skips finished outputs (no --overwrite)")
        if cluster is not None and (work is None or work.videos or frames_dir is not None or watch):
            raise GantxError(
                "--engine ray translates images; translate videos, frame folders and --watch with the local engine"
            )
        watcher = import_extra("gantx.watch", "serve") if watch else None
        folders = watcher.watched_folders(inputs) if watcher else []
        translator = None if cluster else Translator(model, settings)
        where = "Ray" if translator is None else translator.engine
        console = Console(stderr=True)
        tally = Tally()
        try:
            if work is None:
                encode_frames(translator, frames_dir, output, fps, encode, console, tally, workers)
            elif cluster is not None:
                images = skip_finished(work, overwrite, tally).images  # videos were refused above
                if images:
                    where = translate_images_on_ray(cluster, images, model, console, tally, settings, workers)
            elif watcher:
                replan = functools.partial(plan, inputs, output, output_format, frames_dir, encode, strict=False)
                watch_and_translate(watcher, folders, replan, translator, encode, console, tally, workers)
            else:
                translate_plan(translator, skip_finished(work, overwrite, tally), encode, console, tally, workers)
        except KeyboardInterrupt:
            resume = "run the same command again to resume (finished outputs are skipped)"
            typer.echo(f"stopped: {tally.line(where)}; {resume}", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        typer.echo(tally.line(where))
        raise typer.Exit(EXIT_FAILED_FILES if tally.failures else EXIT_OK)
