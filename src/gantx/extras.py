"""What an extra of gantx installs, and the one line that says which extra to install when a module is missing.

`pip install gantx` alone brings no engine: ONNX Runtime's CPU and GPU wheels
both provide the module `onnxruntime` and break each other when both are
installed, so the user picks one through the `cpu` or the `gpu` extra. Modules
that need an engine, the server or Ray import them through `import_extra`, so
the first of them to run says what to install, and `import gantx` needs none.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from gantx.errors import GantxError

# Top-level modules each extra brings; an ImportError naming another module is a bug, not a missing extra.
EXTRA_MODULES = {
    "cpu": {"onnxruntime", "openvino"},
    "gpu": {"onnxruntime"},
    "serve": {
        "fastapi",
        "starlette",
        "pydantic",
        "uvicorn",
        "h11",
        "anyio",
        "prometheus_client",
        "watchfiles",
        "multipart",
        "python_multipart",
    },
    "ray": {"ray", "pyarrow", "pandas"},
    "flow": {"cv2"},
}
EXTRA_USES = {"gpu": "on an NVIDIA machine"}  # when an alternative extra is the one to install


class MissingExtraError(GantxError):
    """A module that an extra of gantx installs is not installed."""


def install_hint(extra: str, *alternatives: str) -> str:
    """`pip install "gantx[cpu]" (or "gantx[gpu]" on an NVIDIA machine)` for extra "cpu", alternative "gpu"."""
    others = "".join(f' (or "gantx[{other}]" {EXTRA_USES.get(other, "instead")})' for other in alternatives)
    return f'pip install "gantx[{extra}]"{others}'


def import_extra(module: str, extra: str, *alternatives: str) -> ModuleType:
    """`module` (gantx's own or another's), or MissingExtraError naming the extra that brings what it lacks.

    An ImportError for a module that none of these extras brings (a missing
    shared library, a Ctrl-C while an extension initialises, a bug) passes unchanged.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        missing = (error.name or "").split(".")[0]
        if not any(missing in EXTRA_MODULES[name] for name in (extra, *alternatives)):
            raise
        raise MissingExtraError(f"{missing} is not installed: {install_hint(extra, *alternatives)}") from None


def import_onnxruntime() -> ModuleType:
    """ONNX Runtime, from the `cpu` extra or, on an NVIDIA machine, the `gpu` one."""
    return import_extra("onnxruntime", "cpu", "gpu")


class LazyModule:
    """A module imported when first used, not when the module naming it is: so `gantx --help`, `gantx train` and
    the trainers run without an engine, and the first command that runs a model says which extra to install."""

    def __init__(self, load: Callable[[], ModuleType]) -> None:
        self._load = load

    def __getattr__(self, name: str) -> Any:
        return getattr(self._load(), name)


ort = LazyModule(import_onnxruntime)  # onnxruntime, as the runtime's modules name it
