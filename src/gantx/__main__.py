"""The `gantx` command (and `python -m gantx`).

This module imports nothing heavy, so the console script reaches `main` at
once; the CLI, ONNX Runtime and the rest are imported inside it, where a
Ctrl-C that lands while they load ends as any other Ctrl-C does.
"""

from __future__ import annotations

import sys

from gantx.errors import GantxError, interrupted, report_error


def caused_by_ctrl_c(error: BaseException | None) -> bool:
    """Whether `error` is a Ctrl-C or came of one: a C extension interrupted while it initialises
    raises ImportError("initialization failed") from the KeyboardInterrupt (ONNX Runtime's does)."""
    while error is not None:
        if isinstance(error, KeyboardInterrupt):
            return True
        error = error.__cause__ or error.__context__
    return False


def main() -> None:
    """Run the CLI; a Ctrl-C or a missing engine before it is ready is one line, never a traceback."""
    try:
        from gantx.cli import main as run_cli

        run_cli()
    except (KeyboardInterrupt, ImportError) as error:
        if not caused_by_ctrl_c(error):
            raise
        sys.exit(interrupted())
    except GantxError as error:  # the CLI's modules need an engine that is not installed (gantx.extras)
        sys.exit(report_error(error))


if __name__ == "__main__":
    main()
