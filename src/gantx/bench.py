"""Measure models: latency and throughput per provider and batch size, peak memory, and what I/O costs.

`bench_models` times models alone, exactly as the runtime calls them
(`Translator.run_batch`), each timed call of one model followed by one of the
next, so load on a shared machine hits all alike and their ratios hold;
`bench_folder` times the whole folder path (decode, prepare, model, finish,
encode) beside the model alone on the same images. The JSON that `gantx bench
--json` writes is described in docs/bench-json.md.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gantx import __version__, openvino_engine
from gantx.cpu_info import cpu_flags, cpu_name
from gantx.errors import GantxError
from gantx.extras import ort
from gantx.images import max_pixels, open_image
from gantx.inputs import FileJob, collect_sources, plan_jobs
from gantx.pipeline import translate_files
from gantx.settings import SizeSpec
from gantx.timing import time_in_turn
from gantx.translator import Translator, resolve_size

SCHEMA = 2  # 2: precision in rows and settings (was settings.fp16)
AUTO_SIDE = 512  # --size auto for a fully convolutional model: AUTO_SIDE x AUTO_SIDE
STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak_memory() -> bool:
    """Start a new peak-RSS measurement (Linux: clear_refs 5); False where only the process-wide peak exists."""
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_memory_mb() -> float:
    """Peak resident memory since the last reset (Linux VmHWM), else of the whole process."""
    with contextlib.suppress(OSError):
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB elsewhere


INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # x86 instructions that make int8 convolutions pay


def int8_instructions() -> list[str]:
    """The int8 dot-product instructions this CPU has (Linux x86: /proc/cpuinfo; ARM's dot product is not read)."""
    flags = cpu_flags()
    return [flag for flag in INT8_FLAGS if flag in flags]


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    return {
        "cpu": cpu_name(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "openvino": openvino_engine.version() if openvino_engine.installed() else None,
        "providers_available": ort.get_available_providers(),
        "int8_instructions": int8_instructions(),
        "gantx": __version__,
    }


@dataclass
class ModelResult:
    """The model alone: one configuration, `iters` timed batches after `warmup` untimed ones."""

    model: str  # the model as named on the command line
    provider: str  # the provider that ran, e.g. CPUExecutionProvider or OpenVINO
    requested: str  # what was asked for: auto, cpu, cuda, tensorrt or openvino
    precision: str  # what it computed at: fp32, fp16, bf16 or int8
    batch_size: int
    height: int
    width: int
    latency_ms: dict[str, float]  # per batch: p50, p90, p99, mean
    images_per_s: float
    relative_to_first: float  # images_per_s / that of the first model timed beside it
    peak_rss_mb: float
    iters: int
    warmup: int


@dataclass
class FolderResult:
    """The folder path end to end beside the model alone on the same images."""

    model: str
    provider: str
    requested: str
    precision: str
    folder: str
    images: int
    failed: int
    batch_size: int
    images_per_s: float  # decode -> prepare -> model -> finish -> encode, files written
    model_images_per_s: float  # the model alone on the same prepared batches
    ratio: float  # images_per_s / model_images_per_s
    peak_rss_mb: float


@dataclass
class BenchReport:
    """What `gantx bench --json` writes (docs/bench-json.md): the machine, the settings and every result."""

    model: str  # the first model (the one the others are compared with)
    models: list[str]
    machine: dict[str, object] = field(default_factory=machine)
    settings: dict[str, object] = field(default_factory=dict)
    results: list[ModelResult] = field(default_factory=list)
    end_to_end: list[FolderResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"schema": SCHEMA, **asdict(self)}


def model_size(translator: Translator, size: SizeSpec = "auto") -> tuple[int, int]:
    """The H, W to bench at: `size` applied to the model's own size; refused where the model cannot take it or
    it is over the pixel limit.

    auto is a fixed-size model's own size, and AUTO_SIDE square (up to the
    model's multiple) for a fully convolutional one: the size its metadata
    gives is only its training crop (48x48 for photo-upscale2x), too small to
    say how fast it runs on photos.
    """
    info = translator.info
    if size == "auto" and info.size_multiple > 0:
        side = -(-AUTO_SIDE // info.size_multiple) * info.size_multiple
        size = (side, side)
    height, width = resolve_size(size, info.size)
    if info.size_multiple == 0 and (height, width) != info.size:
        raise GantxError(f"--size {height}x{width}: this model only takes {info.size[0]}x{info.size[1]}")
    if info.size_multiple > 0 and (height % info.size_multiple or width % info.size_multiple):
        raise GantxError(f"--size {height}x{width}: this model needs multiples of {info.size_multiple}")
    if height * width > max_pixels():
        raise GantxError(f"--size {height}x{width}: over the limit of {max_pixels():,} pixels")
    return height, width


def bench_models(
    translators: Sequence[Translator],
    names: Sequence[str],
    batch_size: int,
    size: SizeSpec = "auto",
    warmup: int = 3,
    iters: int = 20,
) -> list[ModelResult]:
    """Time `iters` batches of `batch_size` random images per model, models in turn, after `warmup` untimed ones each.

    Each model's peak memory is read over its untimed calls (at least one),
    which run alone. A translator is a model on one engine at one precision:
    the same model on several engines is timed like several models.
    """
    if warmup < 0 or iters < 1:
        raise GantxError(f"--warmup {warmup} / --iters {iters}: need warmup >= 0 and iters >= 1")
    rng = np.random.default_rng(0)
    batches, peaks = [], []
    for translator in translators:
        height, width = model_size(translator, size)
        batch = rng.uniform(-1, 1, (batch_size, translator.info.channels_in, height, width)).astype(np.float32)
        reset_peak_memory()
        for _ in range(max(warmup, 1)):
            translator.run_batch(batch)
        batches.append(batch)
        peaks.append(peak_memory_mb())
    runs = [functools.partial(translator.run_batch, batch) for translator, batch in zip(translators, batches)]
    times = time_in_turn(runs, iters)
    results = []
    for name, translator, batch, spent, peak in zip(names, translators, batches, times, peaks):
        latency = np.array(spent) * 1000
        summary = {f"p{q}": float(np.percentile(latency, q)) for q in (50, 90, 99)}
        summary["mean"] = float(latency.mean())
        images_per_s = batch_size * iters / sum(spent)
        _, _, height, width = batch.shape
        results.append(
            ModelResult(
                name,
                translator.providers[0],
                translator.settings.provider,
                translator.session.precision,
                batch_size,
                height,
                width,
                summary,
                images_per_s,
                1.0,
                peak,
                iters,
                warmup,
            )
        )
    for result in results:
        result.relative_to_first = result.images_per_s / results[0].images_per_s
    return results


def bench_folder(
    translator: Translator, name: str, folder: Path, workers: int | None = None, repeats: int = 1
) -> FolderResult:
    """Translate every image in `folder` into a scratch folder, then run the model alone on the same batches.

    Images are sized by the translator's size policy, as `gantx translate`
    would size them. With `repeats` > 1 both are timed that many times and the
    best of each kept, which is what a quiet machine would show.
    """
    failed: dict[Path, str] = {}  # source -> why it failed

    def report(job: FileJob, error: str | None) -> None:
        if error is not None:
            failed[job.source] = error

    with tempfile.TemporaryDirectory(prefix="gantx-bench-") as scratch:
        sources = collect_sources([str(folder)], Path(scratch))
        if not sources:
            raise GantxError(f"--end-to-end {folder}: no images in it")
        path_seconds = model_seconds = float("inf")
        reset_peak_memory()
        for repeat in range(repeats):
            jobs = plan_jobs(sources, Path(scratch) / str(repeat), "same", single_file=False)
            started = time.perf_counter()
            translate_files(translator, jobs, report, workers)
            path_seconds = min(path_seconds, time.perf_counter() - started)
            model_seconds = min(model_seconds, _model_alone(translator, [source for source, _ in sources]))
    done = len(sources) - len(failed)
    if not done:
        raise GantxError(
            f"--end-to-end {folder}: none of its {len(sources)} images could be translated "
            f"({next(iter(failed.values()))})"
        )
    path_rate, model_rate = done / path_seconds, done / model_seconds
    return FolderResult(
        name,
        translator.providers[0],
        translator.settings.provider,
        translator.session.precision,
        str(folder),
        done,
        len(failed),
        translator.settings.batch_size,
        path_rate,
        model_rate,
        path_rate / model_rate,
        peak_memory_mb(),
    )


def _model_alone(translator: Translator, paths: Sequence[Path]) -> float:
    """Seconds the model needs for `paths` in the pipeline's batches; preparing them is not timed."""
    elapsed = 0.0
    batch = translator.settings.batch_size
    for start in range(0, len(paths), batch):
        prepared = []
        for path in paths[start : start + batch]:
            with contextlib.suppress(GantxError):
                prepared.append(translator.prepare(open_image(path)))
        began = time.perf_counter()
        translator.infer(prepared)
        elapsed += time.perf_counter() - began
    return elapsed
