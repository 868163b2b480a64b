"""gantx: deploy GAN image translators with ONNX Runtime, no PyTorch needed."""

from gantx.errors import GantxError, InputError, ModelError, ProviderError
from gantx.generator import Generator
from gantx.model import ModelInfo
from gantx.translator import Translator

__version__ = "0.1.0"

__all__ = [
    "GantxError",
    "Generator",
    "InputError",
    "ModelError",
    "ModelInfo",
    "ProviderError",
    "Translator",
    "__version__",
]
