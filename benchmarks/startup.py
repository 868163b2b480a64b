"""Start-up: would caching ONNX Runtime's optimised graph pay? Opening a model against opening its pre-optimised graph.

    flock /tmp/gantx-cpu.lock python benchmarks/startup.py [--rounds 7]

For the ResNet-9 at 256x256 and each zoo model, two ways to start a CPU
session and run the first image, alternated round by round:
- "optimise": the model at graph optimisation level ALL (what gantx does);
- "cached": the graph ONNX Runtime wrote after optimising it
  (`SessionOptions.optimized_model_filepath`), opened with optimisation off,
  which is what a cache of optimised graphs would do on every later start.
The median of each counts. gantx 0.1 kept such a cache beside users' models;
this is the measurement behind dropping it. Results: benchmarks/results/startup.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from common import SIZE, facts, resnet9_files, write_results

from gantx.model import ModelInfo
from gantx.session import session_options
from gantx.zoo import bundled_models

ALL, NONE = ort.GraphOptimizationLevel.ORT_ENABLE_ALL, ort.GraphOptimizationLevel.ORT_DISABLE_ALL


def feeds(session: ort.InferenceSession, info: ModelInfo) -> dict[str, np.ndarray]:
    """One input at the model's size (256x256 for a fully convolutional model)."""
    if info.kind == "noise2image":
        inputs = {"z": np.zeros((1, info.latent_dim), np.float32)}
        return {**inputs, "label": np.zeros(1, np.int64)} if info.conditional else inputs
    height, width = (SIZE, SIZE) if info.size_multiple else info.size
    return {"input": np.zeros((1, info.channels_in, height, width), np.float32)}


def start(path: Path, level: ort.GraphOptimizationLevel, info: ModelInfo) -> tuple[float, float]:
    """Seconds to open a session, and to open it and run one input."""
    began = time.perf_counter()
    session = ort.InferenceSession(str(path), session_options(None, level), providers=["CPUExecutionProvider"])
    opened = time.perf_counter()
    session.run(None, feeds(session, info))
    return opened - began, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    machine = facts()
    models = {"resnet9 (256x256)": resnet9_files()[1], **bundled_models()}
    rows, data = [], {}
    with tempfile.TemporaryDirectory(prefix="gantx-startup-") as scratch:
        for name, path in models.items():
            options = session_options(None, ALL)
            options.optimized_model_filepath = str(Path(scratch) / f"{path.stem}.optimised.onnx")
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            info = ModelInfo.from_metadata(session.get_modelmeta().custom_metadata_map)
            cached = Path(options.optimized_model_filepath)
            times = {"optimise": [], "cached": []}
            for _ in range(args.rounds):
                times["optimise"].append(start(path, ALL, info))
                times["cached"].append(start(cached, NONE, info))
            median = {
                way: [statistics.median(run[k] for run in runs) * 1000 for k in (0, 1)] for way, runs in times.items()
            }
            saved = median["optimise"][1] - median["cached"][1]
            data[name] = {"megabytes": path.stat().st_size / 1e6, "median_ms": median, "saved_ms": saved}
            rows.append(
                f"| {name} | {path.stat().st_size / 1e6:.1f} | {median['optimise'][0]:.0f} | {median['cached'][0]:.0f} "
                f"| {median['optimise'][1]:.0f} | {median['cached'][1]:.0f} "
                f"| {saved:.0f} ({saved / median['optimise'][1]:.0%}) |"
            )
    table = "\n".join(
        [
            "| model | MB | open, optimising (ms) | open, cached graph (ms) "
            "| open + first image, optimising (ms) | open + first image, cached (ms) | saved by a cache (ms) |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            *rows,
        ]
    )
    write_results("startup", {"machine": machine, "rounds": args.rounds, "models": data}, table)


if __name__ == "__main__":
    main()
