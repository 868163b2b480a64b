"""The `gantx` command as a whole: an entry point cheap to reach, where a Ctrl-C at any moment ends in one line
and exit 130; --version; and help that names every option in full and shows flags as flags."""

from __future__ import annotations

import re
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


@pytest.mark.parametrize(
    "module, where", [("onnxruntime", "extension"), ("onnxruntime", "python"), ("typer", "python")]
)
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


def test_version(run_cli):
    assert run_cli("--version") == (0, f"gantx {gantx.__version__}\n", "")


def _verbs(command, path=()):
    """(the words that name it, the command) for every verb of the CLI, `gantx train FAMILY` included."""
    for name, sub in getattr(command, "commands", {}).items():
        yield from _verbs(sub, (*path, name))
    if not hasattr(command, "commands"):
        yield path, command


def test_every_verbs_help_names_its_options_in_full_and_shows_flags_without_a_value(run_cli, monkeypatch):
    import typer

    from gantx.cli import app

    monkeypatch.setenv("COLUMNS", "80")
    verbs = list(_verbs(typer.main.get_command(app)))
    assert len(verbs) > 12  # every verb, and each family of `gantx train`
    for path, command in verbs:
        code, out, err = run_cli(*path, "--help")
        assert code == 0, err
        assert "<bool>" not in out and "…" not in out, out  # flags take no value; nothing is cut short
        for param in command.params:
            for name in [*param.opts, *param.secondary_opts]:
                if name.startswith("-"):
                    assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", out), (path, name)
