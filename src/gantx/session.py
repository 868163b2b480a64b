"""Choosing ONNX Runtime execution providers and opening sessions."""

from __future__ import annotations

import contextlib
import io
import logging
import os
from typing import Sequence

import onnxruntime as ort

from gantx.errors import ModelError, ProviderError
from gantx.model import ModelInfo
from gantx.zoo import bundled_models, resolve_model

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


@contextlib.contextmanager
def _quiet_onnxruntime():
    """ORT prints a banner and C++ errors when a GPU provider fails to load; gantx reports that itself."""
    ort.set_default_logger_severity(4)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        ort.set_default_logger_severity(3)


def session_options(threads: int | None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    return options


def open_session(model: str | os.PathLike[str], provider: str = "auto", threads: int | None = None) -> ort.InferenceSession:
    """Open `model` on the best provider allowed by `provider`.

    `auto` falls back down the chain with one notice when a listed GPU provider
    cannot start (onnxruntime-gpu without CUDA); a provider asked for by name
    that cannot start is an error.
    """
    path = resolve_model(model)
    if not path.is_file():
        known = ", ".join(bundled_models())
        raise ModelError(f"model not found: {path} (neither a file nor a bundled model: {known})")
    chain = plan_providers(provider, ort.get_available_providers())
    try:
        with _quiet_onnxruntime():
            session = ort.InferenceSession(str(path), session_options(threads), providers=chain)
    except Exception as error:  # ORT raises bare RuntimeError/InvalidGraph/Fail subclasses
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"cannot load model {path}: {first_line}") from None
    active = session.get_providers()
    if provider != "auto" and PROVIDERS[provider] not in active:
        raise ProviderError(
            f"provider {provider!r} is installed but could not start here (missing CUDA/cuDNN/TensorRT libraries or no GPU)"
        )
    if provider == "auto" and active[0] != chain[0]:
        failed = [name for name in chain if name not in active]
        log.warning("gantx: %s could not start here; running on %s", ", ".join(failed), active[0])
    return session


def open_model(model: str | os.PathLike[str], provider: str = "auto", threads: int | None = None) -> tuple[ort.InferenceSession, ModelInfo]:
    """Open a session and read its contract metadata; a model outside the contract is refused."""
    session = open_session(model, provider, threads)
    return session, ModelInfo.from_metadata(session.get_modelmeta().custom_metadata_map, source=str(model))
