"""Choosing ONNX Runtime execution providers, configuring them, and opening sessions.

Sessions run at graph optimisation level ALL. Optimised graphs are not cached:
on this project's CPU that would save 37 ms of a ResNet-9's 0.64 s first image
(5 ms or less for the zoo's models) while writing 45 MB per model
(benchmarks/results/startup.md). GPU
sessions get IO binding (one copy to the device and one back per batch) and, on
request, CUDA graphs; TensorRT gets fp16, engine and timing caches in the user
cache folder (an engine build takes minutes; the folder is kept under
GANTX_CACHE_MAX_MB, `gantx cache` shows and clears it), and the optimisation
profile that a static export records in `gantx.profile`.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import onnxruntime as ort
import platformdirs

from gantx.errors import ModelError, ProviderError, first_line
from gantx.model import ModelInfo, Shape
from gantx.settings import RunSettings
from gantx.zoo import bundled_models, data_file, resolve_model

log = logging.getLogger("gantx")

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
PROVIDER_CHOICES = ("auto", *PROVIDERS)
# GPU providers hand the ops they lack to the next in line, so each chain ends on the CPU.
CHAINS = {
    "auto": ("tensorrt", "cuda", "cpu"),
    "tensorrt": ("tensorrt", "cuda", "cpu"),
    "cuda": ("cuda", "cpu"),
    "cpu": ("cpu",),
}
GPU_PROVIDERS = (PROVIDERS["tensorrt"], PROVIDERS["cuda"])
DEFAULT_CACHE_MAX_MB = 4096
_notified: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()  # (providers that failed, options ignored) already announced
_notified_lock = threading.Lock()


def plan_providers(requested: str, available: Sequence[str]) -> list[str]:
    """The provider chain to ask ONNX Runtime for, given what this build lists."""
    if requested not in CHAINS:
        raise ProviderError(f"unknown provider {requested!r}: choose one of {', '.join(PROVIDER_CHOICES)}")
    if requested != "auto" and PROVIDERS[requested] not in available:
        raise ProviderError(
            f"provider {requested!r} is not in this onnxruntime build (it lists {', '.join(available)})"
            + ("; install onnxruntime-gpu" if requested != "cpu" else "")
        )
    return [PROVIDERS[name] for name in CHAINS[requested] if PROVIDERS[name] in available]


def cache_dir() -> Path:
    """The user cache folder (TensorRT engines, benchmark models); GANTX_CACHE_DIR overrides it."""
    return Path(os.environ.get("GANTX_CACHE_DIR") or platformdirs.user_cache_dir("gantx"))


def cache_limit_bytes() -> int:
    """How large the cache folder may grow before its least recently used files go (GANTX_CACHE_MAX_MB)."""
    text = os.environ.get("GANTX_CACHE_MAX_MB", str(DEFAULT_CACHE_MAX_MB))
    try:
        return int(float(text) * 1e6)
    except ValueError:
        raise ProviderError(f"GANTX_CACHE_MAX_MB={text!r}: expected a number of megabytes") from None


def cache_files(folder: Path | None = None) -> list[Path]:
    folder = folder or cache_dir()
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else []


def prune_cache(limit: int, folder: Path | None = None) -> list[Path]:
    """Delete the least recently used files until the cache folder holds at most `limit` bytes; returns what went."""
    files = sorted(cache_files(folder), key=lambda path: max(path.stat().st_atime, path.stat().st_mtime))
    total = sum(path.stat().st_size for path in files)
    removed = []
    for path in files:
        if total <= limit:
            break
        total -= path.stat().st_size
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def tensorrt_profile(profile: Sequence[Shape]) -> dict[str, str]:
    """A static export's min, opt and max input shapes -> TensorRT provider options for the `input` tensor."""
    keys = ("trt_profile_min_shapes", "trt_profile_opt_shapes", "trt_profile_max_shapes")
    return {key: "input:" + "x".join(map(str, shape)) for key, shape in zip(keys, profile)}


def provider_options(name: str, info: ModelInfo | None, fp16: bool, cuda_graph: bool) -> dict[str, str]:
    """ONNX Runtime options for one provider of the chain."""
    if name == PROVIDERS["tensorrt"]:
        folder = cache_dir() / "tensorrt"
        folder.mkdir(parents=True, exist_ok=True)
        prune_cache(cache_limit_bytes())
        options = {
            "trt_fp16_enable": "1" if fp16 else "0",
            "trt_engine_cache_enable": "1",
            "trt_engine_cache_path": str(folder),
            "trt_timing_cache_enable": "1",
            "trt_timing_cache_path": str(folder),
        }
        if cuda_graph:
            options["trt_cuda_graph_enable"] = "1"
        if info is not None and info.profile:
            options.update(tensorrt_profile(info.profile))
        return options
    if name == PROVIDERS["cuda"] and cuda_graph:
        return {"enable_cuda_graph": "1"}
    return {}


@contextlib.contextmanager
def _quiet_onnxruntime():
    """ORT prints a banner and C++ errors when a GPU provider fails to load; gantx reports that itself."""
    ort.set_default_logger_severity(4)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        ort.set_default_logger_severity(3)


def session_options(threads: int | None, level: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL) -> ort.SessionOptions:
    """Level ALL; intra-op threads = `threads`, else ONNX Runtime's own choice (one per physical core)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1  # generators are a chain of layers: nothing runs beside each other
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    return options


def _create(path: Path, options: ort.SessionOptions, providers: list) -> ort.InferenceSession:
    try:
        with _quiet_onnxruntime():
            return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as error:  # ORT raises bare RuntimeError/InvalidGraph/Fail subclasses
        if "INVALID_PROTOBUF" in str(error) or "Protobuf parsing failed" in str(error):
            raise ModelError(f"{path}: not an ONNX model (its bytes do not parse as one)") from None
        raise ModelError(f"cannot load model {path}: {first_line(error)}") from None


def find_model(model: str | os.PathLike[str]) -> Path:
    """The file `model` names (a path or a bundled model's name); ModelError when there is none."""
    path = resolve_model(model)
    if not path.is_file():
        known = ", ".join(bundled_models())
        raise ModelError(f"model not found: {path} (neither a file nor a bundled model: {known})")
    return path


def read_info(path: Path) -> ModelInfo:
    """The model's contract without optimising the graph (TensorRT needs its profile before it starts)."""
    session = _create(path, session_options(1, ort.GraphOptimizationLevel.ORT_DISABLE_ALL), [PROVIDERS["cpu"]])
    return ModelInfo.from_metadata(session.get_modelmeta().custom_metadata_map, source=str(path))


@functools.cache
def providers_that_start() -> tuple[str, ...]:
    """The providers of this build that actually start here, each tried once per process on a one-node graph."""
    started = []
    for name in ort.get_available_providers():
        with contextlib.suppress(Exception), _quiet_onnxruntime():
            session = ort.InferenceSession(str(data_file("probe.onnx")), session_options(1), providers=[name])
            if name in session.get_providers():
                started.append(name)
    return tuple(started)


def nvidia_driver_loaded() -> bool:
    """Whether this machine has an NVIDIA driver; Linux shows it as /proc/driver/nvidia, elsewhere gantx assumes one."""
    return not sys.platform.startswith("linux") or Path("/proc/driver/nvidia").exists()


def _notify_fallback(failed: list[str], active: str, ignored: list[str]) -> None:
    """Say once per process that GPU providers could not start, however many sessions find it out.

    Without an NVIDIA driver the CPU is the only place to run, so that is
    logged at info level; a warning where a GPU should have started, or where
    fp16 or CUDA graphs were asked for and are ignored (said once more for a
    session that asks for them after the plain notice).
    """
    with _notified_lock:
        if (tuple(failed), tuple(ignored)) in _notified:
            return
        _notified.add((tuple(failed), tuple(ignored)))
    level = logging.WARNING if ignored or nvidia_driver_loaded() else logging.INFO
    note = f" ({' and '.join(ignored)} ignored)" if ignored else ""
    log.log(level, "gantx: %s could not start here; running on %s%s", ", ".join(failed), active, note)


def open_session(model: str | os.PathLike[str], settings: RunSettings) -> ort.InferenceSession:
    """Open `model` on the best provider that `settings.provider` allows.

    `auto` falls back down the chain with one notice when a listed GPU provider
    cannot start (onnxruntime-gpu without CUDA); a provider asked for by name
    that cannot start is an error. `fp16` asks TensorRT for fp16 engines;
    `cuda_graph` captures CUDA graphs (fixed shapes, IO binding).
    """
    provider, fp16, cuda_graph = settings.provider, settings.fp16, settings.cuda_graph
    path = find_model(model)
    chain = plan_providers(provider, ort.get_available_providers())
    if fp16 and PROVIDERS["tensorrt"] not in chain:
        raise ProviderError("--fp16 builds TensorRT fp16 engines: use --provider tensorrt, or export an fp16 model (gantx export --fp16)")
    if cuda_graph and not set(GPU_PROVIDERS) & set(chain):
        raise ProviderError("CUDA graphs need the CUDA or TensorRT provider")
    info = read_info(path) if PROVIDERS["tensorrt"] in chain else None
    providers = [(name, provider_options(name, info, fp16, cuda_graph)) for name in chain]
    session = _create(path, session_options(settings.threads), providers)
    active = session.get_providers()
    if provider != "auto" and PROVIDERS[provider] not in active:
        raise ProviderError(
            f"provider {provider!r} is installed but could not start here (missing CUDA/cuDNN/TensorRT libraries or no GPU)"
        )
    if provider == "auto" and active[0] != chain[0]:
        failed = [name for name in chain if name not in active]
        ignored = [label for label, asked in (("fp16", fp16), ("CUDA graphs", cuda_graph)) if asked and active[0] not in GPU_PROVIDERS]
        _notify_fallback(failed, active[0], ignored)
    return session


def open_model(model: str | os.PathLike[str], settings: RunSettings) -> tuple[ort.InferenceSession, ModelInfo]:
    """Open a session and read its contract metadata; a model outside the contract is refused."""
    session = open_session(model, settings)
    return session, ModelInfo.from_metadata(session.get_modelmeta().custom_metadata_map, source=str(model))


@dataclass
class _Binding:
    binding: ort.IOBinding
    input: ort.OrtValue
    output: ort.OrtValue
    run_options: ort.RunOptions


class BoundRunner:
    """Runs `input` -> `output` through IO binding with buffers kept on `device`, one set per input shape.

    Each batch is copied into device memory once and read back once. With
    `graphs`, each shape gets its own CUDA graph id, so after the first batch of
    a shape ONNX Runtime replays the captured graph (buffers keep their
    addresses, which graphs require). The lock makes one runner safe to share.
    """

    def __init__(self, session: ort.InferenceSession, device: str = "cuda", graphs: bool = False) -> None:
        self.session, self.device, self.graphs = session, device, graphs
        self.slots: dict[tuple[int, ...], _Binding] = {}
        self.lock = threading.Lock()

    def _bind(self, batch: np.ndarray) -> _Binding:
        binding = self.session.io_binding()
        value = ort.OrtValue.ortvalue_from_numpy(batch.copy(), self.device, 0)  # on the CPU it would alias the caller's array
        binding.bind_ortvalue_input("input", value)
        binding.bind_output("output", self.device)
        first_run = ort.RunOptions()
        first_run.add_run_config_entry("gpu_graph_id", "-1")  # allocate the output without capturing a graph
        self.session.run_with_iobinding(binding, first_run)
        output = binding.get_outputs()[0]
        binding.bind_ortvalue_output("output", output)  # fixed address from now on
        run_options = ort.RunOptions()
        run_options.add_run_config_entry("gpu_graph_id", str(len(self.slots) + 1) if self.graphs else "-1")
        return _Binding(binding, value, output, run_options)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        with self.lock:
            slot = self.slots.get(batch.shape)
            if slot is None:
                slot = self.slots[batch.shape] = self._bind(batch)
            else:
                slot.input.update_inplace(batch)
                self.session.run_with_iobinding(slot.binding, slot.run_options)
            output = slot.output.numpy()
            return output.copy() if self.device == "cpu" else output  # on the CPU, numpy() is a view of the reused buffer


def batch_runner(session: ort.InferenceSession, cuda_graph: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """How a batch goes through `session`: IO binding on a GPU provider, a plain run on the CPU."""
    if session.get_providers()[0] in GPU_PROVIDERS:
        return BoundRunner(session, "cuda", cuda_graph)
    return lambda batch: session.run(["output"], {"input": batch})[0]
