"""`gantx info MODEL`: what a model is and where it can run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gantx import openvino_engine
from gantx.cli.options import print_table, table_console
from gantx.extras import ort
from gantx.providers import providers_that_start
from gantx.session import engine_label, open_model
from gantx.settings import RunSettings


def info(model: Annotated[Path, typer.Argument(help="A gantx ONNX model.", show_default=False)]) -> None:
    """Print a model's gantx metadata, its inputs and outputs, the available engines and the one it runs on."""
    session, model_info = open_model(model, RunSettings())  # as translate would run it: auto, auto
    metadata = model_info.metadata
    console = table_console()
    table = Table("key", "value", title=str(model), title_justify="left")
    for key in sorted(metadata):
        table.add_row(key, metadata[key])
    print_table(console, table)
    for label, nodes in (("input", session.get_inputs()), ("output", session.get_outputs())):
        for node in nodes:
            console.print(f"{label}: {node.name} {node.type} {node.shape}")
    console.print(f"providers in this onnxruntime build: {', '.join(ort.get_available_providers())}")
    console.print(f"providers that start on this machine: {', '.join(providers_that_start())}")
    console.print(f"OpenVINO: {openvino_engine.summary()}", markup=False, highlight=False)
    console.print(f"runs on: {engine_label(session)} (--provider auto --precision auto)", highlight=False)
