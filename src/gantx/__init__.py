"""gantx: deploy GAN image translators with ONNX Runtime, no PyTorch needed.

The public classes load on first use (PEP 562), so `import gantx` stays cheap:
the console entry point (gantx.__main__) lives inside this package and must
be able to catch a Ctrl-C that lands while ONNX Runtime is still importing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from gantx.errors import GantxError, InputError, ModelError, ProviderError

if TYPE_CHECKING:
    from gantx.generator import Generator
    from gantx.model import ModelInfo
    from gantx.settings import RunSettings
    from gantx.translator import Translator

__version__ = "0.1.0"

_LAZY = {
    "Generator": "gantx.generator",
    "ModelInfo": "gantx.model",
    "RunSettings": "gantx.settings",
    "Translator": "gantx.translator",
}

__all__ = [
    "GantxError",
    "Generator",
    "InputError",
    "ModelError",
    "ModelInfo",
    "ProviderError",
    "RunSettings",
    "Translator",
    "__version__",
]


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'gantx' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # imported once; later look-ups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
