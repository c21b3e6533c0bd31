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

HELP = (
    "Exact MACs, FLOPs, parameters and memory of convolution layers and network drafts.\n\n"
    "Conventions: MACs are multiply-accumulates of convolution and linear layers, bias excluded (as in "
    "torchvision's published figures); FLOPs are 2 per MAC plus bias adds and the elementwise work of batch norm, "
    "activations, pooling, adds, upsampling and softmax; params are trainable (batch norm's running statistics "
    "are buffers); shapes are channels-first without the batch (CxHxW); K M G are 10^3 10^6 10^9, KiB MiB GiB "
    "2^10 2^20 2^30. Every formula: docs/conventions.md in the source repository.\n\n"
    "Exit codes: 0 ok, 1 a check or budget failed, 2 invalid spec or usage."
)

app = typer.Typer(
    name="convcost",
    help=HELP,
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion: start-up cost measured in benchmarks/run.py
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        sys.stdout.write(f"convcost {__version__}\n")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print convcost's version and exit.",
                                 callback=_print_version, is_eager=True),
) -> None:
    """Exact MACs, FLOPs, parameters and memory of convolution layers and network drafts."""


def one_line(text: str) -> str:
    """A message from user input stays one line: newlines are shown escaped."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def fail(error: ConvcostError | str, code: int = EXIT_INVALID) -> NoReturn:
    """One line on stderr, then exit with ``code``."""
    message = error.format() if isinstance(error, SpecError) else str(error)
    sys.stderr.write(f"convcost: error: {one_line(message)}\n")
    raise typer.Exit(code)
