"""Choosing ONNX Runtime execution providers, configuring them, and opening sessions.

CPU sessions run at graph optimisation level ALL and cache the optimised graph
(beside the model, or in the user cache folder for zoo models and read-only
folders), so the next start skips the optimisation passes. GPU sessions get IO
binding (one copy to the device and one back per batch) and, on request, CUDA
graphs; TensorRT gets fp16, engine and timing caches in the user cache folder,
and the optimisation profile that a static export records in `gantx.profile`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import platform
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import onnxruntime as ort
import platformdirs

from gantx.errors import ModelError, ProviderError
from gantx.images import atomic_target
from gantx.model import ModelInfo
from gantx.zoo import bundled_models, is_bundled, resolve_model

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
OPTIMIZED_SUFFIX = ".ort.onnx"


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
    """The user cache folder (TensorRT engines, optimised graphs); GANTX_CACHE_DIR overrides it."""
    return Path(os.environ.get("GANTX_CACHE_DIR") or platformdirs.user_cache_dir("gantx"))


def tensorrt_profile(profile: str, source: str) -> dict[str, str]:
    """`gantx.profile` ("min;opt;max", each NxCxHxW) -> TensorRT provider options for the `input` tensor."""
    parts = profile.split(";")
    shapes_ok = len(parts) == 3 and all(
        len(dims := part.lower().split("x")) == 4 and all(dim.isdigit() and int(dim) > 0 for dim in dims) for part in parts
    )
    if not shapes_ok:
        raise ModelError(f"{source}: metadata 'gantx.profile'={profile!r} is not 'min;opt;max' with each NxCxHxW")
    keys = ("trt_profile_min_shapes", "trt_profile_opt_shapes", "trt_profile_max_shapes")
    return {key: f"input:{part.lower()}" for key, part in zip(keys, parts)}


def provider_options(name: str, metadata: Mapping[str, str], fp16: bool, cuda_graph: bool, source: str) -> dict[str, str]:
    """ONNX Runtime options for one provider of the chain."""
    if name == PROVIDERS["tensorrt"]:
        folder = cache_dir() / "tensorrt"
        folder.mkdir(parents=True, exist_ok=True)
        options = {
            "trt_fp16_enable": "1" if fp16 else "0",
            "trt_engine_cache_enable": "1",
            "trt_engine_cache_path": str(folder),
            "trt_timing_cache_enable": "1",
            "trt_timing_cache_path": str(folder),
        }
        if cuda_graph:
            options["trt_cuda_graph_enable"] = "1"
        if "gantx.profile" in metadata:
            options.update(tensorrt_profile(metadata["gantx.profile"], source))
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
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"cannot load model {path}: {first_line}") from None


def _machine_tag() -> str:
    """What an optimised CPU graph depends on besides the model: ORT's version and the CPU's instruction sets."""
    flags = ""
    with contextlib.suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        flags = next((line for line in lines if line.startswith("flags")), "")
    return f"{ort.__version__}|{platform.machine()}|{platform.processor()}|{flags}"


def optimized_places(path: Path) -> list[Path]:
    """Where the optimised graph of `path` may be cached: beside it (not for zoo models), then in the user cache folder."""
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{_machine_tag()}".encode()).hexdigest()[:16]
    name = f".{path.stem}.{key}{OPTIMIZED_SUFFIX}"
    in_cache = cache_dir() / "optimized" / name
    return [in_cache] if is_bundled(path) else [path.parent / name, in_cache]


def _open_cpu(path: Path, threads: int | None) -> ort.InferenceSession:
    """A CPU session from the cached optimised graph, or from the model while writing that cache."""
    places = optimized_places(path)
    for cached in places:
        if cached.is_file():
            try:
                return _create(cached, session_options(threads, ort.GraphOptimizationLevel.ORT_DISABLE_ALL), [PROVIDERS["cpu"]])
            except ModelError:
                log.info("gantx: ignoring unreadable optimised graph %s", cached)
                cached.unlink(missing_ok=True)
    options = session_options(threads)
    for place in places:
        try:
            with atomic_target(place) as tmp:
                options.optimized_model_filepath = str(tmp)
                return _create(path, options, [PROVIDERS["cpu"]])
        except OSError:
            continue  # a read-only folder: try the next place
    options.optimized_model_filepath = ""
    return _create(path, options, [PROVIDERS["cpu"]])


def read_metadata(path: Path) -> dict[str, str]:
    """The model's metadata without optimising the graph (TensorRT needs its profile before it starts)."""
    session = _create(path, session_options(1, ort.GraphOptimizationLevel.ORT_DISABLE_ALL), [PROVIDERS["cpu"]])
    return session.get_modelmeta().custom_metadata_map


def open_session(
    model: str | os.PathLike[str],
    provider: str = "auto",
    threads: int | None = None,
    *,
    fp16: bool = False,
    cuda_graph: bool = False,
) -> ort.InferenceSession:
    """Open `model` on the best provider allowed by `provider`.

    `auto` falls back down the chain with one notice when a listed GPU provider
    cannot start (onnxruntime-gpu without CUDA); a provider asked for by name
    that cannot start is an error. `fp16` asks TensorRT for fp16 engines;
    `cuda_graph` captures CUDA graphs (fixed shapes, IO binding).
    """
    path = resolve_model(model)
    if not path.is_file():
        known = ", ".join(bundled_models())
        raise ModelError(f"model not found: {path} (neither a file nor a bundled model: {known})")
    chain = plan_providers(provider, ort.get_available_providers())
    if fp16 and PROVIDERS["tensorrt"] not in chain:
        raise ProviderError("--fp16 builds TensorRT fp16 engines: use --provider tensorrt, or export an fp16 model (gantx export --fp16)")
    if cuda_graph and not set(GPU_PROVIDERS) & set(chain):
        raise ProviderError("CUDA graphs need the CUDA or TensorRT provider")
    if chain == [PROVIDERS["cpu"]]:
        return _open_cpu(path, threads)
    metadata = read_metadata(path) if PROVIDERS["tensorrt"] in chain else {}
    providers = [(name, provider_options(name, metadata, fp16, cuda_graph, str(path))) for name in chain]
    session = _create(path, session_options(threads), providers)
    active = session.get_providers()
    if provider != "auto" and PROVIDERS[provider] not in active:
        raise ProviderError(
            f"provider {provider!r} is installed but could not start here (missing CUDA/cuDNN/TensorRT libraries or no GPU)"
        )
    if provider == "auto" and active[0] != chain[0]:
        failed = [name for name in chain if name not in active]
        wanted = [label for label, asked in (("fp16", fp16), ("CUDA graphs", cuda_graph)) if asked and active[0] not in GPU_PROVIDERS]
        ignored = f" ({' and '.join(wanted)} ignored)" if wanted else ""
        log.warning("gantx: %s could not start here; running on %s%s", ", ".join(failed), active[0], ignored)
    return session


def open_model(
    model: str | os.PathLike[str],
    provider: str = "auto",
    threads: int | None = None,
    *,
    fp16: bool = False,
    cuda_graph: bool = False,
) -> tuple[ort.InferenceSession, ModelInfo]:
    """Open a session and read its contract metadata; a model outside the contract is refused."""
    session = open_session(model, provider, threads, fp16=fp16, cuda_graph=cuda_graph)
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
