"""The `gantx` console entry point: cheap to reach, and a Ctrl-C at any moment ends in one line and exit 130."""

from __future__ import annotations

import subprocess
import sys

import pytest

import gantx
from gantx.errors import GantxError

HEAVY = ("numpy", "onnxruntime", "PIL", "typer", "rich")
# A Ctrl-C that lands while `module` imports: as the interpreter raises it in Python code, and as a C
# extension interrupted while it initialises reports it (ONNX Runtime's, through pybind11).
RAISE = {
    "python": "raise KeyboardInterrupt",
    "extension": "try:\n                raise KeyboardInterrupt\n            except KeyboardInterrupt as error:\n"
    "                raise ImportError('initialization failed') from error",
}
INTERRUPT_IMPORT = """
import sys
class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            {raise_it}
sys.meta_path.insert(0, Interrupt())
sys.argv = ["gantx", "info", "fashion-cgan"]
from gantx.__main__ import main
main()
"""


def test_the_entry_point_imports_nothing_heavy():
    code = f"import sys, gantx.__main__; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("module, where", [("onnxruntime", "extension"), ("onnxruntime", "python"), ("typer", "python")])
def test_ctrl_c_while_the_cli_imports_is_one_line_and_exit_130(module, where):
    code = INTERRUPT_IMPORT.format(module=module, raise_it=RAISE[where])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (result.returncode, result.stderr, result.stdout) == (130, "gantx: interrupted\n", ""), result.stderr


def test_an_import_error_of_another_kind_is_not_taken_for_ctrl_c():
    code = INTERRUPT_IMPORT.format(module="onnxruntime", raise_it="raise ImportError('libcudnn.so.9: cannot open')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1 and "ImportError: libcudnn.so.9: cannot open" in result.stderr


def test_ctrl_c_inside_a_verb_says_so_too(run_cli, monkeypatch):
    import gantx.cli.info

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gantx.cli.info, "open_model", interrupt)
    assert run_cli("info", "fashion-cgan") == (130, "", "gantx: interrupted\n")


def test_the_public_names_load_on_first_use():
    assert gantx.GantxError is GantxError
    assert {"Translator", "Generator", "ModelInfo", "InputError"} <= set(dir(gantx))
    from gantx.translator import Translator

    assert gantx.Translator is Translator
    try:
        gantx.NoSuchThing
    except AttributeError as error:
        assert str(error) == "module 'gantx' has no attribute 'NoSuchThing'"
    else:
        raise AssertionError("gantx.NoSuchThing did not raise")
