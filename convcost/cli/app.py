"""The typer app, the exit codes, and the one way a command fails: one line on stderr."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

from ..errors import ConvcostError, SpecError

__all__ = ["EXIT_FAILED", "EXIT_INVALID", "EXIT_OK", "app", "fail", "one_line"]

EXIT_OK = 0
EXIT_FAILED = 1  # a check or budget failed
EXIT_INVALID = 2  # an invalid spec or usage

app = typer.Typer(
    name="convcost",
    help="Exact MACs, FLOPs, parameters and memory of convolution layers and network drafts.\n\n"
    "Exit codes: 0 ok, 1 a check or budget failed, 2 invalid spec or usage.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root() -> None:
    """Exact MACs, FLOPs, parameters and memory of convolution layers and network drafts."""


def one_line(text: str) -> str:
    """A message from user input stays one line: newlines are shown escaped."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def fail(error: ConvcostError | str, code: int = EXIT_INVALID) -> NoReturn:
    """One line on stderr, then exit with ``code``."""
    message = error.format() if isinstance(error, SpecError) else str(error)
    sys.stderr.write(f"convcost: error: {one_line(message)}\n")
    raise typer.Exit(code)
