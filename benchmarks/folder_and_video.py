"""The folder path and the video path end to end, against the model alone on the same inputs.

    flock /tmp/gantx-cpu.lock python benchmarks/folder_and_video.py \
        [--images 16] [--frames 16] [--batch-size 4] [--rounds 2]

Folder: real photo crops (256x256 JPEG) translated by the same code as
`gantx translate DIR` (decode, prepare, model, finish, encode, files written);
video: an H.264 + AAC clip of real photo frames translated as `gantx translate
clip.mp4` does it (decode thread, model, encoder thread, audio copied). The
model alone runs the same prepared batches with nothing else. The two are
timed round-robin and the best round of each kept. Target: both paths at least
90% of the model alone. Results: benchmarks/results/folder_and_video.{json,md}.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from common import ROOT, SIZE, best_of, facts, real_crops, resnet9_files, timed, write_results

from gantx import Translator
from gantx.bench import bench_folder
from gantx.video import VideoReader, VideoWriter, translate_video

SPEECH = ROOT / "tests" / "data" / "speech.flac"


def make_clip(path: Path, frames: list[np.ndarray], rate: int = 10) -> Path:
    """H.264 video of `frames` with real speech as AAC, written with gantx's own writer."""
    import av

    speech = path.with_name("speech.m4a")
    with av.open(str(speech), "w") as container, av.open(str(SPEECH)) as source:
        stream = container.add_stream("aac", rate=16000)
        for frame in source.decode(audio=0):
            frame.pts = None
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with VideoWriter(path, rate, audio_from=speech) as writer:
        for frame in frames:
            writer.write(frame)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--provider", default="cpu", help="cpu (ONNX Runtime) or openvino; --precision as gantx's")
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()
    start = facts()
    _, model = resnet9_files()
    translator = Translator(model, provider=args.provider, precision=args.precision, batch_size=args.batch_size)

    with tempfile.TemporaryDirectory(prefix="gantx-bench-") as scratch:
        folder = Path(scratch) / "photos"
        folder.mkdir()
        for index, crop in enumerate(real_crops(args.images, SIZE, seed=1)):
            crop.save(folder / f"{index:04d}.jpg", quality=95)
        translator.infer([translator.prepare(np.zeros((SIZE, SIZE, 3), np.uint8))])  # warm-up
        folder_result = bench_folder(translator, "resnet9", folder, repeats=args.rounds)

        clip = make_clip(
            Path(scratch) / "clip.mp4", [np.asarray(crop) for crop in real_crops(args.frames, SIZE, seed=2)]
        )
        prepared = [translator.prepare(frame.image) for frame in VideoReader(clip)]
        times = best_of(
            args.rounds,
            {
                "video path": lambda: timed(
                    lambda: translate_video(translator, VideoReader(clip), Path(scratch) / "out.mp4")
                ),
                "model alone": lambda: timed(lambda: translator.infer(prepared)),
            },
        )
    video_rate = {name: args.frames / min(values) for name, values in times.items()}
    video_ratio = video_rate["video path"] / video_rate["model alone"]
    folder_ratio = folder_result.ratio

    markdown = (
        "\n"
        "### Folder and video paths against the model alone "
        f"(ResNet-9, 256x256, batch {args.batch_size}, {translator.engine} on the CPU)\n"
        "\n"
        "| path | inputs | path images/s | model alone images/s | path / model |\n"
        "| --- | --- | --- | --- | --- |\n"
        f"| folder (JPEG in, JPEG out) | {folder_result.images} images | {folder_result.images_per_s:.3f} "
        f"| {folder_result.model_images_per_s:.3f} | {folder_ratio:.1%} |\n"
        f"| video (H.264 + AAC in, H.264 + copied AAC out) | {args.frames} frames "
        f"| {video_rate['video path']:.3f} | {video_rate['model alone']:.3f} | {video_ratio:.1%} |\n"
        "\n"
        f"Target: each path at least 90% of the model alone: folder {'met' if folder_ratio >= 0.9 else 'NOT met'}, "
        f"video {'met' if video_ratio >= 0.9 else 'NOT met'}.\n"
    )
    write_results(
        "folder_and_video" + ("" if args.provider == "cpu" else f"-{args.provider}"),
        {
            "machine": start,
            "batch_size": args.batch_size,
            "rounds": args.rounds,
            "engine": translator.engine,
            "folder": vars(folder_result),
            "video": {
                "frames": args.frames,
                "seconds_per_round": times,
                "images_per_s": video_rate,
                "ratio": video_ratio,
            },
            "targets": {"path_vs_model_min": 0.9},
        },
        markdown,
    )


if __name__ == "__main__":
    main()
