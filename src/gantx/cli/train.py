"""`gantx train FAMILY --out RUN_DIR`: train dcgan, cgan, pix2pix, cyclegan or dtn; `--resume` continues a run exactly.

Needs the torch side (`pip install "gantx[train]"`), imported only when the verb runs.
Family options (`--cycle-weight 5`, `--no-flip`, ...) are the fields of the
family's config dataclass (trainers/config.py); `gantx train FAMILY --help`
lists them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gantx.errors import GantxError

FAMILIES = ("dcgan", "cgan", "pix2pix", "cyclegan", "dtn")
CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True}


def train(
    ctx: typer.Context,
    family: Annotated[str, typer.Argument(help=f"One of {', '.join(FAMILIES)}.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory: config, checkpoints, logs, samples.", show_default=False)],
    data: Annotated[
        Optional[str], typer.Option("--data", help="Folder or built-in: fashion-mnist[:classes], fashion-mnist-edges, fashion-mnist-m (domain A).")
    ] = None,
    data_b: Annotated[Optional[str], typer.Option("--data-b", help="Domain B (cyclegan, dtn).")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="Epochs at the full learning rate.")] = None,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", min=0, help="Stop every phase after N optimiser steps.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=0, help="At most N samples per domain.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", "-b", min=1)] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", min=0)] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="auto, cpu or cuda.")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from latest.pt (its config stands; --epochs/--max-steps may change).")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train a GAN family; every family option is `--name value` of its config (see trainers/config.py)."""
    if family not in FAMILIES:
        raise GantxError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    try:
        from gantx.trainers.config import parse_options
        from gantx.trainers.train import run
    except ImportError as error:
        raise GantxError(f'gantx train needs PyTorch ({error.name} is missing): pip install "gantx[train]"') from None
    given = {"data": data, "data_b": data_b, "epochs": epochs, "max_steps": max_steps, "limit": limit, "batch_size": batch_size, "seed": seed, "device": device}
    options = {key: value for key, value in given.items() if value is not None}
    options.update(parse_options(family, list(ctx.args)))
    result = run(family, out, options, resume=resume, quiet=quiet)
    position = result.position
    typer.echo(
        f"{family}: {position.step} steps, epoch {position.epoch} of phase {result.family.phases[position.phase].name}, "
        f"{result.family.last_rate:.0f} img/s; checkpoint {out / 'latest.pt'} (gantx export {out / 'latest.pt'} -o MODEL.onnx)"
    )
