"""Every verb that runs a model builds the same RunSettings from the same flags, from one option definition.

The reference is a RunSettings built here, by hand, from the values the
flags name; each verb is run through the real Typer app until the moment it
hands its settings on (to Translator, Generator or the server), where a
recorder takes them and stops the verb.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import get_args

import pytest
from tiny_models import noise_model

from gantx.cli import app
from gantx.cli.options import RUN_OPTIONS
from gantx.errors import ProviderError
from gantx.generator import DEFAULT_BATCH
from gantx.settings import RunSettings

# Flags every such verb takes, and the values they name.
COMMON_FLAGS = ["--provider", "cuda", "--threads", "2", "--precision", "bf16", "--cuda-graph"]
COMMON = {"provider": "cuda", "threads": 2, "precision": "bf16", "cuda_graph": True}


class Handed(Exception):
    """Raised by the recorder: the verb got as far as handing its settings on."""


def record_settings(captured: list[RunSettings]):
    """Stands in for Translator and Generator: keeps the settings they would run with."""

    def record(model, settings: RunSettings | None = None, **changes) -> None:
        captured.append(settings.replace(**changes))
        raise Handed

    return record


def verbs(tmp_path: Path, negate_onnx: Path, mixed_folder: Path) -> dict[str, tuple[list[str], str, dict]]:
    """verb -> (its arguments and the model flags only it has, where it hands settings on, the fields those set)."""
    translate = ["translate", str(mixed_folder), "-m", str(negate_onnx), "-o", str(tmp_path / "out")]
    generate = ["generate", "-m", str(noise_model(tmp_path / "dcgan.onnx")), "-o", str(tmp_path / "samples")]
    return {
        "translate": (
            [*translate, "-b", "3", "--size", "64", "--tile", "128"],
            "gantx.cli.translate.Translator",
            {"batch_size": 3, "size": 64, "tile": 128},
        ),
        "bench": (  # its batch sizes are --batch-sizes, the models opened for each
            ["bench", "-m", str(negate_onnx), "--batch-sizes", "3", "--size", "64", "--tile", "128"],
            "gantx.cli.bench.Translator",
            {"batch_size": 3, "size": 64, "tile": 128},
        ),
        "generate": ([*generate, "-b", "3"], "gantx.cli.generate.Generator", {"batch_size": 3}),
        "demo": (["demo", "-o", str(tmp_path / "demo")], "gantx.cli.demo.Translator", {}),
        "serve": (["serve", "-m", str(negate_onnx), "--tile", "128"], "gantx.server.serve", {"tile": 128}),
    }


@pytest.mark.parametrize("verb", ["translate", "bench", "generate", "demo", "serve"])
def test_every_verb_builds_the_same_settings_from_the_same_flags(
    verb, tmp_path, negate_onnx, mixed_folder, monkeypatch
):
    if verb == "serve":
        pytest.importorskip("fastapi")
    arguments, handed_to, own = verbs(tmp_path, negate_onnx, mixed_folder)[verb]
    captured: list[RunSettings] = []
    if verb == "serve":

        def serve(models, serving, host, port) -> None:
            captured.append(serving.run)
            raise Handed

        monkeypatch.setattr(handed_to, serve)
    else:
        monkeypatch.setattr(handed_to, record_settings(captured))
    with pytest.raises(Handed):
        app([*arguments, *COMMON_FLAGS], standalone_mode=False)
    defaults = {"batch_size": DEFAULT_BATCH} if verb == "generate" else {}  # generate's own default: a larger batch
    assert captured == [RunSettings(**{**defaults, **COMMON, **own})]


def test_every_settings_field_has_exactly_one_option():
    fields = [field.name for field in dataclasses.fields(RunSettings)]
    assert sorted(RUN_OPTIONS) == sorted(fields)
    options = {name: get_args(annotation)[1] for name, annotation in RUN_OPTIONS.items()}
    # In Annotated, typer keeps the first declaration there; a switch with an off form declares "--on/--no-on".
    flags = {name: option.default.split("/")[0] for name, option in options.items()}
    assert flags == {name: f"--{name.replace('_', '-')}" for name in fields}  # each named as its field


@pytest.mark.parametrize("provider", ["cpu", "openvino"])
def test_cuda_graphs_on_an_engine_without_them_are_refused_where_the_settings_are_made(provider):
    with pytest.raises(ProviderError) as refused:
        RunSettings(provider=provider, cuda_graph=True)
    assert str(refused.value) == "CUDA graphs need the CUDA or TensorRT provider"
