"""Video translation on real clips (a pan over a real photo, real speech), checked with PyAV directly.

The negate model's correct output for a pixel p is 255 - p, so each output frame
is compared with the input frame as PyAV itself decodes it. Timing, rotation,
colour tags and audio are read back from the containers, not from gantx.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from real_videos import audio_packets, make_clip, pan_frames, stream_facts

from gantx import Translator
from gantx.errors import GantxError, InputError
from gantx.planning import plan
from gantx.video import (
    AudioSource,
    EncodeOptions,
    Frame,
    VideoReader,
    VideoWriter,
    read_frames_dir,
    translate_frames,
    translate_video,
)

VFR_MS = [0, 100, 200, 350, 400, 500, 700, 800, 900, 1000, 1100, 1300, 1350, 1400, 1500]
LOSSLESS = ["--crf", "0", "--pix-fmt", "yuv444p"]


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return pan_frames(15)


@pytest.fixture(scope="module")
def clips(tmp_path_factory, frames) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    return {
        "mp4": make_clip(folder / "pan.mp4", frames),
        "vfr": make_clip(folder / "vfr.mkv", frames, pts_ms=VFR_MS, audio="libopus"),
        "rotated": make_clip(folder / "phone.mov", frames, rotation=90),
        "webm": make_clip(folder / "web.webm", frames, audio="libopus", codec="libvpx-vp9"),
        "bt709": make_clip(folder / "hd.mp4", frames, colour_space=1),
        "silent": make_clip(folder / "silent.avi", frames, audio=None, codec="mpeg4"),
    }


def decoded_audio(path: Path, rate: int = 16000) -> tuple[str, float, np.ndarray]:
    """The first audio stream's codec, the time its first decoded sample plays, and its samples as mono at `rate`."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        frames = list(container.decode(stream))
        chunks = [chunk.to_ndarray().ravel() for frame in [*frames, None] for chunk in resampler.resample(frame)]
        return stream.codec_context.name, float(frames[0].pts * frames[0].time_base), np.concatenate(chunks)


def best_lag(reference: np.ndarray, signal: np.ndarray) -> tuple[int, float]:
    """The shift of `signal` behind `reference`, in samples, where the two correlate best, and that correlation."""
    size = len(reference) + len(signal)
    product = np.fft.rfft(signal, size) * np.conj(np.fft.rfft(reference, size))
    lag = int(np.argmax(np.fft.irfft(product, size)))
    lag = lag if lag < len(signal) else lag - size
    overlap = min(len(reference), len(signal) - lag) if lag >= 0 else min(len(reference) + lag, len(signal))
    a, b = (
        (reference[:overlap], signal[lag : lag + overlap])
        if lag >= 0
        else (reference[-lag : overlap - lag], signal[:overlap])
    )
    return lag, float(np.corrcoef(a, b)[0, 1])


def assert_negated(source: Path, output: Path, tolerance: int) -> None:
    inputs, outputs = stream_facts(source)["pixels"], stream_facts(output)["pixels"]
    assert len(inputs) == len(outputs)
    for before, after in zip(inputs, outputs):
        assert np.abs((255 - before) - after).max() <= tolerance


def test_mp4_keeps_frames_rate_duration_and_copies_audio_bit_for_bit(clips, negate_onnx, tmp_path, run_cli):
    out = tmp_path / "negative.mp4"
    code, stdout, stderr = run_cli("translate", clips["mp4"], "-m", negate_onnx, "-o", out, "-b", "4", *LOSSLESS)
    assert code == 0, stderr
    assert "translated 1, skipped 0, failed 0" in stdout and "frames/s" in stdout
    source, result = stream_facts(clips["mp4"]), stream_facts(out)
    for key in ("frames", "seconds", "rate", "duration"):
        assert result[key] == source[key], key
    assert result["frames"] == 15 and result["rate"] == 10
    packets = audio_packets(clips["mp4"])
    assert len(packets) > 20 and audio_packets(out) == packets
    assert_negated(clips["mp4"], out, tolerance=2)  # RGB -> YUV 4:4:4 -> RGB rounding only
    assert not list(tmp_path.glob(".*.part"))


def test_the_zoo_upscaler_doubles_a_video_and_keeps_its_timing_and_audio(clips, tmp_path, run_cli):
    out = tmp_path / "big.mp4"
    code, _, stderr = run_cli("translate", clips["mp4"], "-m", "photo-upscale2x", "-o", out, *LOSSLESS)
    assert code == 0, stderr
    source, result = stream_facts(clips["mp4"]), stream_facts(out)
    for key in ("frames", "seconds", "rate", "duration"):
        assert result[key] == source[key], key
    assert audio_packets(out) == audio_packets(clips["mp4"])
    for before, after in zip(source["pixels"], result["pixels"]):
        height, width = before.shape[:2]
        assert after.shape == (2 * height, 2 * width, 3)
        lanczos = np.asarray(
            Image.fromarray(before.astype(np.uint8)).resize((2 * width, 2 * height), Image.Resampling.LANCZOS), np.int16
        )
        assert np.abs(after - lanczos).mean() < 4  # the same picture, twice as large: an upscaler, not a filter


def test_default_encoding_is_h264_yuv420p_and_close_to_the_truth(clips, negate_onnx, tmp_path, run_cli):
    out = tmp_path / "negative.mp4"
    assert run_cli("translate", clips["mp4"], "-m", negate_onnx, "-o", out)[0] == 0
    with av.open(str(out)) as container:
        context = container.streams.video[0].codec_context
        assert (context.name, context.pix_fmt) == ("h264", "yuv420p")
    errors = [
        np.abs((255 - a) - b).mean() for a, b in zip(stream_facts(clips["mp4"])["pixels"], stream_facts(out)["pixels"])
    ]
    assert max(errors) < 4  # CRF 18 on a 64x48 clip


def test_h264_in_avi_reads_back_in_order(clips, negate_onnx, tmp_path, run_cli):
    code, _, err = run_cli("translate", clips["mp4"], "-m", negate_onnx, "-o", tmp_path / "out.avi", "--audio", "drop")
    assert code == 0, err
    source, result = stream_facts(clips["mp4"]), stream_facts(tmp_path / "out.avi")
    assert result["seconds"] == sorted(result["seconds"]) and len(result["seconds"]) == source["frames"]
    for expected, actual in zip(source["pixels"], result["pixels"]):  # each frame in its own place
        assert np.abs((255 - expected) - actual).mean() < 6


def test_variable_frame_rate_keeps_every_timestamp(clips, negate_onnx, tmp_path, run_cli):
    out = tmp_path / "negative.mkv"
    assert run_cli("translate", clips["vfr"], "-m", negate_onnx, "-o", out)[0] == 0
    result = stream_facts(out)
    assert result["seconds"] == [ms / 1000 for ms in VFR_MS]
    assert result["duration"] == stream_facts(clips["vfr"])["duration"]
    assert audio_packets(out) == audio_packets(clips["vfr"])


def test_display_rotation_is_kept(clips, negate_onnx, tmp_path, run_cli):
    out = tmp_path / "negative.mov"
    assert run_cli("translate", clips["rotated"], "-m", negate_onnx, "-o", out)[0] == 0
    assert stream_facts(clips["rotated"])["rotation"] == 90
    assert stream_facts(out)["rotation"] == 90


def test_webm_gets_vp9_and_keeps_its_opus_audio(clips, negate_onnx, tmp_path, run_cli):
    out = tmp_path / "negative.webm"
    assert run_cli("translate", clips["webm"], "-m", negate_onnx, "-o", out)[0] == 0
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "vp9"
    assert stream_facts(out)["seconds"] == stream_facts(clips["webm"])["seconds"]
    assert audio_packets(out) == audio_packets(clips["webm"])


def test_bt709_colours_are_converted_and_tagged_as_bt709(clips, negate_onnx, tmp_path, run_cli):
    out = tmp_path / "negative.mp4"
    assert run_cli("translate", clips["bt709"], "-m", negate_onnx, "-o", out, *LOSSLESS)[0] == 0
    assert stream_facts(out)["colorspace"] == 1
    with av.open(str(clips["bt709"])) as source, av.open(str(out)) as result:
        pairs = zip(source.decode(video=0), result.decode(video=0))
        for before, after in pairs:  # converted with the BT.709 matrix both ways, as a player would
            expected = 255 - before.to_ndarray(format="rgb24", src_colorspace=1, src_color_range=1).astype(np.int16)
            assert np.abs(expected - after.to_ndarray(format="rgb24", src_colorspace=1, src_color_range=1)).max() <= 2


def test_a_folder_of_videos_and_images_is_mirrored_and_rerun_skips(clips, negate_onnx, tmp_path, run_cli, frames):
    folder = tmp_path / "media"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(clips["silent"], folder / "sub" / "silent.avi")
    shutil.copy(clips["mp4"], folder / "pan.mp4")
    Image.fromarray(frames[0]).save(folder / "still.png")
    out = tmp_path / "out"
    code, stdout, stderr = run_cli("translate", folder, "-m", negate_onnx, "-o", out)
    assert code == 0, stderr
    assert "translated 3, skipped 0, failed 0" in stdout
    assert np.array_equal(np.asarray(Image.open(out / "still.png")), 255 - frames[0])
    assert stream_facts(out / "sub" / "silent.avi")["frames"] == 15
    assert stream_facts(out / "pan.mp4")["seconds"] == stream_facts(clips["mp4"])["seconds"]
    code, stdout, _ = run_cli("translate", folder, "-m", negate_onnx, "-o", out)
    assert "translated 0, skipped 3, failed 0" in stdout


def test_frames_dir_writes_exact_frames_and_reads_them_back_into_a_video(clips, negate_onnx, tmp_path, run_cli):
    frames_dir = tmp_path / "frames"
    code, _, stderr = run_cli("translate", clips["mp4"], "-m", negate_onnx, "--frames-dir", frames_dir)
    assert code == 0, stderr
    written = sorted(frames_dir.iterdir())
    assert [path.name for path in written] == [f"{index:06d}.png" for index in range(1, 16)]
    for path, before in zip(written, stream_facts(clips["mp4"])["pixels"]):
        assert np.array_equal(np.asarray(Image.open(path)), 255 - before)  # exactly the model's output
    video = tmp_path / "from-frames.mp4"
    code, stdout, stderr = run_cli(
        "translate", "--frames-dir", frames_dir, "-m", negate_onnx, "-o", video, "--fps", "12", *LOSSLESS
    )
    assert code == 0, stderr
    result = stream_facts(video)
    assert result["frames"] == 15 and result["rate"] == 12
    for before, after in zip(stream_facts(clips["mp4"])["pixels"], result["pixels"]):
        assert np.abs(before - after).max() <= 3  # negated twice: the original frames again


@pytest.mark.parametrize("damage", ["truncated", "garbage", "bad-first-frame"])
def test_a_broken_video_fails_by_name_with_exit_1_and_no_half_file(clips, negate_onnx, tmp_path, run_cli, damage):
    whole = clips["mp4"].read_bytes()
    broken = tmp_path / f"{damage}.mp4"
    if damage != "garbage":  # moov in front, samples after it
        faststart = tmp_path / "faststart.mp4"
        with (
            av.open(str(clips["mp4"])) as source,
            av.open(str(faststart), "w", options={"movflags": "faststart"}) as copy,
        ):
            streams = {stream.index: copy.add_stream_from_template(stream) for stream in source.streams}
            for packet in source.demux():
                if packet.dts is not None:
                    packet.stream = streams[packet.stream_index]
                    copy.mux(packet)
        data = faststart.read_bytes()
        if damage == "truncated":  # samples cut off: demuxes quietly, 15 frames promised
            broken.write_bytes(data[: len(data) * 2 // 3])
        else:  # the first frame's bytes zeroed: the decoder refuses the very first packet
            start = data.find(b"mdat") + 4
            broken.write_bytes(data[:start] + bytes(400) + data[start + 400 :])
    else:
        broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + whole[200:400])
    out = tmp_path / "out"
    code, stdout, stderr = run_cli("translate", broken, clips["silent"], "-m", negate_onnx, "-o", out)
    assert code == 1
    assert f"{damage}.mp4" in stderr and "Traceback" not in stderr
    assert "translated 1, skipped 0, failed 1" in stdout
    assert sorted(path.name for path in out.iterdir()) == ["silent.avi"]


def test_ctrl_c_leaves_no_half_file(clips, negate_onnx, tmp_path):
    class Interrupted(Translator):
        calls = 0

        def infer(self, batch):
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt
            return super().infer(batch)

    target = tmp_path / "out" / "negative.mp4"
    with pytest.raises(KeyboardInterrupt):
        translate_video(Interrupted(negate_onnx, provider="cpu", batch_size=2), VideoReader(clips["mp4"]), target)
    assert list((tmp_path / "out").iterdir()) == []
    assert [thread.name for thread in threading.enumerate() if thread.name.startswith("gantx")] == []


def test_encoding_options_that_cannot_work_are_refused_before_any_work(clips, negate_onnx, tmp_path, run_cli):
    cases = [
        (["--codec", "libx264"], "x.webm", "cannot hold libx264"),
        (["--codec", "nosuchcodec"], "x.mp4", "no such encoder"),
        (["--codec", "aac"], "x.mp4", "not a video encoder"),
        (["--pix-fmt", "rgb48le"], "x.mp4", "--pix-fmt 'rgb48le'"),
    ]
    for options, name, message in cases:
        code, _, stderr = run_cli("translate", clips["mp4"], "-m", negate_onnx, "-o", tmp_path / name, *options)
        assert code == 2 and message in stderr and stderr.count("\n") == 1, stderr
    code, _, stderr = run_cli("translate", clips["mp4"], "-m", negate_onnx, "-o", tmp_path / "x.png")
    assert code == 2 and "video input needs a video output" in stderr
    assert not any(tmp_path.iterdir())


def test_audio_the_output_cannot_hold_is_refused_before_any_frame(clips, negate_onnx, tmp_path, run_cli, monkeypatch):
    calls = {"infer": 0, "decode": 0}
    infer, decode = Translator.infer, VideoReader.__iter__

    def counted(name, method):
        def call(self, *args):
            calls[name] += 1
            return method(self, *args)

        return call

    monkeypatch.setattr(Translator, "infer", counted("infer", infer))
    monkeypatch.setattr(VideoReader, "__iter__", counted("decode", decode))
    code, stdout, stderr = run_cli("translate", clips["mp4"], "-m", negate_onnx, "-o", tmp_path / "x.webm")
    assert code == 2 and stdout == "" and stderr.count("\n") == 1, stderr
    assert (
        f"{clips['mp4']}: a .webm file cannot hold its aac audio; use --audio encode (libopus) or --audio drop"
        in stderr
    )
    assert calls == {"infer": 0, "decode": 0}
    code, _, stderr = run_cli(
        "translate", clips["mp4"], "-m", negate_onnx, "-o", tmp_path / "x.mp4", "--audio", "reencode"
    )
    assert code == 2 and "--audio 'reencode': choose one of copy, encode, drop" in stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "suffix, codec, frame_samples", [(".webm", "opus", 960), (".mp4", "aac", 1024), (".avi", "mp3float", 1152)]
)
def test_audio_encode_uses_the_containers_codec_and_keeps_the_speech_in_time(
    clips, negate_onnx, tmp_path, run_cli, suffix, codec, frame_samples
):
    out = tmp_path / f"negative{suffix}"
    code, _, stderr = run_cli("translate", clips["mp4"], "-m", negate_onnx, "-o", out, "--audio", "encode")
    assert code == 0, stderr
    source_codec, source_start, source = decoded_audio(clips["mp4"])
    name, start, result = decoded_audio(out)
    assert (source_codec, name) == ("aac", codec)
    assert audio_packets(out) != audio_packets(clips["mp4"])  # encoded anew, not copied
    with av.open(str(out)) as container:
        one_frame = frame_samples / container.streams.audio[0].rate  # seconds of one frame of the output's audio
    assert abs(start - source_start) <= one_frame
    assert (
        abs(len(result) - len(source)) / 16000 <= 0.1
    )  # measured: 0 s for Opus and AAC, 0.064 s for MP3 (its delay and padding)
    lag, correlation = best_lag(source, result)
    assert (
        abs(lag) / 16000 <= one_frame and correlation > 0.95
    )  # measured: lag 0, 0, 34.6 ms; correlation 0.9993, 0.99999, 0.978
    assert stream_facts(out)["frames"] == 15


def test_audio_drop_writes_video_alone(clips, negate_onnx, tmp_path, run_cli):
    out = tmp_path / "negative.webm"
    code, _, stderr = run_cli("translate", clips["mp4"], "-m", negate_onnx, "-o", out, "--audio", "drop")
    assert code == 0, stderr
    with av.open(str(out)) as container:
        assert [stream.type for stream in container.streams] == ["video"]
    assert stream_facts(out)["seconds"] == stream_facts(clips["mp4"])["seconds"]


@pytest.mark.parametrize("audio, opens", [("copy", 3), ("drop", 2)])
def test_the_video_is_probed_once(clips, negate_onnx, tmp_path, run_cli, monkeypatch, audio, opens):
    """One header probe (the reader, also for the up-front audio check), one decode, one audio read if audio is kept."""
    source, opened, probes = clips["mp4"], [], []
    real_open, real_init = av.open, VideoReader.__init__

    def counted_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    def counted_init(self, path):
        probes.append(path)
        real_init(self, path)

    monkeypatch.setattr(av, "open", counted_open)
    monkeypatch.setattr(VideoReader, "__init__", counted_init)
    assert run_cli("translate", source, "-m", negate_onnx, "-o", tmp_path / "out.mp4", "--audio", audio)[0] == 0
    assert probes == [source] and opened.count(str(source)) == opens


def test_a_bad_frame_image_is_left_out_and_the_others_keep_their_time(frames, negate_onnx, tmp_path, run_cli):
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, pixels in enumerate(frames, start=1):
        Image.fromarray(pixels).save(folder / f"{index:06d}.png")
    (folder / "000005.png").write_bytes(b"not a png at all")
    video = tmp_path / "out.mp4"
    code, stdout, stderr = run_cli(
        "translate", "--frames-dir", folder, "-m", negate_onnx, "-o", video, "--fps", "10", *LOSSLESS
    )
    assert code == 1 and "Traceback" not in stderr
    assert "translated 1, skipped 0, failed 1" in stdout
    assert [line for line in stderr.splitlines() if line.startswith("failed")] == [
        f"failed {folder / '000005.png'}: cannot read image (cannot identify image file {str(folder / '000005.png')!r})"
    ]
    result = stream_facts(video)
    assert result["seconds"] == [
        index / 10 for index in range(15) if index != 4
    ]  # frame 4 stays on screen for the missing slot
    for before, after in zip(
        [pixels for index, pixels in enumerate(frames) if index != 4], result["pixels"], strict=True
    ):
        assert np.abs((255 - before.astype(np.int16)) - after).max() <= 2
    with pytest.raises(
        InputError, match="000005.png: cannot read image"
    ):  # the library, asked for no report, stops there
        translate_frames(
            Translator(negate_onnx, provider="cpu"), read_frames_dir(folder), frames_dir=tmp_path / "again"
        )


def test_a_frames_folder_with_no_readable_frame_writes_nothing(negate_onnx, tmp_path, run_cli):
    folder = tmp_path / "frames"
    folder.mkdir()
    for index in (1, 2):
        (folder / f"{index:06d}.png").write_bytes(b"truncated")
    code, stdout, stderr = run_cli(
        "translate", "--frames-dir", folder, "-m", negate_onnx, "-o", tmp_path / "out" / "x.mp4"
    )
    assert code == 1 and "translated 0, skipped 0, failed 3" in stdout
    assert "000001.png" in stderr and "000002.png" in stderr and "x.mp4: no frames to write" in stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_a_frame_png_that_cannot_be_written_fails_alone(clips, negate_onnx, tmp_path, run_cli):
    frames_dir = tmp_path / "frames"
    (frames_dir / "000007.png").mkdir(parents=True)  # a folder where the PNG should go: no rename can replace it
    out = tmp_path / "negative.mp4"
    code, stdout, stderr = run_cli(
        "translate", clips["mp4"], "-m", negate_onnx, "-o", out, "--frames-dir", frames_dir, *LOSSLESS
    )
    assert code == 1 and "translated 1, skipped 0, failed 1" in stdout
    failures = [line for line in stderr.splitlines() if line.startswith("failed")]
    assert len(failures) == 1 and failures[0].startswith(f"failed {frames_dir / '000007.png'}: cannot write (")
    source = stream_facts(clips["mp4"])["pixels"]
    for index, before in enumerate(source, start=1):
        if index != 7:
            assert np.array_equal(np.asarray(Image.open(frames_dir / f"{index:06d}.png")), 255 - before)
    assert sorted(path.name for path in frames_dir.iterdir()) == [
        f"{index:06d}.png" for index in range(1, 16)
    ]  # no .part left
    assert_negated(clips["mp4"], out, tolerance=2)  # the video still has all 15 frames


def test_odd_sides_are_padded_with_their_last_row_and_column_where_chroma_is_subsampled(frames, tmp_path):
    odd = [pixels[:47, :63] for pixels in frames[:5]]  # a real photo's pan, 63x47
    with VideoWriter(
        tmp_path / "420.mp4", 10, EncodeOptions(crf=0)
    ) as writer:  # yuv420p: one colour sample per 2x2 pixels
        for pixels in odd:
            writer.write(pixels)
    with VideoWriter(tmp_path / "444.mp4", 10, EncodeOptions(crf=0, pix_fmt="yuv444p")) as writer:
        for pixels in odd:
            writer.write(pixels)
    padded = stream_facts(tmp_path / "420.mp4")["pixels"]
    assert [image.shape for image in padded] == [(48, 64, 3)] * 5
    for before, after in zip(odd, padded):
        expected = np.pad(before, ((0, 1), (0, 1), (0, 0)), mode="edge").astype(np.int16)
        assert np.abs(expected - after).mean() < 3  # yuv420p's colour rounding on a real photo
        assert (
            np.abs(expected[47] - after[47]).mean() < 6 and np.abs(expected[:, 63] - after[:, 63]).mean() < 6
        )  # the repeated edge, not black
    for before, after in zip(odd, stream_facts(tmp_path / "444.mp4")["pixels"], strict=True):
        assert after.shape == (47, 63, 3) and np.abs(before.astype(np.int16) - after).max() <= 2  # nothing to pad


def test_odd_sizes_from_size_or_a_frames_folder_encode_with_the_defaults(clips, negate_onnx, tmp_path, run_cli, frames):
    code, stdout, stderr = run_cli(
        "translate", clips["mp4"], "-m", negate_onnx, "-o", tmp_path / "out.avi", "--size", "47"
    )
    assert code == 0 and "translated 1, skipped 0, failed 0" in stdout, stderr  # 64x48 at shorter side 47: 63x47 frames
    result = stream_facts(tmp_path / "out.avi")
    assert result["frames"] == 15 and result["pixels"][0].shape == (48, 64, 3)
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, pixels in enumerate(frames[:4], start=1):
        Image.fromarray(pixels[:47, :63]).save(folder / f"{index:06d}.png")
    code, stdout, stderr = run_cli(
        "translate", "--frames-dir", folder, "-m", negate_onnx, "-o", tmp_path / "from-frames.mp4"
    )
    assert code == 0 and "translated 1, skipped 0, failed 0" in stdout, stderr
    result = stream_facts(tmp_path / "from-frames.mp4")
    assert result["frames"] == 4 and result["pixels"][0].shape == (48, 64, 3)


def test_camera_frames_through_the_python_api(negate_onnx, tmp_path, frames):
    """An app feeds a long camera feed; translated frames stream out lazily and in order."""
    translator = Translator(negate_onnx, provider="cpu", batch_size=4)
    feed = [frames[index % len(frames)] for index in range(60)]
    pulled = []

    def camera():
        for index, pixels in enumerate(feed):
            pulled.append(index)
            yield pixels

    stream = translator.translate(camera())
    first = next(stream)
    assert np.array_equal(first, 255 - feed[0])
    # At most the load window (2 batches) plus the result window (2 batches) and the batch in hand are read ahead.
    assert len(pulled) <= 5 * translator.settings.batch_size < len(feed)
    with VideoWriter(tmp_path / "camera.mp4", rate=30, options=EncodeOptions(crf=0, pix_fmt="yuv444p")) as writer:
        writer.write(first)
        for image in stream:
            writer.write(image)
    result = stream_facts(tmp_path / "camera.mp4")
    assert result["frames"] == len(feed) and result["rate"] == 30
    for before, after in zip(feed, result["pixels"], strict=True):
        assert np.abs((255 - before.astype(np.int16)) - after).max() <= 2


def test_memory_stays_flat_decoding_never_runs_far_ahead_of_encoding(negate_onnx):
    """Back-pressure: however long the video, only a few batches are ever in flight."""
    translator = Translator(negate_onnx, provider="cpu", batch_size=4)
    decoded = 0
    in_flight = []

    def long_video():
        nonlocal decoded
        pixels = np.zeros((48, 64, 3), np.uint8)
        for index in range(400):
            decoded += 1
            yield Frame(pixels, index, index, 1)

    class Sink:
        written = 0

        def write(self, image, pts, duration):
            self.written += 1
            in_flight.append(decoded - self.written)

    sink = Sink()
    assert translate_frames(translator, long_video(), sink) == 400  # type: ignore[arg-type]
    assert sink.written == 400
    assert max(in_flight) <= 8 * translator.settings.batch_size


def test_reader_reports_what_the_header_says(clips):
    reader = VideoReader(clips["rotated"])
    assert (reader.frames, reader.rate, reader.rotation) == (15, 10, 90)
    assert reader.audio == AudioSource(clips["rotated"], ("aac",))
    assert [frame.index for frame in reader] == list(range(15))


def test_a_video_its_options_cannot_write_is_refused_up_front_but_only_fails_itself_in_a_watch(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    frames = pan_frames(4, 64, 48)
    make_clip(folder / "a.mp4", frames, audio=None)
    make_clip(folder / "b.webm", frames, codec="libvpx-vp9", audio=None)  # as if it arrived later in a watched folder
    encode = EncodeOptions("libx264", 18, "yuv420p", "drop")
    refusal = "--codec libx264: a .webm file cannot hold libx264 video"
    with pytest.raises(GantxError) as refused:
        plan([str(folder)], tmp_path / "out", "same", None, encode)
    assert str(refused.value) == refusal
    watched = plan([str(folder)], tmp_path / "out", "same", None, encode, strict=False)
    assert isinstance(watched.readers[folder / "a.mp4"], VideoReader)
    assert str(watched.readers[folder / "b.webm"]) == f"{folder / 'b.webm'}: {refusal}"
