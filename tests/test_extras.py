"""Without an engine extra (`pip install gantx` alone), gantx imports, and the first use of ONNX Runtime is one line
naming the extra to install: from the library as an error, from the CLI as that line and exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gantx.errors import EXIT_USAGE, GantxError
from gantx.extras import MissingExtraError, import_extra
from gantx.zoo import sample_photos

MISSING_ORT = 'onnxruntime is not installed: pip install "gantx[cpu]" (or "gantx[gpu]" on an NVIDIA machine)'
# As an environment without onnxruntime looks to Python: a None in sys.modules makes its import fail as not found.
WITHOUT_ORT = "import sys\nsys.modules['onnxruntime'] = None\n"


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_ORT + code], capture_output=True, text=True, timeout=120)


def test_a_missing_extra_module_names_the_extras_that_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtraError) as raised:
        import_extra("onnxruntime", "cpu", "gpu")
    assert str(raised.value) == MISSING_ORT
    assert isinstance(raised.value, GantxError) and raised.value.exit_code == EXIT_USAGE
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(MissingExtraError, match=r'^openvino is not installed: pip install "gantx\[cpu\]"$'):
        import_extra("openvino", "cpu")


def test_a_module_that_lacks_a_dependency_of_its_extra_names_the_dependency(tmp_path, monkeypatch):
    """gantx.server lacking fastapi is the serve extra missing; lacking a module no extra brings is a bug: unchanged."""
    (tmp_path / "needs_fastapi.py").write_text("import fastapi\n")
    (tmp_path / "needs_a_stranger.py").write_text("import not_a_module_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(MissingExtraError, match=r'^fastapi is not installed: pip install "gantx\[serve\]"$'):
        import_extra("needs_fastapi", "serve")
    with pytest.raises(ModuleNotFoundError) as raised:
        import_extra("needs_a_stranger", "serve")
    assert raised.value.name == "not_a_module_anywhere"


def test_import_gantx_needs_no_engine_and_the_first_use_says_what_to_install():
    result = _python(
        "import gantx\n"
        "print(gantx.__version__)\n"
        "try:\n"
        "    gantx.Translator('photo-upscale2x')\n"
        "except gantx.GantxError as error:\n"
        "    print(type(error).__name__, error)\n"
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"{__import__('gantx').__version__}\nMissingExtraError {MISSING_ORT}\n"


@pytest.mark.parametrize(
    "args", [["info", "fashion-cgan"], ["translate", "PHOTO", "-m", "photo-upscale2x", "-o", "OUT"]]
)
def test_the_cli_without_onnxruntime_is_that_line_and_exit_2(args, tmp_path):
    photo = str(sample_photos()[0])
    args = [photo if arg == "PHOTO" else str(tmp_path / "out") if arg == "OUT" else arg for arg in args]
    result = _python(f"sys.argv = ['gantx', *{args!r}]\nfrom gantx.__main__ import main\nmain()\n")
    assert (result.returncode, result.stdout, result.stderr) == (EXIT_USAGE, "", f"gantx: error: {MISSING_ORT}\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["train", "--help"], ["train", "dcgan", "--help"]])
def test_help_version_and_the_trainers_need_no_engine(args):
    result = _python(f"sys.argv = ['gantx', *{args!r}]\nfrom gantx.__main__ import main\nmain()\n")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("Usage: gantx" if "--help" in args else "gantx ")
