"""Optional parts of gantx (pip extras), imported only when used, with one line saying how to get a missing one."""

from __future__ import annotations

import importlib
from types import ModuleType

from gantx.errors import GantxError

# Top-level modules each extra brings; an ImportError naming another module is a bug, not a missing extra.
EXTRA_MODULES = {
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
    "cpu": {"openvino"},
}


def import_extra(module: str, extra: str) -> ModuleType:
    """Import `module` (a gantx module, or the library itself), which needs the extra `extra`.

    One line saying how to get it when it is missing.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        if (error.name or "").split(".")[0] not in EXTRA_MODULES[extra]:
            raise
        raise GantxError(f'{error.name} is not installed: pip install "gantx[{extra}]"') from None
