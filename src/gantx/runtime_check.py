"""Engines come in extras (`pip install "gantx[cpu]"` or `"gantx[gpu]"`): a missing one is one line saying which.

`pip install gantx` alone brings no engine, since ONNX Runtime's CPU and GPU
wheels both provide the module `onnxruntime` and break each other when both
are installed: the user picks one through an extra. Modules that need an
engine import it through `import_extra`, so the first of them to run says
what to install, and `import gantx` alone never needs one.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from gantx.errors import GantxError

EXTRA_USES = {"gpu": "on an NVIDIA machine"}  # when an alternative extra is the right one


class MissingExtraError(GantxError):
    """A module that an extra of gantx installs is not installed."""


def install_hint(extra: str, *alternatives: str) -> str:
    """`pip install "gantx[cpu]" (or "gantx[gpu]" on an NVIDIA machine)` for extra "cpu", alternative "gpu"."""
    others = "".join(f' (or "gantx[{other}]" {EXTRA_USES.get(other, "instead")})' for other in alternatives)
    return f'pip install "gantx[{extra}]"{others}'


def import_extra(module: str, extra: str, *alternatives: str) -> ModuleType:
    """`module`, or MissingExtraError naming the extra that installs it; other import errors pass unchanged.

    A module that is installed but fails to load (a missing shared library, a
    Ctrl-C while it initialises) is not reported as missing.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name != module:
            raise
        raise MissingExtraError(f"{module} is not installed: {install_hint(extra, *alternatives)}") from None


def import_onnxruntime() -> ModuleType:
    """ONNX Runtime, from the `cpu` extra or, on an NVIDIA machine, the `gpu` one."""
    return import_extra("onnxruntime", "cpu", "gpu")
