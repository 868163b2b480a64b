"""The `gantx` command line: one module per verb, thin over the library."""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Annotated

import typer
from PIL import Image
from typer.exceptions import TyperException

from gantx import __version__
from gantx.cli import bench, cache, demo, export, generate, info, models, serve, train, translate
from gantx.errors import EXIT_INTERRUPTED, EXIT_USAGE, GantxError, interrupted, report_error

app = typer.Typer(
    name="gantx",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's help layout: option names are never cut short, and flags show no value
)


def _print_version(wanted: bool) -> None:
    """--version is eager: it answers before typer asks for a verb."""
    if wanted:
        typer.echo(f"gantx {__version__}")
        raise typer.Exit()


@app.callback()
def gantx(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print gantx's version and exit.")
    ] = False,
) -> None:
    """Train, export and run GAN image translators."""


app.command("translate")(translate.translate)
app.command("info")(info.info)
app.command("bench")(bench.bench)
app.command("export")(export.export)
app.command("demo")(demo.demo)
app.command("generate")(generate.generate)
app.command("models")(models.models)
app.command("cache")(cache.cache)
app.command("serve")(serve.serve)
app.add_typer(train.app, name="train")


def main() -> None:
    """Entry point: user errors become one line on stderr and a documented exit code."""
    logging.basicConfig(format="%(message)s", level=logging.WARNING)
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # gantx refuses such images itself, with one line
    warnings.filterwarnings(
        "ignore", category=UserWarning, module=r"PIL\."
    )  # damaged files: each is decoded or named as failed
    try:
        code = app(standalone_mode=False)
        if code == EXIT_INTERRUPTED:  # typer turns a Ctrl-C inside a verb into this code, silently
            interrupted()
    except (KeyboardInterrupt, typer.Abort):  # a Ctrl-C while typer builds the command; EOF on stdin
        code = interrupted()
    except TyperException as error:  # typer's (vendored click) usage errors: bad or missing options
        if (
            type(error).__name__ == "NoArgsIsHelpError"
        ):  # a bare `gantx` or `gantx train` (told apart by name, as typer does)
            print(error.format_message())
        else:
            print(f"gantx: error: {error.format_message()}".replace("\n", " "), file=sys.stderr)
        code = EXIT_USAGE
    except GantxError as error:
        code = report_error(error)
    except OSError as error:  # the system refused: an output folder under a file, a full disk, no permission
        where = f"{error.filename}: " if error.filename else ""
        print(f"gantx: error: {where}{error.strerror or error}", file=sys.stderr)
        code = EXIT_USAGE
    sys.exit(code if isinstance(code, int) else 0)
