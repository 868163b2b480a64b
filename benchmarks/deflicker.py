"""`--deflicker` measured: flicker (E_warp), fidelity and cost, on clips with known motion over real photos.

    flock /tmp/gantx-cpu.lock python benchmarks/deflicker.py --model R9.onnx [--model photo-upscale2x] [--clip VIDEO]

Clips (20 frames, 256x256, rendered from real scikit-image/scikit-learn photos
with a known affine camera per frame, so the true motion of every pixel is
known): a pan, a zoom, a rotation, a hand-held shake (a random walk of shift
and angle), an object (a disc cut from another photo) moving across a panning
background, and a scene cut (a pan over one photo, then over another). A
`--clip` video (real footage) is measured too, with motion from a slow,
accurate flow (OpenCV's Farneback), not the DIS flow that deflicker uses.

E_warp (Lai et al., ECCV 2018) is the mean squared difference, in [0, 1]
pixel units, between each frame and the one before warped along the true
motion, over the pixels visible in both (occlusions and the object's rim left
out); it is given for the source frames (their floor: resampling), the
per-frame translation, and the deflickered output at each strength tried.
Fidelity is the PSNR of the deflickered frames against the per-frame ones
(mean and worst frame; the first frame of each scene is its per-frame output
and is left out). Cost: the video path (`translate_video`, mp4 in and out) with
and without --deflicker alternated, and the flow and blending alone on
1920x1080 frames of a real photo on one core.
Targets (issue 25): E_warp <= 1.1x the source's and <= 0.5x the per-frame
output's, fidelity >= 33 dB mean and >= 28 dB worst frame, the frame after a
cut equal to its per-frame output, >= 0.9x the speed without deflicker at
256x256, <= 25 ms a 1080p frame. Results: benchmarks/results/deflicker.{json,md}.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from common import NATURE, best_of, facts, photo_paths, speed_flags, timed, write_results
from PIL import Image

from gantx import Translator
from gantx.deflicker import DEFAULT_STRENGTH, Deflicker, warping_error
from gantx.video import EncodeOptions, VideoReader, VideoWriter, translate_video

SIDE, FRAMES = 256, 20
STRENGTHS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
HD = (1080, 1920)


@dataclass
class Clip:
    """Frames and, for each frame after the first, where each pixel was one frame before and which pixels count."""

    name: str
    frames: list[np.ndarray]
    flows: list[np.ndarray | None]  # None: the first frame of a scene
    valid: list[np.ndarray | None]
    kind: str = "camera"  # camera, object, cut or real


def _photo(index: int) -> np.ndarray:
    return np.asarray(Image.open(photo_paths()[index]).convert("RGB"))


def _camera(t: int, move: str, rng_walk: list[tuple[float, float, float]]) -> np.ndarray:
    """The 2x3 affine from frame pixels to photo pixels at frame t."""
    centre = np.array([SIDE / 2, SIDE / 2])
    if move == "pan":
        shift, angle, zoom = (2.3 * t, 0.7 * t), 0.0, 1.0
    elif move == "zoom":
        shift, angle, zoom = (0.0, 0.0), 0.0, 1.0 - 0.008 * t  # closer and closer: the view narrows
    elif move == "rotation":
        shift, angle, zoom = (0.0, 0.0), 0.35 * t, 1.0
    else:  # shake
        shift, angle, zoom = rng_walk[t][:2], rng_walk[t][2], 1.0
    theta = math.radians(angle)
    linear = zoom * np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    origin = np.array([300.0, 260.0]) + np.array(shift)  # the photo point at the frame's centre
    return np.hstack([linear, (origin - linear @ centre)[:, None]])


def _render(photo: np.ndarray, affine: np.ndarray) -> np.ndarray:
    return cv2.warpAffine(photo, affine, (SIDE, SIDE), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)


def _grid() -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)
    return xs, ys


def _apply(affine: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return affine[0, 0] * xs + affine[0, 1] * ys + affine[0, 2], affine[1, 0] * xs + affine[1, 1] * ys + affine[1, 2]


def _backward(now: np.ndarray, before: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each pixel of the frame seen through `now` was in the frame seen through `before`, and if inside it."""
    xs, ys = _grid()
    px, py = _apply(now, xs, ys)
    bx, by = _apply(cv2.invertAffineTransform(before), px, py)
    inside = (bx >= 0) & (bx <= SIDE - 1) & (by >= 0) & (by <= SIDE - 1)
    return np.dstack([bx - xs, by - ys]).astype(np.float32), inside


def camera_clip(move: str, photo_index: int = 0) -> Clip:
    photo = _photo(photo_index)
    rng = np.random.default_rng(7)
    walk = np.cumsum(rng.normal(0, [1.5, 1.5, 0.25], size=(FRAMES, 3)), axis=0)
    cameras = [_camera(t, move, [tuple(step) for step in walk]) for t in range(FRAMES)]
    frames = [_render(photo, camera) for camera in cameras]
    flows, valid = [None], [None]
    for before, now in zip(cameras, cameras[1:]):
        flow, inside = _backward(now, before)
        flows.append(flow)
        valid.append(inside)
    return Clip(move, frames, flows, valid)


def object_clip() -> Clip:
    """A disc of another photo crossing a slowly panning background: occlusions, motion boundaries."""
    background = camera_clip("pan", 0)
    sprite_photo = _photo(1)
    radius = 48
    xs, ys = _grid()
    frames, flows, valid = [], [None], [None]
    centres = [(60 + 7.5 * t, 90 + 3.0 * t) for t in range(FRAMES)]
    texture_at = (sprite_photo.shape[1] // 2, sprite_photo.shape[0] // 2)
    for t, (frame, (cx, cy)) in enumerate(zip(background.frames, centres)):
        shift = np.float32([[1, 0, texture_at[0] - cx], [0, 1, texture_at[1] - cy]])  # frame -> sprite photo
        sprite = cv2.warpAffine(sprite_photo, shift, (SIDE, SIDE), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)
        distance = np.hypot(xs - cx, ys - cy)
        alpha = np.clip(radius + 0.5 - distance, 0, 1)[..., None]  # one anti-aliased pixel of rim
        frames.append((frame * (1 - alpha) + sprite * alpha).round().astype(np.uint8))
        if t:
            px, py = centres[t - 1][0] - cx, centres[t - 1][1] - cy
            flow = background.flows[t].copy()
            inside_now = distance <= radius - 1
            flow[inside_now] = (px, py)
            before_x, before_y = xs + flow[..., 0], ys + flow[..., 1]
            covered_before = np.hypot(before_x - centres[t - 1][0], before_y - centres[t - 1][1]) <= radius + 1
            rim = np.abs(distance - radius) <= 1.5
            ok = background.valid[t] & ~rim & (inside_now | ~covered_before)
            flows.append(flow)
            valid.append(ok)
    return Clip("object", frames, flows, valid, kind="object")


def cut_clip() -> Clip:
    first, second = camera_clip("pan", 2), camera_clip("pan", 3)
    half = FRAMES // 2
    return Clip(
        "cut",
        first.frames[:half] + second.frames[:half],
        first.flows[:half] + [None] + second.flows[1:half],
        first.valid[:half] + [None] + second.valid[1:half],
        kind="cut",
    )


def real_clip(path: Path, frames: int) -> Clip:
    """The first `frames` frames of a real video at SIDE px high, with motion from Farneback's dense flow."""
    pictures = []
    for frame in VideoReader(path):
        height, width = frame.image.shape[:2]
        size = (round(width * SIDE / height) // 2 * 2, SIDE)
        pictures.append(cv2.resize(frame.image, size, interpolation=cv2.INTER_AREA))
        if len(pictures) == frames:
            break
    flows, valid = [None], [None]
    for before, now in zip(pictures, pictures[1:]):
        grey = [cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in (now, before)]
        backward = cv2.calcOpticalFlowFarneback(grey[0], grey[1], None, 0.5, 4, 21, 5, 7, 1.5, 0)
        forward = cv2.calcOpticalFlowFarneback(grey[1], grey[0], None, 0.5, 4, 21, 5, 7, 1.5, 0)
        height, width = grey[0].shape
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        there = cv2.remap(forward, xs + backward[..., 0], ys + backward[..., 1], cv2.INTER_LINEAR)
        consistent = (
            np.square(backward + there).sum(axis=2)
            <= 0.01 * (np.square(backward).sum(axis=2) + np.square(there).sum(axis=2)) + 0.5
        )
        flows.append(backward)
        valid.append(consistent)
    return Clip(path.name, pictures, flows, valid, kind="real")


def at_output(flow: np.ndarray, valid: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The flow and mask of a source frame carried to an output of `shape` (an upscaler's): pixel centres map."""
    height, width = flow.shape[:2]
    scale_y, scale_x = shape[0] / height, shape[1] / width
    if (scale_y, scale_x) == (1, 1):
        return flow, valid
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    source_x, source_y = (xs + 0.5) / scale_x - 0.5, (ys + 0.5) / scale_y - 0.5
    sampled = cv2.remap(flow, source_x, source_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    carried = np.dstack([sampled[..., 0] * scale_x, sampled[..., 1] * scale_y])
    mask = cv2.remap(valid.astype(np.uint8), source_x, source_y, cv2.INTER_NEAREST) > 0
    return carried, mask


def e_warp(clip: Clip, frames: list[np.ndarray]) -> float:
    errors = []
    for index in range(1, len(frames)):
        if clip.flows[index] is None:
            continue
        flow, valid = at_output(clip.flows[index], clip.valid[index], frames[index].shape[:2])
        errors.append(warping_error(frames[index - 1], frames[index], flow, valid))
    return float(np.mean(errors))


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    error = np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2)
    return 10 * math.log10(255**2 / error) if error else math.inf


def deflickered(frames: list[np.ndarray], outputs: list[np.ndarray], strength: float) -> tuple[list, int]:
    smooth = Deflicker(strength)
    return [smooth(frame, output) for frame, output in zip(frames, outputs)], smooth.cuts


def measure(clip: Clip, outputs: list[np.ndarray]) -> dict:
    row: dict = {"clip": clip.name, "kind": clip.kind, "source": e_warp(clip, clip.frames)}
    row["per_frame"] = e_warp(clip, outputs)
    row["strengths"] = {}
    firsts = {index for index, flow in enumerate(clip.flows) if flow is None}
    row["scenes"] = len(firsts)
    for strength in STRENGTHS:
        smoothed, cuts = deflickered(clip.frames, outputs, strength)
        fidelity = [psnr(outputs[i], smoothed[i]) for i in range(len(outputs)) if i not in firsts]
        row["strengths"][str(strength)] = {
            "e_warp": e_warp(clip, smoothed),
            "psnr_mean": float(np.mean([min(value, 99.0) for value in fidelity])),
            "psnr_worst": float(min(fidelity)),
            "scene_starts": cuts,
            "scene_starts_equal_per_frame": all(np.array_equal(smoothed[i], outputs[i]) for i in firsts),
        }
    return row


def video_cost(translator: Translator, clip: Clip, rounds: int, scratch: Path) -> dict:
    """The video path (mp4 in, mp4 out, audio none) without and with --deflicker, alternated; best of `rounds`."""
    source = scratch / "clip.mp4"
    with VideoWriter(source, 25, EncodeOptions(crf=12)) as writer:
        for frame in clip.frames * 2:
            writer.write(frame)
    runs = {
        name: (
            lambda options=options: timed(
                lambda: translate_video(translator, VideoReader(source), scratch / "out.mp4", options)
            )
        )
        for name, options in (("off", EncodeOptions()), ("on", EncodeOptions(deflicker=DEFAULT_STRENGTH)))
    }
    times = {name: min(values) for name, values in best_of(rounds, runs).items()}
    return {"frames": len(clip.frames) * 2, "seconds": times, "speed_ratio": times["off"] / times["on"]}


def hd_cost(rounds: int) -> dict:
    """Milliseconds a 1920x1080 frame for the flow and blending alone, one thread, over a pan of a real photo."""
    photo = np.asarray(Image.open(sorted(NATURE.glob("*.jpg"))[0]).convert("RGB")) if NATURE.is_dir() else None
    if photo is None or photo.shape[0] < HD[0] + 40 or photo.shape[1] < HD[1] + 80:
        photo = cv2.resize(_photo(0), (HD[1] + 200, HD[0] + 100), interpolation=cv2.INTER_CUBIC)
    frames = [np.ascontiguousarray(photo[20 + t : 20 + t + HD[0], 3 * t : 3 * t + HD[1]]) for t in range(12)]
    cv2.setNumThreads(1)
    best = math.inf
    for _ in range(rounds):
        smooth = Deflicker(DEFAULT_STRENGTH)
        smooth(frames[0], frames[0])
        seconds = timed(lambda: [smooth(frame, frame) for frame in frames[1:]])
        best = min(best, seconds / (len(frames) - 1))
    cv2.setNumThreads(-1)
    return {"ms_per_frame": best * 1000, "frame": f"{HD[1]}x{HD[0]}", "threads": 1}


def strip(clip: Clip, outputs: list[np.ndarray], path: Path, first: int = 10, count: int = 5, tile: int = 160) -> None:
    """Frames `first`.. of `clip` as columns; rows: input, per-frame, deflickered, and each output's change from
    the frame before along the true motion (x4), per-frame then deflickered: what flicker looks like."""
    smoothed, _ = deflickered(clip.frames, outputs, DEFAULT_STRENGTH)

    def change(frames: list[np.ndarray], index: int) -> np.ndarray:
        flow, valid = at_output(clip.flows[index], clip.valid[index], frames[index].shape[:2])
        ys, xs = np.mgrid[0 : flow.shape[0], 0 : flow.shape[1]].astype(np.float32)
        warped = cv2.remap(frames[index - 1], xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR)
        difference = np.abs(frames[index].astype(np.int16) - warped) * 4 * valid[..., None]
        return np.clip(difference, 0, 255).astype(np.uint8)

    rows = [
        [clip.frames[i] for i in range(first, first + count)],
        [outputs[i] for i in range(first, first + count)],
        [smoothed[i] for i in range(first, first + count)],
        [change(outputs, i) for i in range(first, first + count)],
        [change(smoothed, i) for i in range(first, first + count)],
    ]
    sheet = Image.new("RGB", (count * tile, len(rows) * tile), "white")
    for row, images in enumerate(rows):
        for column, image in enumerate(images):
            picture = Image.fromarray(image).resize((tile, tile), Image.Resampling.LANCZOS)
            sheet.paste(picture, (column * tile, row * tile))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def markdown(results: dict) -> str:
    lines = [
        "### --deflicker: flicker, fidelity and cost",
        "",
        f"CPU flags: {', '.join(results['cpu_flags'])}; OpenCV {cv2.__version__}.",
        f"Default strength: {DEFAULT_STRENGTH}. E_warp in [0,1] pixel units (x 1e-4), lower is steadier; "
        "fidelity: PSNR of the deflickered frames against the per-frame ones.",
        "",
    ]
    for model in results["models"]:
        lines += [
            f"#### {model['model']} ({model['engine']})",
            "",
            "| clip | E_warp source | per-frame | deflickered | / source | / per-frame | PSNR mean | worst "
            "| scenes found (true) | scene starts = per-frame |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for row in model["clips"]:
            chosen = row["strengths"][str(DEFAULT_STRENGTH)]
            lines.append(
                f"| {row['clip']} | {row['source'] * 1e4:.2f} | {row['per_frame'] * 1e4:.2f} | "
                f"{chosen['e_warp'] * 1e4:.2f} | {chosen['e_warp'] / row['source']:.2f}x | "
                f"{chosen['e_warp'] / row['per_frame']:.2f}x | {chosen['psnr_mean']:.1f} | "
                f"{chosen['psnr_worst']:.1f} | {chosen['scene_starts']} ({row['scenes']}) | "
                f"{'yes' if chosen['scene_starts_equal_per_frame'] else 'NO'} |"
            )
        lines += ["", "Every strength tried (E_warp x 1e-4 / PSNR mean / worst):", ""]
        lines += ["| clip | " + " | ".join(str(s) for s in STRENGTHS) + " |", "| --- |" + " --- |" * len(STRENGTHS)]
        for row in model["clips"]:
            cells = [
                f"{v['e_warp'] * 1e4:.2f} / {v['psnr_mean']:.1f} / {v['psnr_worst']:.1f}"
                for v in row["strengths"].values()
            ]
            lines.append(f"| {row['clip']} | " + " | ".join(cells) + " |")
        cost = model["video"]
        lines += [
            "",
            f"Video path, {cost['frames']} frames of 256x256 mp4: {cost['seconds']['off']:.2f} s without, "
            f"{cost['seconds']['on']:.2f} s with --deflicker: {cost['speed_ratio']:.2f}x the speed.",
            "",
        ]
    hd = results["hd"]
    lines.append(f"Flow and blending alone at {hd['frame']}, one thread: {hd['ms_per_frame']:.1f} ms a frame.")
    return "\n".join(lines + ["", "Targets (issue 25), at the default strength:", "", *target_lines(results)])


def ceiling(row: dict) -> str:
    """How close to the per-frame output a flicker-free output can be, where the model adds flicker.

    If each per-frame output is a steady picture plus flicker that is new in
    every frame (variance v a pixel), E_warp is the source's plus 2v, and any
    output as steady as the source differs from the per-frame one by about v:
    PSNR <= 10 log10(2 / (E_warp per-frame - E_warp source)). When that is
    below 33 dB, the targets "as steady as the source" and ">= 33 dB" cannot both hold.
    """
    excess = row["per_frame"] - row["source"]
    if excess <= 0:
        return ""
    return f"; an output as steady as the source is at most ~{10 * math.log10(2 / excess):.1f} dB from this model's"


def target_lines(results: dict) -> list[str]:
    """Each of the issue's targets with its figure and met / NOT met."""

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines = []
    for model in results["models"]:
        for row in model["clips"]:
            chosen = row["strengths"][str(DEFAULT_STRENGTH)]
            if row["kind"] == "camera":
                over_source, over_frame = chosen["e_warp"] / row["source"], chosen["e_warp"] / row["per_frame"]
                lines.append(
                    f"- {model['model']}, {row['clip']}: E_warp {over_source:.2f}x the source's (<= 1.1x: "
                    f"{verdict(over_source <= 1.1)}), {over_frame:.2f}x the per-frame output's (<= 0.5x: "
                    f"{verdict(over_frame <= 0.5)}); fidelity {chosen['psnr_mean']:.1f} dB mean (>= 33: "
                    f"{verdict(chosen['psnr_mean'] >= 33)}), {chosen['psnr_worst']:.1f} dB worst (>= 28: "
                    f"{verdict(chosen['psnr_worst'] >= 28)})" + ceiling(row)
                )
            if row["kind"] == "cut":
                ok = chosen["scene_starts_equal_per_frame"] and chosen["scene_starts"] == row["scenes"]
                lines.append(f"- {model['model']}: the frame after the cut equals its per-frame output: {verdict(ok)}")
        ratio = model["video"]["speed_ratio"]
        speed = f"video path {ratio:.2f}x the speed without (>= 0.9x: {verdict(ratio >= 0.9)})"
        lines.append(f"- {model['model']}: {speed}")
    milliseconds = results["hd"]["ms_per_frame"]
    lines.append(f"- 1920x1080 flow and blending {milliseconds:.1f} ms a frame (<= 25: {verdict(milliseconds <= 25)})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="a gantx model (path or zoo name); repeat")
    parser.add_argument("--clip", type=Path, action="append", default=[], help="a real video; repeat")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--strip", type=Path, help="draw the first model's frames, per-frame and deflickered, here")
    args = parser.parse_args()
    started = facts()
    clips = [camera_clip(move) for move in ("pan", "zoom", "rotation", "shake")]
    clips += [object_clip(), cut_clip()] + [real_clip(path, FRAMES) for path in args.clip]
    results: dict = {"machine": started, "cpu_flags": speed_flags(), "strengths": STRENGTHS, "models": []}
    results["default_strength"] = DEFAULT_STRENGTH
    with tempfile.TemporaryDirectory() as scratch:
        for model in args.model:
            translator = Translator(model)
            outputs = [translator.translate(clip.frames) for clip in clips]
            rows = [measure(clip, output) for clip, output in zip(clips, outputs)]
            if args.strip and model == args.model[0]:
                strip(clips[0], outputs[0], args.strip)
            video = video_cost(translator, clips[0], args.rounds, Path(scratch))
            results["models"].append({"model": model, "engine": translator.engine, "clips": rows, "video": video})
    results["hd"] = hd_cost(args.rounds)
    write_results("deflicker", results, markdown(results))


if __name__ == "__main__":
    main()
