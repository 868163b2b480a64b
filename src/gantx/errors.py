"""Errors the CLI turns into one line and an exit code, never a traceback."""

from __future__ import annotations

import sys

EXIT_OK = 0
EXIT_FAILED_FILES = 1  # some inputs could not be translated; the rest were
EXIT_USAGE = 2  # bad options, missing or unusable model: nothing was done
EXIT_INTERRUPTED = 130


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (an OSError's or FFmpeg's words, without errno), else its type's name.

    How gantx quotes the errors of other libraries in its one-line messages.
    """
    text = str(getattr(error, "strerror", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def interrupted() -> int:
    """Say that the run was interrupted (Ctrl-C, or SIGTERM where gantx treats it so); the exit code to end with."""
    print("gantx: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


def report_error(error: GantxError) -> int:
    """Say a user's error in the CLI's one line; the exit code to end with."""
    print(f"gantx: error: {error}", file=sys.stderr)
    return error.exit_code


class GantxError(Exception):
    """A problem the user can fix; its message is a single line."""

    exit_code = EXIT_USAGE


class ModelError(GantxError):
    """The model file is missing, unreadable or breaks the model contract."""


class ProviderError(GantxError):
    """An execution provider was asked for that cannot run here."""


class InputError(GantxError):
    """One input (an image or a video) could not be read; others may go on."""

    exit_code = EXIT_FAILED_FILES
