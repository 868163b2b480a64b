"""Planning `gantx translate`'s work: INPUT... and the output options into image and video jobs.

Every refusal happens here, before any model runs; each video is probed once,
and one that cannot be read is that file's failure when its turn comes, not
the run's.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from gantx.errors import GantxError, InputError
from gantx.images import IMAGE_FORMATS, is_image_path
from gantx.inputs import FileJob, VideoJob, collect_sources, names_single_file, plan_jobs
from gantx.video import VIDEO_FORMATS, EncodeOptions, VideoReader, check_encoding, is_video_path

MEDIA_SUFFIXES = [*IMAGE_FORMATS, *VIDEO_FORMATS]  # what an -o naming one file may end in


@dataclass
class Plan:
    """The image jobs, the video jobs, and each video's reader (or why it cannot be read)."""

    images: list[FileJob]
    videos: list[VideoJob]
    readers: dict[Path, VideoReader | InputError]  # each video probed once, while planning

    def __iter__(self) -> Iterator[FileJob | VideoJob]:
        return iter([*self.images, *self.videos])

    def __len__(self) -> int:
        return len(self.images) + len(self.videos)

    def only(self, jobs: Collection[FileJob | VideoJob]) -> Plan:
        """The part of this plan that `jobs` are (--watch hands on the files that have settled)."""
        keep = set(jobs)
        return Plan(
            [job for job in self.images if job in keep], [job for job in self.videos if job in keep], self.readers
        )

    def unfinished(self, overwrite: bool) -> Plan:
        """The jobs whose output is missing (all of them with `overwrite`): a stopped run resumes where it was."""
        return self.only([job for job in self if overwrite or job.target is None or not job.target.exists()])


def probe(source: Path) -> VideoReader | InputError:
    """The video's reader, or why it cannot be read."""
    try:
        return VideoReader(source)
    except InputError as error:
        return error


def plan(
    inputs: list[str],
    output: Path | None,
    output_format: str,
    frames_dir: Path | None,
    encode: EncodeOptions,
    strict: bool = True,
) -> Plan:
    """The jobs INPUT... and the output options describe.

    A video the encoding options cannot write is refused here, before any work
    (`strict`), or, for a watch that meets it among later files, that video's
    own failure when its turn comes.
    """
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
        try:
            check_encoding(job.target, encode, reader.audio if isinstance(reader, VideoReader) else None)
        except GantxError as error:
            if strict:
                raise
            readers[job.source] = InputError(f"{job.source}: {error}")
    return Plan(
        plan_jobs(images, output, output_format, single),
        [
            VideoJob(job.source, job.target, _frames_dir_for(job.source, frames_dir, len(videos)))
            for job in video_targets
        ],
        readers,
    )


def _frames_dir_for(source: Path, frames_dir: Path | None, videos: int) -> Path | None:
    """Frames of one video go straight into --frames-dir; of several, into a sub-folder per video."""
    if frames_dir is None:
        return None
    return frames_dir if videos == 1 else frames_dir / source.stem
