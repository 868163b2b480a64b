"""Video in and out with PyAV (FFmpeg ships inside its wheels; no external binary).

Frames are decoded with FFmpeg's frame threading in a background thread,
translated in batches through the same bounded pipeline as image folders, and
encoded in order by one encoder thread, so memory stays flat however long the
video is. Each frame keeps its own timestamp and duration (constant and
variable frame rates both survive), the display rotation and colour tags are
carried over, and audio is copied packet for packet, re-encoded or dropped
(`EncodeOptions.audio`). Whatever the output cannot hold is refused before the
first frame is translated, and the output appears under its name only once it
is complete.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal, get_args

import av
import av.error
import numpy as np
from av.video.reformatter import Colorspace

from gantx.deflicker import Deflicker, check_strength
from gantx.errors import GantxError, InputError, first_line
from gantx.extras import import_extra
from gantx.images import array_to_image, atomic_target, is_image_path, open_image, save_image, split_alpha
from gantx.inputs import FileJob
from gantx.pipeline import file_failure, prefetch, translate_ordered
from gantx.settings import one_of
from gantx.translator import Translator

# Output suffix -> FFmpeg muxer. The temporary name ends in .part, so the muxer is named, not guessed.
VIDEO_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
DEFAULT_CODEC = {".webm": "libvpx-vp9"}  # WebM takes VP8/VP9/AV1 only; H.264 everywhere else
NO_REORDERING = {".avi"}  # containers that cannot hold B-frames: frames would read back out of order
AudioMode = Literal["copy", "encode", "drop"]
AUDIO_MODES = get_args(AudioMode)
AUDIO_ENCODER = {
    ".webm": "libopus",
    ".mp4": "aac",
    ".mov": "aac",
    ".mkv": "aac",
    ".avi": "libmp3lame",
}  # --audio encode
# AVI cannot record an encoder's start-up delay, and MP3's is 1105 samples: from 32 kHz on that is
# under one MP3 frame (1152 samples), so the audio starts within a frame of where the source's does.
LOWEST_RATE = {"libmp3lame": 32000}
FRAME_NAME = "{:06d}.png"
SWS_COLORSPACES = {space.value for space in Colorspace}
SMPTE170M, BT470BG = 6, 5  # both BT.601 coefficients; swscale knows the second by name
DURATION_SLACK_FRAMES = 2  # the last frame may end this early before the stream's own duration
CONTAINER_SLACK_SECONDS = 1.0  # ... or this early before the file's duration, which audio may stretch
CHROMA_PROBE = 256  # a luma width whose chroma width gives the pixel format's subsampling factor (256 // 128 = 2)


def is_video_path(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_FORMATS


@dataclass(frozen=True)
class EncodeOptions:
    """How translated frames become a video: smoothed across time or not, encoded (`codec` "auto" is H.264, VP9
    for .webm), and what becomes of the audio.

    `audio` "copy" keeps the source's packets untouched, "encode" re-encodes
    them in the container's usual codec (AUDIO_ENCODER), "drop" writes none.
    `deflicker` is gantx.deflicker's strength (0: each frame as translated);
    asking for it checks at once that OpenCV is installed.
    """

    codec: str = "auto"
    crf: int = 18  # constant quality, for the codecs that have it (x264, VP9, AV1); lower is better
    pix_fmt: str = "yuv420p"  # what every player decodes
    audio: AudioMode = "copy"
    deflicker: float = 0.0

    def __post_init__(self) -> None:
        if check_strength(self.deflicker):
            import_extra("cv2", "flow")

    def codec_for(self, path: Path) -> str:
        return DEFAULT_CODEC.get(path.suffix.lower(), "libx264") if self.codec == "auto" else self.codec


@dataclass(frozen=True)
class Colour:
    """A stream's colour tags (FFmpeg enum values), carried from input to output."""

    space: int = 2  # unspecified
    range: int = 0
    primaries: int = 2
    trc: int = 2

    @property
    def sws_space(self) -> int | None:
        """The matrix swscale converts with; None is its default, BT.601."""
        space = BT470BG if self.space == SMPTE170M else self.space
        return space if space in SWS_COLORSPACES else None


@dataclass(frozen=True)
class AudioSource:
    """A file's audio streams, by codec name: what an output container must be able to take."""

    path: Path
    codecs: tuple[str, ...]

    @classmethod
    def of(cls, container: av.container.InputContainer, path: Path) -> AudioSource | None:
        codecs = tuple(stream.codec_context.name for stream in container.streams.audio)
        return cls(Path(path), codecs) if codecs else None


@dataclass
class Frame:
    """One frame: RGB (or grey) pixels, or the image file they are read from; its position; its time.

    The time is in the source's time base.
    """

    image: np.ndarray | Path
    index: int
    pts: int | None = None
    duration: int | None = None

    def pixels(self) -> np.ndarray:
        """The pixels; an image file is read here, in a pipeline worker, so that one bad file fails alone."""
        return split_alpha(open_image(self.image), 3)[0] if isinstance(self.image, Path) else self.image


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError) as error:
        raise InputError(f"{path}: cannot read video ({first_line(error)})") from None


def _duration_tag(text: str | None) -> float | None:
    """Matroska's per-stream DURATION tag, HH:MM:SS.fraction, in seconds."""
    match = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", text or "")
    return int(match[1]) * 3600 + int(match[2]) * 60 + float(match[3]) if match else None


class VideoReader:
    """The first video stream of `path` as RGB `Frame`s, decoded in order; InputError when it cannot be."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with contextlib.closing(_open(self.path)) as container:
            stream = self._stream(container)
            self.rate: Fraction = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(25)
            self.time_base: Fraction = stream.time_base or 1 / self.rate
            self.frames: int = stream.frames  # 0 when the container does not say
            self.start = float(stream.start_time * self.time_base) if stream.start_time else 0.0
            if stream.duration:
                self.seconds, self.slack = (
                    float(stream.duration * self.time_base),
                    DURATION_SLACK_FRAMES / float(self.rate),
                )
            elif seconds := _duration_tag(stream.metadata.get("DURATION")):
                self.seconds, self.slack = seconds, DURATION_SLACK_FRAMES / float(self.rate)
            else:
                self.seconds, self.slack = (container.duration or 0) / 1e6 or None, CONTAINER_SLACK_SECONDS
            context = stream.codec_context
            self.colour = Colour(context.colorspace, context.color_range, context.color_primaries, context.color_trc)
            self.audio = AudioSource.of(container, self.path)  # what the output must take, known before any frame
            try:
                first = next(container.decode(stream), None)
            except av.error.FFmpegError as error:
                raise InputError(f"{self.path}: cannot decode its first frame ({first_line(error)})") from None
            self.rotation = (
                int(first.rotation or 0) if first is not None else 0
            )  # the display matrix, as frames carry it

    def _stream(self, container) -> av.video.stream.VideoStream:
        if not container.streams.video:
            raise InputError(f"{self.path}: has no video stream")
        return container.streams.video[0]

    def __iter__(self) -> Iterator[Frame]:
        step = max(1, round(1 / (self.rate * self.time_base)))  # one frame, in time-base units
        index, end = 0, 0.0
        with contextlib.closing(_open(self.path)) as container:
            stream = self._stream(container)
            stream.thread_type = "AUTO"  # frame and slice threads inside FFmpeg
            try:
                for packet in container.demux(stream):
                    for frame in packet.decode():
                        pts = frame.pts if frame.pts is not None else index * step
                        duration = frame.duration or step
                        rgb = frame.reformat(
                            format="rgb24", src_colorspace=self.colour.sws_space, src_color_range=frame.color_range
                        )
                        yield Frame(rgb.to_ndarray(), index, pts, duration)
                        index += 1
                        end = float((pts + duration) * self.time_base)
            except av.error.FFmpegError as error:
                raise InputError(f"{self.path}: cannot decode frame {index + 1} ({first_line(error)})") from None
        self._check_complete(index, end - self.start)

    def _check_complete(self, count: int, seconds: float) -> None:
        """A file cut short often decodes without an error: compare with what its header promised."""
        if count == 0:
            raise InputError(f"{self.path}: no frame could be decoded")
        if self.frames and count < self.frames:
            raise InputError(f"{self.path}: truncated video: {count} of {self.frames} frames could be decoded")
        if self.seconds is not None and seconds < self.seconds - self.slack:
            raise InputError(f"{self.path}: truncated video: frames stop at {seconds:.2f} s of {self.seconds:.2f} s")


@functools.cache
def container_codecs(suffix: str) -> frozenset[str]:
    """The codecs (encoder names) FFmpeg's muxer for a video suffix can hold."""
    with av.open(io.BytesIO(), "w", format=VIDEO_FORMATS[suffix]) as probe:
        return frozenset(probe.supported_codecs)


def check_encoding(path: Path, options: EncodeOptions, audio: AudioSource | None = None) -> None:
    """Refuse, before any work, an output suffix, codec, pixel format or audio (`audio`'s streams) it cannot write."""
    suffix = path.suffix.lower()
    if suffix not in VIDEO_FORMATS:
        raise GantxError(f"{path}: a video output must end in one of {', '.join(VIDEO_FORMATS)}")
    name = options.codec_for(path)
    try:
        codec = av.codec.Codec(name, "w")
    except (av.error.FFmpegError, ValueError):
        raise GantxError(f"--codec {name!r}: this FFmpeg has no such encoder") from None
    if codec.type != "video":
        raise GantxError(f"--codec {name!r} is not a video encoder")
    formats = [pixel_format.name for pixel_format in codec.video_formats or ()]
    if formats and options.pix_fmt not in formats:
        raise GantxError(f"--pix-fmt {options.pix_fmt!r}: {codec.name} takes {', '.join(formats)}")
    if codec.name not in container_codecs(suffix):
        raise GantxError(f"--codec {name}: a {suffix} file cannot hold {codec.name} video")
    if options.crf < 0:
        raise GantxError(f"--crf {options.crf}: must be 0 or more")
    _check_audio(path, options.audio, audio)


def _check_audio(path: Path, mode: str, audio: AudioSource | None) -> None:
    one_of(mode, AudioMode, "--audio")
    suffix = path.suffix.lower()
    if mode == "encode":
        try:
            av.codec.Codec(AUDIO_ENCODER[suffix], "w")
        except (av.error.FFmpegError, ValueError):
            raise GantxError(
                f"--audio encode: this FFmpeg has no {AUDIO_ENCODER[suffix]} encoder for {suffix}; use --audio drop"
            ) from None
    if mode != "copy" or audio is None:
        return
    for name in audio.codecs:
        if name not in container_codecs(suffix):
            holders = [other for other in VIDEO_FORMATS if name in container_codecs(other)]
            elsewhere = f", or an output ending in {', '.join(holders)}" if holders else ""
            raise GantxError(
                f"{audio.path}: a {suffix} file cannot hold its {name} audio; "
                f"use --audio encode ({AUDIO_ENCODER[suffix]}) or --audio drop{elsewhere}"
            )


class VideoWriter:
    """Encodes frames into `path`, which appears only when the `with` block completes.

    `write` takes HxW or HxWx3 uint8 frames; `pts`/`duration` are in
    `time_base` units (default 1/`rate`, frames numbered in order when no pts
    is given). `audio_from` is a file whose audio streams go along, as
    `options.audio` says; what the output cannot hold is refused on entering,
    before anything is written.

    A pixel format that subsamples chroma (yuv420p: one colour sample per 2x2
    pixels) takes only sides that are multiples of the subsampling; a side
    that is not is padded at the bottom or right by repeating its last row or
    column, so every frame size encodes (85x64 frames become an 86x64 video).
    """

    def __init__(
        self,
        path: Path,
        rate: Fraction | float,
        options: EncodeOptions = EncodeOptions(),
        time_base: Fraction | None = None,
        rotation: int = 0,
        colour: Colour = Colour(),
        audio_from: Path | None = None,
    ) -> None:
        self.path = Path(path)
        self.rate = Fraction(rate).limit_denominator(1_000_000)
        self.time_base = time_base or 1 / self.rate
        self.options, self.rotation, self.colour, self.audio_from = options, rotation, colour, audio_from
        self.count = 0
        self.pad = (0, 0)  # rows, columns added to each frame for the pixel format's chroma subsampling
        self.stream: av.video.stream.VideoStream | None = None
        self.source: av.container.InputContainer | None = None  # `audio_from`, open while writing
        self.audio: Iterator[av.Packet] | None = None
        self.waiting: av.Packet | None = None  # the first audio packet past the video written so far
        self.durations: dict[int, int] = {}  # pts -> duration of frames inside the encoder
        self.stack = contextlib.ExitStack()

    def __enter__(self) -> VideoWriter:
        with self.stack as stack:
            if self.audio_from is not None and self.options.audio != "drop":
                self.source = stack.enter_context(contextlib.closing(_open(self.audio_from)))
            check_encoding(
                self.path,
                self.options,
                AudioSource.of(self.source, self.audio_from) if self.source is not None else None,
            )
            tmp = stack.enter_context(atomic_target(self.path))
            self.container = av.open(str(tmp), "w", format=VIDEO_FORMATS[self.path.suffix.lower()])
            stack.callback(self.container.close)  # runs before the rename, or before the temp file goes
            self.stack = stack.pop_all()
        return self

    def __exit__(self, kind, error, traceback) -> None:
        with self.stack:  # closes the container, then renames the temp file into place (removes it on error)
            if error is not None:
                raise error
            self._finish()

    def _finish(self) -> None:
        if self.stream is None:
            raise InputError(f"{self.path}: no frames to write")
        self._mux(self._encode(None))
        self._mux_audio_until(None)

    def _start(self, height: int, width: int) -> None:
        """Add the video stream (and the audio's) once the frame size is known."""
        pixels = av.VideoFormat(self.options.pix_fmt)
        self.pad = (
            -height % (CHROMA_PROBE // pixels.chroma_height(CHROMA_PROBE)),
            -width % (CHROMA_PROBE // pixels.chroma_width(CHROMA_PROBE)),
        )
        codec = self.options.codec_for(self.path)
        stream = self.container.add_stream(codec, rate=self.rate)
        stream.width, stream.height, stream.pix_fmt = width + self.pad[1], height + self.pad[0], self.options.pix_fmt
        context = stream.codec_context
        context.time_base = self.time_base
        context.colorspace, context.color_range = self.colour.space, self.colour.range
        context.color_primaries, context.color_trc = self.colour.primaries, self.colour.trc
        options = {}
        if "crf" in {option.name for option in context.supported_options.private}:
            options = {"crf": str(self.options.crf), **({"b": "0"} if codec.startswith("libvpx") else {})}
        if self.path.suffix.lower() in NO_REORDERING:  # AVI keeps no presentation times apart from decoding order
            options["bf"] = "0"
        stream.options = options
        if self.rotation:
            stream.set_display_rotation(self.rotation)
        self.stream = stream
        if self.source is not None and self.source.streams.audio:
            self.audio = self._audio()

    def _audio(self) -> Iterator[av.Packet]:
        """The source's audio as packets of this file; its streams are added before this returns, after the video's."""
        streams = self.source.streams.audio
        if self.options.audio == "copy":
            outputs = {stream.index: self.container.add_stream_from_template(stream) for stream in streams}
        else:
            outputs = {stream.index: self._add_encoder(stream) for stream in streams}
        return self._audio_packets(outputs)

    def _audio_packets(self, outputs: dict[int, av.audio.stream.AudioStream]) -> Iterator[av.Packet]:
        """Every audio packet, copied untouched or decoded and re-encoded; each frame keeps its time.

        PyAV's encoder converts each decoded frame with av.AudioResampler to the
        rate, layout, sample format and frame size it was opened with, and the
        timestamps carry through, so the audio starts where the source's does.
        """
        try:
            for packet in self.source.demux(*self.source.streams.audio):
                output = outputs[packet.stream.index]  # the empty packets that end a demux have no stream_index
                if self.options.audio == "encode":
                    for frame in packet.decode():  # the empty packets that end a demux flush the decoder
                        yield from output.encode(frame)
                elif packet.dts is not None:  # copy: skip the empty packets that end a demux
                    packet.stream = output
                    yield packet
            if self.options.audio == "encode":
                for output in outputs.values():
                    yield from output.encode(None)
        except (av.error.FFmpegError, ValueError) as error:  # a damaged packet, or a layout that changes midway
            raise InputError(
                f"{self.audio_from}: cannot {self.options.audio} its audio ({first_line(error)})"
            ) from None

    def _add_encoder(self, source: av.audio.stream.AudioStream) -> av.audio.stream.AudioStream:
        """A stream in this container's usual audio codec, as close to `source` as that encoder takes."""
        codec = av.codec.Codec(AUDIO_ENCODER[self.path.suffix.lower()], "w")
        lowest = max(source.rate, LOWEST_RATE.get(codec.name, 0))
        rates = sorted(codec.audio_rates or [lowest])
        stream = self.container.add_stream(codec.name, rate=next((rate for rate in rates if rate >= lowest), rates[-1]))
        formats = [sample_format.name for sample_format in codec.audio_formats or [source.format]]
        twins = (source.format.name, source.format.packed.name, source.format.planar.name)
        stream.format = next((name for name in twins if name in formats), formats[0])
        stream.layout = (
            source.layout.name if _opens(codec.name, stream.rate, source.layout.name, stream.format.name) else "stereo"
        )
        return stream

    def _mux_audio_until(self, seconds: float | None) -> None:
        """Mux the audio up to `seconds` of video (all of it for None), so the streams interleave."""
        while self.audio is not None:
            packet = self.waiting if self.waiting is not None else next(self.audio, None)
            self.waiting = None
            if packet is None:
                self.audio = None
            elif seconds is not None and packet.dts * packet.time_base > seconds:
                self.waiting = packet
                return
            else:
                self.container.mux(packet)

    def _encode(self, frame: av.VideoFrame | None) -> list[av.Packet]:
        try:
            return self.stream.encode(frame)
        except av.error.FFmpegError as error:
            size = f" {self.stream.width}x{self.stream.height}"
            raise GantxError(
                f"{self.path}: {self.stream.codec_context.name} cannot encode{size} {self.options.pix_fmt} "
                f"({first_line(error)})"
            ) from None

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            duration = self.durations.pop(packet.pts, None)
            if duration:  # encoders guess the last frame's duration; the source knows it
                packet.duration = duration
            self.container.mux(packet)

    def write(self, image: np.ndarray, pts: int | None = None, duration: int | None = None) -> None:
        image = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
        if self.stream is None:
            self._start(*image.shape[:2])
        if any(self.pad):
            image = np.pad(image, ((0, self.pad[0]), (0, self.pad[1]), *[(0, 0)] * (image.ndim - 2)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="gray" if image.ndim == 2 else "rgb24")
        frame = frame.reformat(
            format=self.options.pix_fmt, dst_colorspace=self.colour.sws_space, dst_color_range=self.colour.range or None
        )
        frame.pts = self.count if pts is None else pts
        frame.time_base = self.time_base
        if duration:
            frame.duration = self.durations[frame.pts] = duration
        self.count += 1
        self._mux(self._encode(frame))
        self._mux_audio_until(float(frame.pts * self.time_base))


def _opens(codec: str, rate: int, layout: str, sample_format: str) -> bool:
    """Whether FFmpeg's `codec` encoder takes this layout (PyAV lists none; MP3 takes two channels at most)."""
    context = av.codec.CodecContext.create(codec, "w")
    context.sample_rate, context.layout, context.format = rate, layout, sample_format
    try:
        context.open()
    except av.error.FFmpegError:
        return False
    return True


def read_frames_dir(folder: Path) -> list[Frame]:
    """The images of `folder` as frames one time-base unit apart, in the order of the last number in their names.

    Each image is read only as it is translated (`Frame.pixels`), so one that
    cannot be read is that file's failure (see `translate_frames`).
    """
    if not folder.is_dir():
        raise GantxError(f"--frames-dir {folder}: not a folder")
    paths = sorted((path for path in folder.iterdir() if path.is_file() and is_image_path(path)), key=_frame_order)
    if not paths:
        raise GantxError(f"--frames-dir {folder}: no frames (numbered images) in it")
    return [Frame(path, index, index, 1) for index, path in enumerate(paths)]


def _frame_order(path: Path) -> tuple[int, str]:
    numbers = re.findall(r"\d+", path.stem)
    return (int(numbers[-1]) if numbers else -1, path.name)


# Called once per frame: None when it was translated, else the one line saying what failed.
FrameReport = Callable[[str | None], None]


def translate_frames(
    translator: Translator,
    frames: Iterable[Frame],
    writer: VideoWriter | None = None,
    frames_dir: Path | None = None,
    on_frame: FrameReport | None = None,
    workers: int | None = None,
    deflicker: float = 0.0,
) -> int:
    """Translate `frames` into `writer` (an entered VideoWriter) and/or numbered PNGs in `frames_dir`,
    deflickered at that strength (gantx.deflicker) when `deflicker` is not 0.

    Decoding runs ahead in its own thread, preparing and finishing (and PNG
    writing) in the pipeline's workers, encoding in a thread of its own, every
    queue bounded. Returns how many frames were translated.

    One bad file never stops the others. A frame image that cannot be read is
    left out of the video: the frame before it stays on screen for its slot,
    so every later frame keeps its time. A PNG that cannot be written is that
    PNG's failure only: the video still gets the frame. Either is reported to
    `on_frame` as its one line; without `on_frame` it ends the run (InputError).

    Deflickering is a cheap step in frame order after inference: each frame's
    source pixels wait for it (a couple of batches of them), and its PNG is
    written once it is smoothed.
    """
    window = 2 * translator.batch_size
    smooth = Deflicker(deflicker) if deflicker else None
    sources: dict[int, np.ndarray] = {}  # frame index -> its pixels, until smoothed

    def prepare(frame: Frame):
        pixels = frame.pixels()
        if smooth is not None:
            sources[frame.index] = pixels
        return translator.prepare(pixels)

    def png(frame: Frame) -> Path | None:
        return frames_dir / FRAME_NAME.format(frame.index + 1) if frames_dir is not None else None

    def files(frame: Frame) -> FileJob:
        """What a frame's failure line names: the image file it is read from, or the PNG it is written to."""
        source = frame.image if isinstance(frame.image, Path) else png(frame)
        return FileJob(source, png(frame) or writer.path)

    def store(frame: Frame, image: np.ndarray) -> tuple[np.ndarray, str | None]:
        """The image for the video, and why its PNG could not be written (None: it was, or none was asked for)."""
        if frames_dir is not None:
            try:
                save_image(array_to_image(image if image.ndim == 3 else image[:, :, None], None), png(frame))
            except OSError as error:
                return image, file_failure(error, files(frame))
        return image, None

    count = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gantx-encode") as encoder:
        encoding: deque = deque()
        store_beside = store if smooth is None else None  # smoothing goes in frame order: then the loop stores
        for frame, outcome in translate_ordered(translator, prefetch(frames, window), prepare, store_beside, workers):
            error, source = outcome.exception(), sources.pop(frame.index, None)
            if error is None and smooth is not None:
                image, failure = store(frame, smooth(source, outcome.result()))
            elif error is None:
                image, failure = outcome.result()
            elif isinstance(frame.image, Path):  # its image file could not be read: left out of the video
                image, failure = None, file_failure(error, files(frame))
            else:  # a decoded frame that fails is no bad file: that ends the run
                raise error
            if failure is not None and on_frame is None:
                raise InputError(failure)
            if image is not None:
                if writer is not None:
                    encoding.append(encoder.submit(writer.write, image, frame.pts, frame.duration))
                    while len(encoding) > window:
                        encoding.popleft().result()
                count += 1
            if on_frame is not None:
                on_frame(failure)
        while encoding:
            encoding.popleft().result()
    return count


def translate_video(
    translator: Translator,
    reader: VideoReader,
    target: Path | None,
    options: EncodeOptions = EncodeOptions(),
    frames_dir: Path | None = None,
    on_frame: FrameReport | None = None,
    workers: int | None = None,
) -> int:
    """Translate `reader`'s video into `target` (same timing, rotation, colours and audio) and/or `frames_dir`."""
    if target is None:
        return translate_frames(translator, reader, None, frames_dir, on_frame, workers, options.deflicker)
    audio = reader.path if reader.audio is not None else None
    with VideoWriter(target, reader.rate, options, reader.time_base, reader.rotation, reader.colour, audio) as writer:
        return translate_frames(translator, reader, writer, frames_dir, on_frame, workers, options.deflicker)
