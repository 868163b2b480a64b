"""Which ONNX Runtime execution providers run a model, with what options, and what to say when one cannot start.

`RunSettings.provider` names the first provider wanted; GPU providers hand the
ops they lack to the next in line, so each chain ends on the CPU. `auto` falls
back down the chain with one notice per process when a listed GPU provider
cannot start (onnxruntime-gpu without CUDA); a provider asked for by name that
cannot start is an error. Each provider's options come from its own function
in PROVIDER_OPTIONS: a new engine is a name, a chain and one function (with a
cache folder of its own from gantx.engine_cache, as TensorRT's engines have).
What each provider computes at for each `--precision` is one table,
PRECISIONS; a precision a provider cannot honour is named once per process
and runs as the table says, never silently. (OpenVINO, not an ONNX Runtime
provider, has its own table in gantx.openvino_engine.)
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from gantx.engine_cache import engine_folder
from gantx.errors import ProviderError
from gantx.extras import ort
from gantx.model import ModelInfo, Shape
from gantx.settings import ComputePrecision, Provider, RunSettings, one_of
from gantx.zoo import data_file

log = logging.getLogger("gantx")

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
CHAINS = {
    "auto": ("tensorrt", "cuda", "cpu"),
    "tensorrt": ("tensorrt", "cuda", "cpu"),
    "cuda": ("cuda", "cpu"),
    "cpu": ("cpu",),
}
GPU_PROVIDERS = (PROVIDERS["tensorrt"], PROVIDERS["cuda"])
NVIDIA_DRIVER = Path("/proc/driver/nvidia")  # how Linux shows a loaded NVIDIA driver
TENSORRT_BF16_SINCE = (1, 23)  # the onnxruntime release whose TensorRT provider takes trt_bf16_enable
INSTEAD = "for bf16 on the CPU use --provider openvino; for an fp16 model, gantx export --fp16"
_FP32_ONLY: dict[str, str | None] = {"auto": "fp32", "fp32": "fp32", "fp16": None, "bf16": None}
# What each provider computes at for each --precision (on an fp32 model file); None: it cannot, and runs fp32.
PRECISIONS: dict[str, dict[str, str | None]] = {
    PROVIDERS["cpu"]: _FP32_ONLY,
    PROVIDERS["cuda"]: _FP32_ONLY,
    PROVIDERS["tensorrt"]: {
        "auto": "fp16",
        "fp32": "fp32",
        "fp16": "fp16",
        "bf16": "bf16",  # where the build takes trt_bf16_enable: see computes_at
    },
}
TENSORRT_PRECISION_OPTIONS = {
    "fp32": {"trt_fp16_enable": "0"},
    "fp16": {"trt_fp16_enable": "1"},
    "bf16": {"trt_fp16_enable": "0", "trt_bf16_enable": "1"},
}
# notices already given in this process
_notified: set[str] = set()
_notified_lock = threading.Lock()


# The CPU and GPU builds of ONNX Runtime share one module: the CPU build goes before the GPU build comes.
GPU_INSTALL = 'pip uninstall -y onnxruntime && pip install "gantx[gpu]"'


def plan_providers(requested: str, available: Sequence[str]) -> list[str]:
    """The provider chain to ask ONNX Runtime for, given what this build lists."""
    one_of(requested, Provider, "--provider", ProviderError)
    if requested != "auto" and PROVIDERS[requested] not in available:
        raise ProviderError(
            f"provider {requested!r} is not in this onnxruntime build (it lists {', '.join(available)})"
            + ("; " + GPU_INSTALL if requested != "cpu" else "")
        )
    return [PROVIDERS[name] for name in CHAINS[requested] if PROVIDERS[name] in available]


def plan_chain(settings: RunSettings, available: Sequence[str]) -> list[str]:
    """The chain for `settings`; CUDA graphs are refused where no provider of the chain could capture them."""
    chain = plan_providers(settings.provider, available)
    if settings.cuda_graph and not set(GPU_PROVIDERS) & set(chain):
        raise ProviderError("CUDA graphs need the CUDA or TensorRT provider")
    return chain


def tensorrt_profile(profile: Sequence[Shape]) -> dict[str, str]:
    """A static export's min, opt and max input shapes -> TensorRT provider options for the `input` tensor."""
    keys = ("trt_profile_min_shapes", "trt_profile_opt_shapes", "trt_profile_max_shapes")
    return {key: "input:" + "x".join(map(str, shape)) for key, shape in zip(keys, profile)}


def tensorrt_options(info: ModelInfo | None, settings: RunSettings) -> dict[str, str]:
    """The precision, engine and timing caches in the cache folder (an engine build takes minutes), the profile."""
    folder = str(engine_folder("tensorrt"))
    precision = plan_precision(PROVIDERS["tensorrt"], settings.precision)
    options = {
        **TENSORRT_PRECISION_OPTIONS[precision],
        "trt_engine_cache_enable": "1",
        "trt_engine_cache_path": folder,
        "trt_timing_cache_enable": "1",
        "trt_timing_cache_path": folder,
    }
    if settings.cuda_graph:
        options["trt_cuda_graph_enable"] = "1"
    if info is not None and info.profile:
        options.update(tensorrt_profile(info.profile))
    return options


def cuda_options(info: ModelInfo | None, settings: RunSettings) -> dict[str, str]:
    return {"enable_cuda_graph": "1"} if settings.cuda_graph else {}


# Options for each provider that takes any, from the model's contract (read for TensorRT's profile) and the settings.
PROVIDER_OPTIONS: dict[str, Callable[[ModelInfo | None, RunSettings], dict[str, str]]] = {
    PROVIDERS["tensorrt"]: tensorrt_options,
    PROVIDERS["cuda"]: cuda_options,
}


def provider_options(name: str, info: ModelInfo | None, settings: RunSettings) -> dict[str, str]:
    """ONNX Runtime options for one provider of the chain."""
    options = PROVIDER_OPTIONS.get(name)
    return options(info, settings) if options else {}


def computes_at(provider: str, asked: ComputePrecision) -> str | None:
    """PRECISIONS' answer for this build: None where `provider` cannot honour `asked` (TensorRT bf16 before 1.23)."""
    precision = PRECISIONS[provider][asked]
    if provider == PROVIDERS["tensorrt"] and precision == "bf16":
        return precision if tuple(map(int, ort.__version__.split(".")[:2])) >= TENSORRT_BF16_SINCE else None
    return precision


def plan_precision(provider: str, asked: ComputePrecision) -> str:
    """What `provider` computes an fp32 model at when `asked` (PRECISIONS); fp32 where it cannot honour it."""
    return computes_at(provider, asked) or "fp32"


def session_precision(provider: str, asked: ComputePrecision, file_precision: str) -> str:
    """What a session on `provider` runs at: an fp16 or int8 file as stored, else as PRECISIONS says."""
    return file_precision if file_precision != "fp32" else plan_precision(provider, asked)


def name_unhonoured(provider: str, asked: ComputePrecision, file_precision: str) -> None:
    """Say once per process that `provider` cannot honour the precision asked for an fp32 file."""
    if file_precision == "fp32" and computes_at(provider, asked) is None:
        notify_once(
            logging.WARNING, f"gantx: --precision {asked} is not honoured by {provider}; it runs fp32 ({INSTEAD})"
        )


@contextlib.contextmanager
def quiet_onnxruntime():
    """ORT prints a banner and C++ errors when a GPU provider fails to load; gantx reports that itself."""
    ort.set_default_logger_severity(4)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        ort.set_default_logger_severity(3)


@functools.cache
def providers_that_start() -> tuple[str, ...]:
    """The providers of this build that actually start here, each tried once per process on a one-node graph."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    started = []
    for name in ort.get_available_providers():
        with contextlib.suppress(Exception), quiet_onnxruntime():
            session = ort.InferenceSession(str(data_file("probe.onnx")), options, providers=[name])
            if name in session.get_providers():
                started.append(name)
    return tuple(started)


def nvidia_driver_loaded() -> bool:
    """Whether this machine has an NVIDIA driver; Linux shows it in /proc, elsewhere gantx assumes one."""
    return not sys.platform.startswith("linux") or NVIDIA_DRIVER.exists()


def notify_once(level: int, message: str) -> None:
    """Log `message` once per process, however many sessions find out the same thing."""
    with _notified_lock:
        if message in _notified:
            return
        _notified.add(message)
    log.log(level, message)


def _notify_fallback(failed: list[str], active: str, ignored: list[str]) -> None:
    """Say once per process that GPU providers could not start.

    Without an NVIDIA driver the CPU is the only place to run, so that is
    logged at info level; a warning where a GPU should have started, or where
    CUDA graphs were asked for and are ignored (said once more for a session
    that asks for them after the plain notice).
    """
    level = logging.WARNING if ignored or nvidia_driver_loaded() else logging.INFO
    note = f" ({' and '.join(ignored)} ignored)" if ignored else ""
    notify_once(level, f"gantx: {', '.join(failed)} could not start here; running on {active}{note}")


def check_started(settings: RunSettings, chain: Sequence[str], active: Sequence[str]) -> None:
    """After a session opened on `active` of `chain`: an error if the provider named cannot start, else the notice."""
    provider = settings.provider
    if provider != "auto" and PROVIDERS[provider] not in active:
        raise ProviderError(
            f"provider {provider!r} is installed but could not start here"
            " (missing CUDA/cuDNN/TensorRT libraries or no GPU)"
        )
    if provider == "auto" and active[0] != chain[0]:
        failed = [name for name in chain if name not in active]
        ignored = ["CUDA graphs"] if settings.cuda_graph and active[0] not in GPU_PROVIDERS else []
        _notify_fallback(failed, active[0], ignored)
