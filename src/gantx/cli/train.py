"""`gantx train FAMILY --out RUN_DIR [OPTIONS]`: train dcgan, cgan, pix2pix, cyclegan or dtn.

`--resume` continues a run exactly. Each family is a subcommand whose options are generated from its config
dataclass (gantx.trainers.config, which needs no torch): one `--name` per
field with its type, default and line of help, booleans as `--flag/--no-flag`,
`Literal` fields as choices. So `gantx train FAMILY --help` lists every option
and typer parses and type-checks them. The training itself needs the torch side
(`pip install "gantx[train]"`), imported only when a command runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gantx.errors import GantxError
from gantx.trainers.config import CONFIGS, Setting, TrainConfig, settings

if TYPE_CHECKING:
    from gantx.trainers.loop import Phase, Position

app = typer.Typer(
    name="train",
    help="Train a GAN family into a run directory (needs PyTorch: pip install 'gantx[train]'). "
    "`gantx train FAMILY --help` lists its options.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _option(item: Setting) -> inspect.Parameter:
    """A config field as a typer option: `--name` with the field's type, default and help.

    The type of a Literal field gives choices, of a bool field --flag/--no-flag.
    """
    names = (
        ("--" + item.name.replace("_", "-"), item.short) if item.short else ()
    )  # typer names the rest after the field
    return inspect.Parameter(
        item.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=item.default,
        annotation=Annotated[item.kind, typer.Option(*names, help=item.help)],
    )


def _family_command(family: str) -> Callable[..., None]:
    """`gantx train FAMILY`: the verb's own options, then one option per field of the family's config."""

    def command(
        ctx: typer.Context,
        out: Annotated[
            Path,
            typer.Option("--out", "-o", help="Run directory: config, checkpoints, logs, samples.", show_default=False),
        ],
        resume: Annotated[
            bool,
            typer.Option(
                "--resume",
                help="Continue the run in --out from latest.pt "
                "(its config stands; only --epochs, --decay-epochs, --max-steps may change).",
            ),
        ] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
        **config: Any,
    ) -> None:
        # Only the values typed count: defaults are not changes, which --resume must be able to refuse.
        given = {name: value for name, value in config.items() if ctx.get_parameter_source(name).name == "COMMANDLINE"}
        train_family(family, out, given, resume, quiet)

    verb = [
        p.replace(kind=p.KEYWORD_ONLY)
        for p in inspect.signature(command, eval_str=True).parameters.values()
        if p.kind is not p.VAR_KEYWORD
    ]
    command.__signature__ = inspect.Signature(verb + [_option(item) for item in settings(CONFIGS[family])])  # type: ignore[attr-defined]
    command.__doc__ = CONFIGS[family].__doc__
    return command


def train_family(family: str, out: Path, options: dict[str, Any], resume: bool, quiet: bool) -> None:
    """Run the training and print one summary line."""
    try:
        from gantx.trainers.train import run
    except ImportError as error:
        raise GantxError(f'gantx train needs PyTorch ({error.name} is missing): pip install "gantx[train]"') from None
    result = run(family, out, options, resume=resume, quiet=quiet)
    position, phase = result.position, result.family.phases[result.position.phase]
    if result.complete:
        where = f"step {position.step}, {position.epoch_label(phase.epochs)} of phase {phase.name}"
        extend = _how_to_extend(result.family.config, position, phase)
        typer.echo(
            f"{family}: {out} is complete at {where}; nothing trained, latest.pt unchanged. To train on, {extend}"
        )
        return
    typer.echo(
        f"{family}: {position.step} step{'s' * (position.step != 1)}, "
        f"{position.epoch_label(phase.epochs)} of phase {phase.name}, "
        f"{result.family.last_rate:.3g} img/s; "
        f"checkpoint {out / 'latest.pt'} (gantx export {out / 'latest.pt'} -o MODEL.onnx)"
    )


def _how_to_extend(config: TrainConfig, position: Position, phase: Phase) -> str:
    """What raises the stop that ended a run: the stops count from the start, so a larger total, not an increment."""
    larger = []
    if position.epoch >= phase.epochs:
        larger.append(f"--epochs above {config.epochs}")
    if config.max_steps and position.phase_steps >= config.max_steps:
        larger.append(f"--max-steps above {config.max_steps} (or 0: no limit)")
    return f"add --resume with {' and '.join(larger)}; --epochs and --max-steps are totals, not amounts to add."


for _family in CONFIGS:
    app.command(_family)(_family_command(_family))
