"""Options shared by several verbs, defined once."""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import sys
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Annotated, Any, get_args

import typer
from rich.console import Console
from rich.table import Table

from gantx.settings import ComputePrecision, Provider, RunSettings

MODEL_HELP = "A gantx ONNX model (see docs/model-format.md) or a bundled model's name."
ModelOption = Annotated[Path, typer.Option("--model", "-m", help=MODEL_HELP, show_default=False)]
ModelsOption = Annotated[
    list[Path], typer.Option("--model", "-m", help=f"{MODEL_HELP} Repeat to compare models.", show_default=False)
]
# How a model runs: one option per RunSettings field, defined here once; `run_options` gives them to a verb.
RUN_OPTIONS: dict[str, Any] = {
    "provider": Annotated[
        str,
        typer.Option(
            "--provider",
            "-p",
            help=f"Execution provider: {', '.join(get_args(Provider))}. auto tries TensorRT, then CUDA, then the CPU"
            " (OpenVINO or ONNX Runtime, whichever runs the model faster here).",
        ),
    ],
    "batch_size": Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Images per model call.")],
    "size": Annotated[
        str, typer.Option("--size", "-s", help="auto (the image's own size), N (shorter side) or HxW (forced).")
    ],
    "tile": Annotated[
        int | None,
        typer.Option(
            "--tile",
            min=1,
            help="Run a fully convolutional model on overlapping N x N tiles: bounded memory for any image size.",
            show_default=False,
        ),
    ],
    "threads": Annotated[
        int | None, typer.Option("--threads", min=1, help="Intra-op threads (default: one per core).")
    ],
    "precision": Annotated[
        str,
        typer.Option(
            "--precision",
            help=f"What the model computes at: {', '.join(get_args(ComputePrecision))}. auto: bf16 on OpenVINO where"
            " the CPU has it natively, fp16 on TensorRT, else fp32. fp32 is exact.",
        ),
    ],
    "cuda_graph": Annotated[
        bool,
        typer.Option("--cuda-graph", help="CUDA/TensorRT: capture and replay CUDA graphs (best with one image size)."),
    ],
    "io_binding": Annotated[
        bool,
        typer.Option(
            "--io-binding/--no-io-binding", help="CUDA/TensorRT: bind each batch on the device, one copy each way."
        ),
    ],
}


def run_options(
    *, exclude: Collection[str] = (), helps: Mapping[str, str] | None = None, base: RunSettings = RunSettings()
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a verb the RunSettings options (all but `exclude`), handed to it built into one `settings` argument.

    `base` holds the verb's own defaults (generate's: gantx.generator.generator_settings()),
    `helps` its own help for options that mean more there (bench's --size);
    an excluded field keeps its default, or the verb sets it with `replace`.
    """
    names = [field.name for field in dataclasses.fields(RunSettings) if field.name not in exclude]
    annotations = {name: _with_help(RUN_OPTIONS[name], (helps or {}).get(name)) for name in names}

    def wrap(verb: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(verb, eval_str=True)
        own = [parameter for parameter in signature.parameters.values() if parameter.name != "settings"]
        added = [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=_as_cli_value(getattr(base, name)),
                annotation=annotations[name],
            )
            for name in names
        ]

        @functools.wraps(verb)
        def with_settings(**values: Any) -> None:
            settings = base.replace(**{name: values.pop(name) for name in names})
            return verb(**values, settings=settings)

        parameters = [*own, *added]
        with_settings.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        with_settings.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
        return with_settings

    return wrap


def _with_help(annotation: Any, help_text: str | None) -> Any:
    """An option's annotation with its help replaced (None: as defined)."""
    if help_text is None:
        return annotation
    kind, option = get_args(annotation)
    option = copy.copy(option)
    option.help = help_text
    return Annotated[kind, option]


def _as_cli_value(value: Any) -> Any:
    """A settings value as its option writes it: (H, W) is HxW."""
    return "x".join(map(str, value)) if isinstance(value, tuple) else value


PIPED_WIDTH = 240  # wide enough that piped tables keep one row per line


def table_console() -> Console:
    """Where tables and the lines beside them go: the terminal's width, or PIPED_WIDTH when piped."""
    return Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)


def print_table(console: Console, table: Table) -> None:
    """Print `table`; piped, without its outer frame and with no line padded out with blanks (rich pads every cell)."""
    if console.is_terminal:
        console.print(table)
        return
    table.show_edge = False
    with console.capture() as captured:
        console.print(table)
    console.out("\n".join(line.rstrip() for line in captured.get().splitlines()), highlight=False)
