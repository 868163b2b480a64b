"""Finding a model and opening an ONNX Runtime session on it.

Sessions run at graph optimisation level ALL. Optimised graphs are not cached:
on this project's CPU that would save 37 ms of a ResNet-9's 0.64 s first image
(5 ms or less for the zoo's models) while writing 45 MB per model
(benchmarks/results/startup.md). Which providers a session asks for, and with
what options, is gantx.providers' job; how batches go through it, gantx.binding's.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from gantx.errors import ModelError, first_line
from gantx.model import ModelInfo
from gantx.providers import PROVIDERS, check_started, plan_chain, provider_options, quiet_onnxruntime
from gantx.runtime_check import import_onnxruntime
from gantx.settings import RunSettings
from gantx.zoo import bundled_models, resolve_model

ort = import_onnxruntime()

CHECKPOINT_SUFFIXES = (".pt", ".pth")
CHECKPOINT_MAGIC = (b"PK\x03\x04", b"\x80")  # torch.save's zip archive; a pickle (protocol 2 or later)


def session_options(
    threads: int | None, level: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
) -> ort.SessionOptions:
    """Level ALL; intra-op threads = `threads`, else ONNX Runtime's own choice (one per physical core)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = level
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


def read_info(path: Path) -> ModelInfo:
    """The model's contract without optimising the graph (TensorRT needs its profile before it starts)."""
    session = _create(path, session_options(1, ort.GraphOptimizationLevel.ORT_DISABLE_ALL), [PROVIDERS["cpu"]])
    return ModelInfo.from_metadata(session.get_modelmeta().custom_metadata_map, source=str(path))


def open_session(model: str | os.PathLike[str], settings: RunSettings) -> ort.InferenceSession:
    """Open `model` on the best provider `settings.provider` allows (gantx.providers plans and checks the chain)."""
    path = find_model(model)
    chain = plan_chain(settings, ort.get_available_providers())
    info = read_info(path) if PROVIDERS["tensorrt"] in chain else None
    providers = [(name, provider_options(name, info, settings)) for name in chain]
    session = _create(path, session_options(settings.threads), providers)
    check_started(settings, chain, session.get_providers())
    return session


def open_model(model: str | os.PathLike[str], settings: RunSettings) -> tuple[ort.InferenceSession, ModelInfo]:
    """Open a session and read its contract metadata; a model outside the contract is refused."""
    session = open_session(model, settings)
    return session, ModelInfo.from_metadata(session.get_modelmeta().custom_metadata_map, source=str(model))
