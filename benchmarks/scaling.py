"""How time per image scales with image size and batch size, and how close it runs to the hardware's limit.

    flock /tmp/gantx-cpu.lock python benchmarks/scaling.py

The ResNet-9 generator is fully convolutional, so its work grows with the
pixel count: GMACs per image are counted by PyTorch's FlopCounterMode on the
reference module (multiply-accumulates = FLOPs / 2; convolutions and transposed
convolutions, which are nearly all of it). The machine's fp32 limit is measured,
not looked up: the best of numpy and PyTorch multiplying 2048x2048 fp32
matrices on all cores. "Of peak" is the model's achieved FLOP/s (2 x GMACs x
images/s) over that. Times come from `gantx.bench.bench_models` (the runtime's
own call, random inputs, CPU). Results: benchmarks/results/scaling.{json,md}.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from common import facts, reference_generator, resnet9_files, write_results
from torch.utils.flop_counter import FlopCounterMode

from gantx import Translator
from gantx.bench import bench_models

SIZES = (128, 256, 512, 1024)
BATCH_SWEEP = {128: (1, 2, 4, 8), 256: (1, 2, 4, 8)}
ITERS = {128: 3, 256: 3, 512: 2, 1024: 1}


def matmul_peak_gflops(n: int = 2048, reps: int = 5) -> dict[str, float]:
    """Best fp32 GFLOP/s of an n x n matrix product, numpy and PyTorch, all cores."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    results = {}
    for name, multiply in (("numpy", lambda: a @ b), ("torch", lambda: torch.mm(ta, tb))):
        multiply()
        best = float("inf")
        for _ in range(reps):
            started = time.perf_counter()
            multiply()
            best = min(best, time.perf_counter() - started)
        results[name] = 2 * n**3 / best / 1e9
    return results


def gmacs_per_image(size: int) -> float:
    module = reference_generator()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(torch.zeros(1, 3, size, size))
    return counter.get_total_flops() / 2 / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    start = facts()
    _, model = resnet9_files()
    translator = Translator(model, provider="cpu")
    peaks = matmul_peak_gflops()
    peak = max(peaks.values())

    rows, records = [], []
    configs = [(size, 1) for size in SIZES] + [
        (size, batch) for size, batches in BATCH_SWEEP.items() for batch in batches if batch > 1
    ]
    gmacs = {size: gmacs_per_image(size) for size in SIZES}
    for size, batch in sorted(configs):
        translator.settings = translator.settings.replace(batch_size=batch)
        (result,) = bench_models([translator], ["resnet9"], batch, (size, size), warmup=1, iters=ITERS[size])
        ms_per_image = 1000 / result.images_per_s
        achieved = 2 * gmacs[size] * result.images_per_s
        records.append(
            {
                **vars(result),
                "gmacs_per_image": gmacs[size],
                "ms_per_image": ms_per_image,
                "gflops": achieved,
                "of_peak": achieved / peak,
            }
        )
        rows.append(
            f"| {size}x{size} | {batch} | {gmacs[size]:.1f} | {ms_per_image:.0f} | {ms_per_image / gmacs[size]:.1f} | "
            f"{achieved:.1f} | {achieved / peak:.0%} | {result.peak_rss_mb:.0f} |"
        )
        print(rows[-1], flush=True)
    markdown = (
        "\n"
        "### Time per image against image size and batch size (ResNet-9, CPU, fp32)\n"
        "\n"
        f"Measured fp32 matrix-multiply peak of this machine: {peak:.1f} GFLOP/s "
        f"(numpy {peaks['numpy']:.1f}, PyTorch {peaks['torch']:.1f}; 2048x2048).\n"
        "\n"
        "| size | batch | GMACs / image | ms / image | ms / GMAC | GFLOP/s | of peak | peak MB |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        f"{chr(10).join(rows)}\n"
        "\n"
    )
    write_results(
        "scaling", {"machine": start, "matmul_peak_gflops": peaks, "peak_gflops": peak, "results": records}, markdown
    )


if __name__ == "__main__":
    main()
