"""The model alone: the gantx runtime against a bare ONNX Runtime loop and the PyTorch reference.

    flock /tmp/gantx-cpu.lock python benchmarks/model_alone.py [--rounds 3] [--images 8]

All three run the CycleGAN ResNet-9 generator at 256x256 on the same real
photo crops, on the CPU:
- gantx: `Translator(model, provider="cpu", batch_size=b).infer(prepared)` (pre- and
  post-processing not timed: that is the folder benchmark's job);
- bare ONNX Runtime: `InferenceSession(model).run` over ready-made batches,
  default session options;
- PyTorch reference: the generator in eager mode under `torch.no_grad()`, one
  image at a time (batch 1), the way the reference CycleGAN test script runs it.
Each round times every configuration once, round-robin, and the best round of
each counts (other work on a shared machine only ever slows a run down).
Targets on this 2-core machine: gantx within 5% of bare ONNX Runtime,
and at least 1.2x the PyTorch reference. Results: benchmarks/results/model_alone.{json,md}.
"""

from __future__ import annotations

import argparse

import numpy as np
import onnxruntime as ort
import torch
from common import SIZE, best_of, facts, real_crops, reference_generator, resnet9_files, timed, write_results

from gantx import Translator

BATCH_SIZES = (1, 4, 8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=8, help="images per timed run (a multiple of every batch size)")
    args = parser.parse_args()
    start = facts()
    pth, model = resnet9_files()
    photos = [np.asarray(photo) for photo in real_crops(args.images, SIZE)]

    translators = {size: Translator(model, provider="cpu", batch_size=size) for size in BATCH_SIZES}
    prepared = [translators[1].prepare(photo) for photo in photos]
    tensors = [item.tensor for item in prepared]
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    batches = {size: [np.stack(tensors[i : i + size]) for i in range(0, len(tensors), size)] for size in BATCH_SIZES}
    reference = reference_generator()
    reference.load_state_dict(torch.load(pth, weights_only=True))
    inputs = [torch.from_numpy(tensor)[None] for tensor in tensors]

    def torch_eager() -> None:
        with torch.no_grad():
            for image in inputs:
                reference(image)

    runs = {}
    for size in BATCH_SIZES:
        runs[f"gantx b{size}"] = lambda size=size: timed(lambda: translators[size].infer(prepared))
        runs[f"onnxruntime b{size}"] = lambda size=size: timed(
            lambda: [session.run(None, {"input": batch}) for batch in batches[size]]
        )
    runs["pytorch eager b1"] = lambda: timed(torch_eager)
    best_of(1, runs)  # warm-up: first runs allocate and tune
    times = best_of(args.rounds, runs)

    per_image = {name: min(values) / args.images for name, values in times.items()}
    rate = {name: 1 / seconds for name, seconds in per_image.items()}
    vs_bare = {size: rate[f"gantx b{size}"] / rate[f"onnxruntime b{size}"] for size in BATCH_SIZES}
    best_gantx = max((f"gantx b{size}" for size in BATCH_SIZES), key=rate.get)
    vs_torch_b1 = rate["gantx b1"] / rate["pytorch eager b1"]
    vs_torch_best = rate[best_gantx] / rate["pytorch eager b1"]

    rows = "\n".join(
        f"| {name} | {per_image[name] * 1000:.0f} | {rate[name]:.3f} "
        f"| {' / '.join(f'{value:.2f}' for value in times[name])} |"
        for name in runs
    )
    within = min(vs_bare.values())
    markdown = (
        "\n"
        "### The model alone: CycleGAN ResNet-9 generator, 256x256, CPU\n"
        "\n"
        f"| runtime, batch | ms / image | images / s | seconds per {args.images} images, each round |\n"
        "| --- | --- | --- | --- |\n"
        f"{rows}\n"
        "\n"
        "- gantx / bare ONNX Runtime, images/s: "
        f"{', '.join(f'b{size} {ratio:.3f}' for size, ratio in vs_bare.items())} "
        f"(target >= 0.95: {'met' if within >= 0.95 else 'NOT met'})\n"
        f"- gantx / PyTorch eager batch 1: {vs_torch_b1:.2f}x at batch 1, "
        f"{vs_torch_best:.2f}x at gantx's best ({best_gantx}) "
        f"(target >= 1.2x: {'met' if vs_torch_best >= 1.2 else 'NOT met'})\n"
    )
    write_results(
        "model_alone",
        {
            "machine": start,
            "model": {"arch": "resnet_9blocks", "size": [SIZE, SIZE], "file": str(model)},
            "images_per_run": args.images,
            "rounds": args.rounds,
            "seconds_per_run": times,
            "ms_per_image": {name: seconds * 1000 for name, seconds in per_image.items()},
            "images_per_s": rate,
            "gantx_vs_onnxruntime": {f"b{size}": ratio for size, ratio in vs_bare.items()},
            "gantx_vs_pytorch_b1": {"batch_1": vs_torch_b1, "best": vs_torch_best, "best_config": best_gantx},
            "targets": {"gantx_vs_onnxruntime_min": 0.95, "gantx_vs_pytorch_min": 1.2},
        },
        markdown,
    )


if __name__ == "__main__":
    main()
