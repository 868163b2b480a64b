"""The `gantx` command line: one module per verb, thin over the library."""

from __future__ import annotations

import logging
import sys
import warnings

import typer
from PIL import Image
from typer.exceptions import TyperException

from gantx.cli import bench, cache, demo, export, generate, info, models, serve, train, translate
from gantx.errors import EXIT_INTERRUPTED, EXIT_USAGE, GantxError, interrupted

app = typer.Typer(
    name="gantx",
    help="Train, export and run GAN image translators.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
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
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")  # damaged files: each is decoded or named as failed
    try:
        code = app(standalone_mode=False)
        if code == EXIT_INTERRUPTED:  # typer turns a Ctrl-C inside a verb into this code, silently
            interrupted()
    except KeyboardInterrupt:  # a Ctrl-C while typer builds the command
        code = interrupted()
    except TyperException as error:  # typer's (vendored click) usage errors: bad or missing options
        message = error.format_message().replace("\n", " ")
        if message:  # none when a bare `gantx` or `gantx train` has just printed its help
            print(f"gantx: error: {message}", file=sys.stderr)
        code = EXIT_USAGE
    except GantxError as error:
        print(f"gantx: error: {error}", file=sys.stderr)
        code = error.exit_code
    except OSError as error:  # the system refused: an output folder under a file, a full disk, no permission
        where = f"{error.filename}: " if error.filename else ""
        print(f"gantx: error: {where}{error.strerror or error}", file=sys.stderr)
        code = EXIT_USAGE
    sys.exit(code if isinstance(code, int) else 0)
