"""gantx as a user installs it: a wheel built from this tree, installed into a fresh virtualenv, run outside the tree;
and an editable install of a clone, run from the folder that holds the clone.

The checkout's own files are out of reach there, so package data must be read
from the installed package. gantx goes in with its `cpu` extra, as the README
installs it: the engine is no dependency of gantx alone. torch and the other
dependencies come from wherever the interpreter running the tests finds them
(a `.venv` as the README makes one, or the system Python as CI uses); pip adds
to the fresh virtualenv only what is missing there (onnxruntime where this
interpreter has the GPU build). Building takes setuptools from the package
index through pip's build isolation.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import gantx

pytest.importorskip("torch")
from gantx.trainers.data import FASHION_DIRS

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "src", "trainers", "exporters")  # what the wheel is built from
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not any((d / "train-images-idx3-ubyte.gz").is_file() for d in FASHION_DIRS),
        reason="Fashion-MNIST not installed",
    ),
]


def _run(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {
        key: value for key, value in os.environ.items() if key != "PYTHONPATH"
    }  # nothing may point back into the checkout
    return subprocess.run([str(arg) for arg in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _see_our_packages(venv: Path) -> None:
    """Let `venv` import what this interpreter imports, after its own site-packages: a .pth file of our path entries.

    Not `--system-site-packages`: from a .venv, that shows the base Python's packages, not the .venv's. Entries
    of the checkout (the tests, an editable install's src/) are left out, so gantx can only come from the wheel;
    a .venv inside the checkout, as the README makes it, stays in.
    """
    theirs = _run(venv / "bin/python", "-c", "import json, sys; print(json.dumps(sys.path))")
    assert theirs.returncode == 0, theirs.stderr
    known, environment = set(json.loads(theirs.stdout)), Path(sys.prefix).resolve()

    def wanted(entry: str) -> bool:
        """A folder the venv lacks, outside the checkout unless it is this interpreter's environment."""
        if not entry or entry in known or not Path(entry).is_dir():
            return False
        resolved = Path(entry).resolve()
        return not resolved.is_relative_to(ROOT) or resolved.is_relative_to(environment)

    ours = [entry for entry in sys.path if wanted(entry)]
    [site_packages] = (venv / "lib").glob("python*/site-packages")
    (site_packages / "_gantx_test_dependencies.pth").write_text("".join(f"{entry}\n" for entry in ours))


def _copy_tree(tree: Path) -> Path:
    """A copy of what gantx is built from, so build/ and egg-info land in the copy, not in the checkout."""
    tree.mkdir(parents=True)
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, tree / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.ort.onnx")
            )
        else:
            shutil.copy(source, tree / name)
    return tree


def _new_venv(where: Path, *install: object) -> Path:
    """A fresh virtualenv that sees our packages, with `pip install INSTALL...` run in it: it adds what they lack."""
    created = _run(sys.executable, "-m", "venv", where)
    assert created.returncode == 0, created.stderr
    _see_our_packages(where)
    installed = _run(where / "bin/python", "-m", "pip", "install", "-q", *install)
    assert installed.returncode == 0, installed.stderr
    return where


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh virtualenv holding the wheel of a copy of this tree."""
    root = tmp_path_factory.mktemp("wheel")
    built = _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", root / "dist", _copy_tree(root / "tree")
    )
    assert built.returncode == 0, built.stderr
    [wheel] = (root / "dist").glob("gantx-*.whl")
    return _new_venv(root / "venv", f"{wheel}[cpu]")


def test_installed_wheel_trains_dtn_on_its_bundled_photos(venv, tmp_path):
    """DTN's default source domain, Fashion-MNIST-M, blends items with the photos that ship in the package."""
    where = _run(venv / "bin/python", "-c", "import gantx; print(gantx.__file__)", cwd=tmp_path)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout  # the wheel's copy, not the checkout's
    trained = _run(venv / "bin/gantx", "train", "dtn", "--out", "run", "--max-steps", "2",
                   "--limit", "64", "--pretrain-epochs", "1",
                   "--conv-dim", "8", "--code-dim", "16", "--quiet", cwd=tmp_path)  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "dtn: 3 steps" in trained.stdout
    assert (tmp_path / "run" / "latest.pt").stat().st_size > 0


def test_a_clone_named_gantx_in_the_working_directory_does_not_shadow_the_editable_install(tmp_path):
    """The README's `pip install -e .` in a clone called gantx, used from the folder that holds the clone.

    There the clone is a namespace package `gantx` on sys.path[0]; setuptools' default editable finder comes
    after the path finder and lost to it: no gantx.Translator, no `python -m gantx`, Ray workers that could not
    import gantx.ray_engine. pyproject.toml asks for a strict editable install: a real path entry, which a regular
    package wins from.
    """
    clone = _copy_tree(tmp_path / "gantx")
    python = _new_venv(tmp_path / "venv", "-e", f"{clone}[cpu]") / "bin/python"
    (tmp_path / "script.py").write_text(
        "import gantx, gantx.ray_engine\nprint(gantx.Translator.__name__, gantx.ray_engine.__name__)\n"
    )
    version = _run(python, "-m", "gantx", "--version", cwd=tmp_path)
    assert (version.returncode, version.stdout, version.stderr) == (0, f"gantx {gantx.__version__}\n", "")
    imported = _run(python, "-c", "import gantx; print(gantx.Translator.__module__, gantx.__file__)", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    module, where = imported.stdout.split()
    assert module == "gantx.translator" and Path(where).resolve() == clone / "src/gantx/__init__.py"
    script = _run(python, "script.py", cwd=tmp_path)  # sys.path[0] is the script's folder, which holds the clone
    assert (script.returncode, script.stdout) == (0, "Translator gantx.ray_engine\n"), script.stderr
