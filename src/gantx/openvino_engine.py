"""OpenVINO on the CPU: the contract's ONNX file compiled by the `openvino` runtime itself (not ONNX Runtime's EP).

The `openvino` package is imported on first use only, so `import gantx` and
`gantx --help` never load it; without it, `--provider openvino` is one line
saying how to install it. The contract (metadata, input and output names) is
still read by gantx.session with ONNX Runtime, so both engines agree on it.

Precision: one table, OPENVINO_PRECISIONS, maps `--precision` to OpenVINO's
INFERENCE_PRECISION_HINT and the CPU capability it needs; a precision this CPU
lacks natively is named once and runs f32. An int8 (QDQ) model file runs its
quantised layers in int8 whatever the option says for the rest.

Threads and streams: INFERENCE_NUM_THREADS is `--threads`; PERFORMANCE_HINT
is LATENCY (one stream) for every caller: single requests, the server's model
thread and folder runs alike. THROUGHPUT streams pay only when several
requests run at once; gantx's pipelines feed the model one batch at a time,
and on this project's 2-core machine one stream already uses both cores.
Measured there (photo-upscale2x, bf16, batches of 8 at 128x128, median of 7):
LATENCY 97 ms a batch; THROUGHPUT (2 streams) 136 ms for one request at a
time and 121 ms a batch with two requests in flight. So no streams here.

Shapes: the exported models have dynamic batch, height and width
(read_model().inputs[0].partial_shape is [?,3,?,?]), and are compiled once,
dynamic. Measured on photo-upscale2x (bundled), bf16, 2 shared cores, median
of 7 alternated runs, ms: first call of a new shape / steady state, dynamic
vs. a static compilation of that one shape:
    1x3x256x256: dynamic 50 / 30.3; static 34 compile + 64 / 27.6
    1x3x320x256: dynamic 58 / 45.6; static 40 compile + 59 / 42.6
    4x3x256x256: dynamic 305 / 193; static 38 compile + 243 / 180
A new shape costs the dynamic model one slower first call and nothing after;
a cache of static compilations would gain 5-10% in the steady state, but pay
a compile and memory per shape (a folder of photos has many sizes, the server
more), so dynamic it is.

Thread safety: one compiled model, one infer request per thread
(`threading.local`), so the server's model thread, pipelines and callers of a
shared Translator never share a request, and none waits on a lock.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from gantx.errors import ProviderError, first_line
from gantx.extras import import_extra
from gantx.model import ModelInfo
from gantx.providers import notify_once
from gantx.settings import ComputePrecision, RunSettings

log = logging.getLogger("gantx")

ENGINE = "OpenVINO"  # what get_providers() names, as ONNX Runtime names its providers
DEVICE = "CPU"
# --precision -> (OpenVINO's INFERENCE_PRECISION_HINT, the CPU capability it needs natively)
OPENVINO_PRECISIONS: dict[str, tuple[str, str | None]] = {
    "fp32": ("f32", None),
    "bf16": ("bf16", "BF16"),
    "fp16": ("f16", "FP16"),
}
AUTO_ORDER = ("bf16", "fp32")  # auto: the first this CPU runs natively (bf16 is visually lossless; fp16 is not here)


def installed() -> bool:
    """Whether the `openvino` package is importable, without importing it."""
    return importlib.util.find_spec("openvino") is not None


def openvino() -> ModuleType:
    """The `openvino` package; one line saying how to get it when it is missing."""
    return import_extra("openvino", "cpu")


@functools.cache
def core() -> Any:
    """One OpenVINO Core per process (it reads the plugins once)."""
    return openvino().Core()


def version() -> str:
    return openvino().__version__


def summary() -> str:
    """What `gantx info` says of OpenVINO: its version and the CPU's precisions, or how to install it."""
    if not installed():
        return 'not installed (pip install "gantx[cpu]")'
    try:
        capabilities = cpu_capabilities()
    except ProviderError as error:
        return f"{version().split('-')[0]}, installed, but {error}"
    precisions = [name for name in capabilities if re.fullmatch(r"(FP|BF|INT)\d+", name)]  # not WINOGRAD, ...
    return f"{version().split('-')[0]}, CPU precisions: {', '.join(precisions)}"


@functools.cache
def cpu_capabilities() -> tuple[str, ...]:
    """What the CPU runs natively, as OpenVINO says (FP32, BF16, FP16, INT8, ...); ProviderError if it cannot say."""
    try:
        return tuple(core().get_property(DEVICE, "OPTIMIZATION_CAPABILITIES"))
    except RuntimeError as error:  # OpenVINO installed, its CPU plugin unable to load
        raise ProviderError(f"provider 'openvino' could not start here: {first_line(error)}") from None


def plan_precision(asked: ComputePrecision, capabilities: Sequence[str]) -> tuple[str, str | None]:
    """(the precision OpenVINO runs at, a note when `asked` names one this CPU cannot honour natively)."""
    if asked == "auto":
        return next(name for name in AUTO_ORDER if _native(name, capabilities)), None
    if _native(asked, capabilities):
        return asked, None
    return "fp32", (
        f"--precision {asked} is not native on this CPU for OpenVINO (it has {', '.join(capabilities)}); it runs fp32"
    )


def _native(precision: str, capabilities: Sequence[str]) -> bool:
    needed = OPENVINO_PRECISIONS[precision][1]
    return needed is None or needed in capabilities


def compile_config(precision: str, settings: RunSettings) -> dict[str, Any]:
    """The CPU plugin's properties: inference precision, the latency hint (one stream), `--threads`."""
    config: dict[str, Any] = {
        "INFERENCE_PRECISION_HINT": OPENVINO_PRECISIONS[precision][0],
        "PERFORMANCE_HINT": "LATENCY",
    }
    if settings.threads:
        config["INFERENCE_NUM_THREADS"] = settings.threads
    return config


class OpenVinoSession:
    """A gantx.session.ModelSession on OpenVINO: the same inputs, outputs and metadata as ONNX Runtime reads."""

    def __init__(self, path: Path, described: Any, info: ModelInfo, settings: RunSettings) -> None:
        """`described`: the ONNX Runtime session gantx.session read the contract with (inputs, outputs, metadata)."""
        precision, note = plan_precision(settings.precision, cpu_capabilities())
        if note:
            notify_once(logging.WARNING, f"gantx: {note}")
        self.inputs, self.outputs = described.get_inputs(), described.get_outputs()
        self.metadata = described.get_modelmeta()
        self.config = compile_config(precision, settings)
        try:
            self.compiled = core().compile_model(str(path), DEVICE, self.config)
        except RuntimeError as error:
            raise ProviderError(f"provider 'openvino' could not compile {path}: {first_line(error)}") from None
        # an int8 (QDQ) file runs its quantised layers in int8, the rest at the hint
        self.precision = "int8" if info.precision == "int8" else precision
        self.local = threading.local()
        log.debug("gantx: %s on OpenVINO %s, %s", path, self.precision, self.config)

    def get_inputs(self) -> list[Any]:
        return self.inputs

    def get_outputs(self) -> list[Any]:
        return self.outputs

    def get_providers(self) -> list[str]:
        return [ENGINE]

    def get_modelmeta(self) -> Any:
        return self.metadata

    def run(self, output_names: Sequence[str], feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs by name, each a fresh array; this thread's own infer request runs it."""
        request = getattr(self.local, "request", None)
        if request is None:
            request = self.local.request = self.compiled.create_infer_request()
        inputs = {name: np.ascontiguousarray(value) for name, value in feeds.items()}
        results = request.infer(inputs, share_inputs=True)  # outputs are copied out of the request
        return [results[name] for name in output_names]
