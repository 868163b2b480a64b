"""Peak memory of `gantx translate` on a 2,000-image folder against a 200-image one.

    flock /tmp/gantx-cpu.lock python benchmarks/memory.py [--images 2000] [--size 64]

Both folders hold real photo crops (JPEG); the larger one is ten times the
smaller. Each run is a fresh `gantx translate DIR -m resnet9.onnx -o OUT`
process, and its peak resident memory is what the kernel reports for it
(wait4 ru_maxrss). The images are small so that 2,000 of them take minutes,
not hours, with the real ResNet-9 generator: what is measured is whether the
pipeline's memory grows with the number of files, which does not depend on
their size. Target: the 2,000-image peak within 10% of the 200-image peak.
Results: benchmarks/results/memory.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import facts, real_crops, resnet9_files, write_results

CLI = "from gantx.cli import main; main()"


def translate(folder: Path, output: Path, model: Path, batch_size: int) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of one `gantx translate` process."""
    command = [
        sys.executable,
        "-c",
        CLI,
        "translate",
        str(folder),
        "-m",
        str(model),
        "-o",
        str(output),
        "-b",
        str(batch_size),
        "-p",
        "cpu",
    ]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    summary = process.stdout.read().strip()
    process.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"gantx translate failed on {folder}: {summary}")
    print(f"{folder.name}: {summary}", flush=True)
    return usage.ru_maxrss / 1024, elapsed  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    start = facts()
    _, model = resnet9_files()
    small_count = args.images // 10
    with tempfile.TemporaryDirectory(prefix="gantx-memory-") as scratch:
        large, small = Path(scratch) / f"{args.images}-images", Path(scratch) / f"{small_count}-images"
        large.mkdir()
        small.mkdir()
        for index, crop in enumerate(real_crops(args.images, args.size, seed=3)):
            crop.save(large / f"{index:05d}.jpg", quality=90)
            if index < small_count:
                crop.save(small / f"{index:05d}.jpg", quality=90)
        runs = {}
        for folder in (small, large):
            runs[folder.name] = translate(folder, Path(scratch) / f"out-{folder.name}", model, args.batch_size)
    (small_peak, small_time), (large_peak, large_time) = runs[small.name], runs[large.name]
    ratio = large_peak / small_peak
    markdown = (
        "\n"
        "### Peak memory of `gantx translate` against folder size "
        f"(ResNet-9, {args.size}x{args.size} JPEG photo crops, batch {args.batch_size}, CPU)\n"
        "\n"
        "| folder | peak RSS MB | seconds | images / s |\n"
        "| --- | --- | --- | --- |\n"
        f"| {small_count} images | {small_peak:.0f} | {small_time:.0f} | {small_count / small_time:.1f} |\n"
        f"| {args.images} images | {large_peak:.0f} | {large_time:.0f} | {args.images / large_time:.1f} |\n"
        "\n"
        f"{args.images} / {small_count} images: peak memory x{ratio:.3f} "
        f"(target <= 1.10: {'met' if ratio <= 1.10 else 'NOT met'}).\n"
    )
    write_results(
        "memory",
        {
            "machine": start,
            "image_size": args.size,
            "batch_size": args.batch_size,
            "runs": {name: {"peak_rss_mb": peak, "seconds": seconds} for name, (peak, seconds) in runs.items()},
            "ratio": ratio,
            "target_max_ratio": 1.10,
        },
        markdown,
    )


if __name__ == "__main__":
    main()
