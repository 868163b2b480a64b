"""Small real video clips, made with PyAV: a camera pan over a real photo, with real speech.

The picture is scikit-image's astronaut photo, a 4x-shrunk window sliding
across it; the sound is tests/data/speech.flac, espeak-ng (Debian) saying
"one frame at a time", resampled to 16 kHz. Clips stay tiny (64x48, 15 frames)
so the tests are fast.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image
from skimage import data

SPEECH = Path(__file__).parent / "data" / "speech.flac"
WIDTH, HEIGHT = 64, 48


def pan_frames(count: int, width: int = WIDTH, height: int = HEIGHT) -> list[np.ndarray]:
    """`count` RGB frames of a pan across the astronaut photo."""
    photo = Image.fromarray(data.astronaut())
    frames = []
    for index in range(count):
        left, top = 40 + 9 * index, 60 + 4 * index
        window = photo.crop((left, top, left + 4 * width, top + 4 * height))
        frames.append(np.asarray(window.resize((width, height), Image.Resampling.BOX)))
    return frames


def make_clip(
    path: Path,
    frames: list[np.ndarray],
    rate: int = 10,
    pts_ms: list[int] | None = None,
    rotation: int = 0,
    audio: str | None = "aac",
    codec: str = "libx264",
    colour_space: int | None = None,
) -> Path:
    """Write `frames` at `rate` fps (or at `pts_ms` milliseconds: variable frame rate) with `audio` speech."""
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=rate)
        video.width, video.height, video.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        time_base = Fraction(1, 1000) if pts_ms else Fraction(1, rate)
        video.codec_context.time_base = time_base
        if colour_space is not None:
            video.codec_context.colorspace, video.codec_context.color_range = colour_space, 1
        if rotation:
            video.set_display_rotation(rotation)
        sound = container.add_stream(audio, rate=48000 if audio == "libopus" else 16000) if audio else None
        for index, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame = frame.reformat(
                format="yuv420p", dst_colorspace=colour_space, dst_color_range=1 if colour_space else None
            )
            frame.pts, frame.time_base = (pts_ms[index] if pts_ms else index), time_base
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            with av.open(str(SPEECH)) as speech:
                resampler = av.AudioResampler(
                    format=sound.codec_context.codec.audio_formats[0].name, layout="mono", rate=sound.rate
                )
                for decoded in speech.decode(audio=0):
                    for chunk in resampler.resample(decoded):
                        chunk.pts = None
                        container.mux(sound.encode(chunk))
                container.mux(sound.encode(None))
    return path


def stream_facts(path: Path) -> dict:
    """What a player reads from the container: timing of every frame, rate, duration, rotation, colour."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        decoded = list(container.decode(video))
        return {
            "frames": len(decoded),
            "seconds": [round(float(frame.pts * video.time_base), 4) for frame in decoded],
            "rate": video.average_rate,
            "duration": container.duration,
            "rotation": decoded[0].rotation,
            "colorspace": video.codec_context.colorspace,
            "pixels": [frame.to_ndarray(format="rgb24").astype(np.int16) for frame in decoded],
        }


def audio_packets(path: Path) -> list[tuple[int, int, bytes]]:
    with av.open(str(path)) as container:
        return [
            (packet.pts, packet.duration, bytes(packet))
            for packet in container.demux(audio=0)
            if packet.dts is not None
        ]
