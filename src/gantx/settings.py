"""How a model runs, defined once: the settings every entry point takes.

`Translator`, `Generator`, the server, the Ray actors and `gantx bench` all
take one `RunSettings`; the CLI builds it from one set of option definitions
(gantx.cli.options.RUN_OPTIONS). A new way of running a model is one field
here and one option there, nothing else. Choices are `Literal` types, checked
by `one_of`, the one place that says "choose one of".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

from gantx.errors import GantxError, ProviderError

Provider = Literal["auto", "cpu", "cuda", "tensorrt", "openvino"]
# What a model computes at, whatever engine runs it (gantx.model.Precision is what a model FILE stores).
ComputePrecision = Literal["auto", "fp32", "fp16", "bf16"]
SizeSpec = Literal["auto"] | int | tuple[int, int]


def one_of(value: Any, choices: Any, option: str, error: type[GantxError] = GantxError) -> Any:
    """`value` when it is one of the `Literal` type `choices`, else `error` in one line that names them."""
    allowed = get_args(choices)
    if value not in allowed:
        raise error(f"{option} {value!r}: choose one of {', '.join(map(str, allowed))}")
    return value


def parse_size(text: str, option: str = "--size") -> SizeSpec:
    """gantx's one size grammar: `auto`, `N` (the shorter side, aspect kept) or `HxW` (exactly)."""
    text = text.strip().lower()
    if text == "auto":
        return "auto"
    try:
        if "x" in text:
            height, width = (int(part) for part in text.split("x"))
            if height > 0 and width > 0:
                return (height, width)
        elif int(text) > 0:
            return int(text)
    except ValueError:
        pass
    raise GantxError(f"{option} {text!r}: expected auto, a positive N (shorter side) or HxW")


@dataclass(frozen=True)
class RunSettings:
    """How a model runs: where, in what batches, at what size, in what pieces.

    Frozen, so one object can be shared by threads and pickled to Ray actors;
    `replace` gives a variant. `size` also takes the CLI's text (`"512"`,
    `"256x256"`), and every value is checked here, once, for every caller.
    """

    provider: Provider = "auto"  # auto tries TensorRT, then CUDA, then the faster of OpenVINO and ORT on the CPU
    batch_size: int = 8  # images per model call
    size: SizeSpec = "auto"  # auto (the image's own), N (shorter side) or (H, W)
    tile: int | None = None  # run a fully convolutional model on overlapping tiles of this many pixels
    threads: int | None = None  # intra-op threads (ONNX Runtime, OpenVINO); None: one per physical core
    precision: ComputePrecision = "auto"  # auto: the fastest the device runs natively (bf16/fp16), else fp32
    cuda_graph: bool = False  # CUDA/TensorRT: capture and replay CUDA graphs
    io_binding: bool = True  # CUDA/TensorRT: buffers bound on the device, one copy each way per batch

    def __post_init__(self) -> None:
        one_of(self.provider, Provider, "--provider", ProviderError)
        one_of(self.precision, ComputePrecision, "--precision", ProviderError)
        if isinstance(self.size, str):
            object.__setattr__(self, "size", parse_size(self.size))
        elif isinstance(self.size, list):
            object.__setattr__(self, "size", tuple(self.size))
        for name in ("batch_size", "tile", "threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise GantxError(f"--{name.replace('_', '-')} {value}: must be at least 1")
        if self.cuda_graph and self.provider in ("cpu", "openvino"):
            raise ProviderError("CUDA graphs need the CUDA or TensorRT provider")
        if self.cuda_graph and not self.io_binding:
            raise GantxError("--cuda-graph replays graphs over bound buffers: it needs --io-binding")

    def replace(self, **changes: Any) -> RunSettings:
        return dataclasses.replace(self, **changes)
