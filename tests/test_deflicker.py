"""--deflicker on real photos moved by a known camera: flicker measured along the true motion, not DIS's.

The clips are windows sliding across scikit-image photos by a known sub-pixel
step, so where every pixel was one frame before is known exactly; E_warp is
taken along that motion. The model is the zoo's photo upscaler, a real
translator whose output changes slightly as the photo slides under it.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from real_videos import audio_packets, make_clip, pan_frames, stream_facts
from skimage import data

from gantx import Translator
from gantx.deflicker import Deflicker, translate_smoothly, warping_error
from gantx.video import EncodeOptions, VideoReader, translate_video

STEP = (9 / 4, 4 / 4)  # pan_frames slides its 4x-larger window by 9 and 4 photo pixels a frame
LOSSLESS = ["--crf", "0", "--pix-fmt", "yuv444p"]


def backward_flow(shape: tuple[int, int], scale: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Where each pixel of a frame (at `scale` x the clip's size) was one frame before, and which stayed in view."""
    height, width = shape
    flow = np.zeros((height, width, 2), np.float32)
    flow[..., 0], flow[..., 1] = STEP[0] * scale, STEP[1] * scale
    valid = np.zeros((height, width), bool)
    valid[: height - int(np.ceil(STEP[1] * scale)) - 1, : width - int(np.ceil(STEP[0] * scale)) - 1] = True
    return flow, valid


def e_warp(frames: list[np.ndarray], scale: int = 1) -> float:
    flow, valid = backward_flow(frames[0].shape[:2], scale)
    return float(np.mean([warping_error(before, now, flow, valid) for before, now in zip(frames, frames[1:])]))


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((reference.astype(np.float64) - test) ** 2)))


@pytest.fixture(scope="module")
def upscaler() -> Translator:
    return Translator("photo-upscale2x")


@pytest.fixture(scope="module")
def pan() -> list[np.ndarray]:
    return pan_frames(12, 96, 72)


def test_warping_error_is_the_mean_squared_difference_along_the_flow():
    rng = np.random.default_rng(0)
    before = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    now = np.roll(before, -2, axis=1)  # the picture moved 2 pixels left: pixel x was at x + 2
    flow = np.zeros((20, 30, 2), np.float32)
    flow[..., 0] = 2
    valid = np.zeros((20, 30), bool)
    valid[:, :28] = True
    assert warping_error(before, now, flow, valid) == 0
    brighter = now.astype(np.int16) + 10
    expected = np.mean((10 / 255) ** 2 * (brighter[:, :28] <= 255))  # no clipping in this draw: all pixels count
    assert warping_error(before, np.clip(brighter, 0, 255).astype(np.uint8), flow, valid) == pytest.approx(
        expected, rel=0.05
    )


def test_deflicker_steadies_a_real_translator_and_stays_close_to_it(upscaler, pan):
    per_frame = upscaler.translate(pan)
    smoothed = list(translate_smoothly(upscaler, pan))
    assert [image.shape for image in smoothed] == [(144, 192, 3)] * len(pan)  # the upscaler's size: flow scaled
    steady, flickery = e_warp(smoothed, 2), e_warp(per_frame, 2)
    assert steady <= 0.7 * flickery, (steady, flickery)
    fidelity = [psnr(reference, image) for reference, image in zip(per_frame[1:], smoothed[1:])]
    assert np.mean(fidelity) >= 30 and min(fidelity) >= 28, fidelity  # 96x72 of fine detail: harder than 256x256
    assert np.array_equal(smoothed[0], per_frame[0])
    by_hand = Deflicker()
    assert all(np.array_equal(by_hand(frame, output), image) for frame, output, image in zip(pan, per_frame, smoothed))


def test_a_scene_cut_starts_again_from_the_per_frame_output(upscaler):
    first = pan_frames(6, 96, 72)
    coffee = Image.fromarray(data.coffee())
    second = [
        np.asarray(coffee.crop((40 + 9 * t, 30, 40 + 9 * t + 384, 30 + 288)).resize((96, 72), Image.Resampling.BOX))
        for t in range(6)
    ]
    frames = first + second
    per_frame = upscaler.translate(frames)
    smooth = Deflicker()
    smoothed = [smooth(frame, output) for frame, output in zip(frames, per_frame)]
    assert smooth.cuts == 2  # the first frame, and the coffee's
    assert np.array_equal(smoothed[6], per_frame[6])
    assert not np.array_equal(smoothed[7], per_frame[7])  # and smoothing goes on within the new scene
    assert not np.array_equal(smoothed[5], per_frame[5])


def test_grey_frames_of_odd_sizes_keep_their_shape_and_are_steadied():
    photo = Image.fromarray(data.camera())  # a real grey photo
    frames = [
        np.asarray(photo.crop((9 * t, 4 * t, 9 * t + 4 * 53, 4 * t + 4 * 37)).resize((53, 37), Image.Resampling.BOX))
        for t in range(8)
    ]
    rng = np.random.default_rng(1)
    flickering = [np.clip(frame + rng.normal(0, 6), 0, 255).astype(np.uint8) for frame in frames]  # pulsing light
    smooth = Deflicker()
    smoothed = [smooth(frame, output) for frame, output in zip(frames, flickering)]
    assert all(image.shape == (37, 53) and image.dtype == np.uint8 for image in smoothed)
    assert e_warp(smoothed) < 0.6 * e_warp(flickering)


def test_translate_deflicker_keeps_timing_audio_and_count_and_doubles_the_size(tmp_path, run_cli, pan):
    clip = make_clip(tmp_path / "pan.mp4", pan)
    plain, smooth = tmp_path / "plain.mp4", tmp_path / "smooth.mp4"
    frames_dir = tmp_path / "frames"
    code, _, stderr = run_cli("translate", clip, "-m", "photo-upscale2x", "-o", plain, *LOSSLESS)
    assert code == 0, stderr
    code, stdout, stderr = run_cli(
        "translate", clip, "-m", "photo-upscale2x", "-o", smooth, "--deflicker", "--frames-dir", frames_dir, *LOSSLESS
    )
    assert code == 0, stderr
    assert "translated 1, skipped 0, failed 0" in stdout
    source, flickery, steady = stream_facts(clip), stream_facts(plain), stream_facts(smooth)
    for key in ("frames", "seconds", "rate", "duration"):
        assert steady[key] == source[key], key
    assert audio_packets(smooth) == audio_packets(clip)
    assert steady["pixels"][0].shape == (144, 192, 3)
    pngs = sorted(frames_dir.glob("*.png"))
    assert len(pngs) == len(pan)
    for png, decoded in zip(pngs, steady["pixels"]):  # the PNGs are the smoothed frames the video holds
        assert np.abs(np.asarray(Image.open(png), np.int16) - decoded).max() <= 2
    assert e_warp([p.astype(np.uint8) for p in steady["pixels"]], 2) < e_warp(
        [p.astype(np.uint8) for p in flickery["pixels"]], 2
    )


def test_the_video_api_deflickers_a_reader(tmp_path, upscaler, pan):
    clip = make_clip(tmp_path / "pan.mp4", pan, audio=None)
    out = tmp_path / "out.mp4"
    count = translate_video(upscaler, VideoReader(clip), out, EncodeOptions(crf=0, pix_fmt="yuv444p", deflicker=0.6))
    assert count == len(pan)
    decoded = [frame.image for frame in VideoReader(clip)]
    expected = list(translate_smoothly(upscaler, decoded, 0.6))
    written = stream_facts(out)["pixels"]
    assert all(np.abs(image - reference).max() <= 2 for image, reference in zip(written, expected))


@pytest.mark.parametrize("strength, flag", [("1", ["--deflicker"]), ("-0.1", [])])
def test_a_strength_out_of_range_is_one_line_and_exit_2(tmp_path, run_cli, pan, strength, flag):
    clip = make_clip(tmp_path / "pan.mp4", pan[:2], audio=None)
    code, _, stderr = run_cli(
        "translate", clip, "-m", "photo-upscale2x", "-o", tmp_path / "o.mp4", "--deflicker-strength", strength, *flag
    )
    assert code == 2
    assert stderr.strip() == f"gantx: error: --deflicker-strength {float(strength)}: must be at least 0 and below 1"
    assert not (tmp_path / "o.mp4").exists()


def test_without_opencv_deflicker_names_the_extra_before_any_work(tmp_path, run_cli, pan, monkeypatch):
    clip = make_clip(tmp_path / "pan.mp4", pan[:2], audio=None)
    monkeypatch.setitem(sys.modules, "cv2", None)
    code, _, stderr = run_cli("translate", clip, "-m", "photo-upscale2x", "-o", tmp_path / "o.mp4", "--deflicker")
    assert code == 2
    assert stderr.strip() == 'gantx: error: cv2 is not installed: pip install "gantx[flow]"'
    assert not (tmp_path / "o.mp4").exists()


def test_gantx_and_its_video_path_load_no_opencv_until_deflicker_is_asked_for():
    code = "import sys, gantx, gantx.video, gantx.cli.translate; print('cv2' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_a_rotated_clip_in_tiles_keeps_its_rotation_and_gets_the_tiled_smoothed_frames(tmp_path, run_cli, pan):
    clip = make_clip(tmp_path / "phone.mov", pan[:6], rotation=90, audio=None)
    out = tmp_path / "out.mov"
    code, _, stderr = run_cli(
        "translate", clip, "-m", "photo-upscale2x", "-o", out, "--deflicker", "--tile", "48", *LOSSLESS
    )
    assert code == 0, stderr
    written = stream_facts(out)
    assert written["rotation"] == stream_facts(clip)["rotation"] != 0
    tiled = Translator("photo-upscale2x", tile=48)
    expected = list(translate_smoothly(tiled, [frame.image for frame in VideoReader(clip)]))
    assert len(written["pixels"]) == len(expected) == 6
    assert all(np.abs(image - reference).max() <= 2 for image, reference in zip(written["pixels"], expected))


def test_a_strength_alone_turns_deflicker_on(tmp_path, run_cli, pan):
    clip = make_clip(tmp_path / "pan.mp4", pan[:5], audio=None)
    outputs = {}
    for name, options in (("flag", ["--deflicker"]), ("strength", ["--deflicker-strength", "0.5"]), ("off", [])):
        outputs[name] = tmp_path / f"{name}.mp4"
        code, _, stderr = run_cli("translate", clip, "-m", "photo-upscale2x", "-o", outputs[name], *options, *LOSSLESS)
        assert code == 0, stderr
    flag, strength, off = (stream_facts(outputs[name])["pixels"] for name in ("flag", "strength", "off"))
    assert all(np.array_equal(a, b) for a, b in zip(flag, strength))
    assert not all(np.array_equal(a, b) for a, b in zip(flag, off))


def test_an_alpha_channel_is_carried_over_not_smoothed(upscaler, pan):
    alpha = np.linspace(0, 255, 96 * 72).reshape(72, 96).astype(np.uint8)
    frames = [np.dstack([frame, np.roll(alpha, index, axis=1)]) for index, frame in enumerate(pan[:4])]
    per_frame = upscaler.translate(frames)
    smoothed = list(translate_smoothly(upscaler, frames))
    for reference, image in zip(per_frame, smoothed):
        assert image.shape == (144, 192, 4)
        assert np.array_equal(image[:, :, 3], reference[:, :, 3])
    assert not np.array_equal(smoothed[2][:, :, :3], per_frame[2][:, :, :3])
