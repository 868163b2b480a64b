"""Finding a model and opening a session on it: ONNX Runtime, or OpenVINO on the CPU.

Every caller (Translator, Generator, the server, Ray actors, the video path,
bench) holds a `ModelSession`, the small interface both engines give.
`auto` on a machine where the CPU runs the model times OpenVINO against ONNX
Runtime once per machine and model (gantx.engine_choice) and keeps the faster.

ONNX Runtime sessions run at graph optimisation level ALL. Optimised graphs are not cached:
on this project's CPU that would save 37 ms of a ResNet-9's 0.64 s first image
(5 ms or less for the zoo's models) while writing 45 MB per model
(benchmarks/results/startup.md). Which providers a session asks for, and with
what options, is gantx.providers' job; how batches go through it, gantx.binding's.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from gantx import openvino_engine
from gantx.engine_choice import choose_cpu_engine
from gantx.errors import ModelError, first_line
from gantx.extras import ort
from gantx.model import ModelInfo
from gantx.providers import (
    PROVIDERS,
    check_started,
    name_unhonoured,
    plan_chain,
    provider_options,
    quiet_onnxruntime,
    session_precision,
)
from gantx.settings import RunSettings
from gantx.zoo import bundled_models, resolve_model

CHECKPOINT_SUFFIXES = (".pt", ".pth")
CHECKPOINT_MAGIC = (b"PK\x03\x04", b"\x80")  # torch.save's zip archive; a pickle (protocol 2 or later)


class ModelSession(Protocol):
    """What gantx asks of an engine: ONNX Runtime's InferenceSession has it, gantx.openvino_engine gives it."""

    precision: str  # what it computes at: fp32, fp16, bf16 or int8

    def get_inputs(self) -> list[Any]: ...  # nodes with .name, .type, .shape

    def get_outputs(self) -> list[Any]: ...

    def get_providers(self) -> list[str]: ...  # the first is what runs

    def get_modelmeta(self) -> Any: ...  # .custom_metadata_map: the contract's metadata

    def run(self, output_names: Sequence[str], feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]: ...


def engine_label(session: ModelSession) -> str:
    """Where and at what a session runs, for people: "OpenVINO bf16", "CPUExecutionProvider fp32"."""
    return f"{session.get_providers()[0]} {session.precision}"


def session_options(threads: int | None, level: ort.GraphOptimizationLevel | None = None) -> ort.SessionOptions:
    """Level `level`, else ALL; intra-op threads = `threads`, else ONNX Runtime's own (one per physical core)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL if level is None else level
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1  # generators are a chain of layers: nothing runs beside each other
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    return options


def is_torch_checkpoint(path: Path) -> bool:
    """Whether `path` looks like what torch.save writes, by its suffix or its first bytes."""
    with open(path, "rb") as file:
        start = file.read(4)
    return path.suffix.lower() in CHECKPOINT_SUFFIXES or start.startswith(CHECKPOINT_MAGIC)


def _not_onnx(path: Path) -> ModelError:
    """Why a file that does not parse as ONNX cannot be opened; a checkpoint is told how to become a model."""
    if is_torch_checkpoint(path):
        return ModelError(
            f"{path}: a PyTorch checkpoint, not an ONNX model: gantx export {path} -o model.onnx makes one"
        )
    return ModelError(f"{path}: not an ONNX model (its bytes do not parse as one)")


def _create(path: Path, options: ort.SessionOptions, providers: list) -> ort.InferenceSession:
    try:
        with quiet_onnxruntime():
            return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as error:  # noqa: BLE001 - ORT raises bare RuntimeError/InvalidGraph/Fail subclasses
        if "INVALID_PROTOBUF" in str(error) or "Protobuf parsing failed" in str(error):
            raise _not_onnx(path) from None
        raise ModelError(f"cannot load model {path}: {first_line(error)}") from None


def find_model(model: str | os.PathLike[str]) -> Path:
    """The file `model` names (a path or a bundled model's name); ModelError when there is none."""
    path = resolve_model(model)
    if not path.is_file():
        known = bundled_models()
        near = difflib.get_close_matches(os.fspath(model), known, n=1)
        hint = f"did you mean {near[0]}?" if near else f"bundled models: {', '.join(known)}"
        raise ModelError(f"model not found: {path} (neither a file nor a bundled model; {hint})")
    return path


def describe(path: Path) -> ort.InferenceSession:
    """An ONNX Runtime session that only reads the contract: no graph optimisation, one thread."""
    return _create(path, session_options(1, ort.GraphOptimizationLevel.ORT_DISABLE_ALL), [PROVIDERS["cpu"]])


def read_info(path: Path) -> ModelInfo:
    """The model's contract without optimising the graph (TensorRT needs its profile before it starts)."""
    return ModelInfo.from_session(describe(path), path)


def open_openvino(path: Path, settings: RunSettings, described: Any = None) -> ModelSession:
    """`path` on OpenVINO, its contract read by ONNX Runtime as for every engine (by `described`, when open)."""
    openvino_engine.openvino()  # one line when it is not installed, before anything is read
    described = described if described is not None else describe(path)
    return openvino_engine.OpenVinoSession(path, described, ModelInfo.from_session(described, path), settings)


def _stored_precision(session: Any) -> str:
    """The precision the model file was exported at."""
    return session.get_modelmeta().custom_metadata_map.get("gantx.precision", "fp32")


def _open_onnxruntime(path: Path, settings: RunSettings, chain: list[str]) -> ort.InferenceSession:
    """`path` on ONNX Runtime with `chain`'s providers, checked to have started as `settings` asks."""
    info = read_info(path) if PROVIDERS["tensorrt"] in chain else None
    providers = [(name, provider_options(name, info, settings)) for name in chain]
    session = _create(path, session_options(settings.threads), providers)
    active = session.get_providers()
    check_started(settings, chain, active)
    session.precision = session_precision(active[0], settings.precision, _stored_precision(session))
    return session


def open_session(model: str | os.PathLike[str], settings: RunSettings) -> ModelSession:
    """Open `model` on the best engine `settings.provider` allows (gantx.providers plans and checks the chain)."""
    path = find_model(model)
    if settings.provider == "openvino":
        return open_openvino(path, settings)
    chain = plan_chain(settings, ort.get_available_providers())
    choosing = settings.provider == "auto" and openvino_engine.installed()
    if choosing and chain[0] == PROVIDERS["cpu"]:  # a remembered choice opens only the engine it names
        session = choose_cpu_engine(path, settings, lambda: _open_onnxruntime(path, settings, chain), open_openvino)
    else:
        session = _open_onnxruntime(path, settings, chain)
        if choosing and session.get_providers()[0] == PROVIDERS["cpu"]:  # a GPU that could not start
            session = choose_cpu_engine(path, settings, lambda opened=session: opened, open_openvino)
    active = session.get_providers()[0]
    if active != openvino_engine.ENGINE:  # only once ONNX Runtime is what runs
        name_unhonoured(active, settings.precision, _stored_precision(session))
    return session


def open_model(model: str | os.PathLike[str], settings: RunSettings) -> tuple[ModelSession, ModelInfo]:
    """Open a session and read its contract metadata; a model outside the contract is refused."""
    session = open_session(model, settings)
    return session, ModelInfo.from_session(session, model)
