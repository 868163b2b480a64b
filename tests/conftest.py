from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from real_images import make_mixed_folder
from tiny_models import negate_model


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory) -> Iterator[Path]:
    """Tests never read or write the user's cache folder (TensorRT engines, the CPU engine choices of `auto`)."""
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("cache")
        patch.setenv("GANTX_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="session")
def mixed_folder(tmp_path_factory) -> Path:
    """Real photos in every mode the runtime must handle (read-only: copy before changing)."""
    folder = tmp_path_factory.mktemp("mixed") / "photos"
    make_mixed_folder(folder)
    return folder


@pytest.fixture(scope="session")
def negate_onnx(tmp_path_factory) -> Path:
    return negate_model(tmp_path_factory.mktemp("models") / "negate.onnx")


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """Run `gantx ARGS...` in-process; returns (exit code, stdout, stderr)."""
    from gantx.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["gantx", *map(str, args)])
        with pytest.raises(SystemExit) as exited:
            main()
        out, err = capsys.readouterr()
        return exited.value.code, out, err

    return run
