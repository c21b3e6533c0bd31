"""The typer app, the exit codes, and the one way a command fails: one line on stderr.

Every exception that escapes a command ends here (:class:`_Guarded`), whether the
command runs as a process or under typer's ``CliRunner``: a ``ConvcostError`` is
its message, a failed write of the result (a full disk, a closed pipe) is exit
74, a click usage error is one line, and anything else is one line naming the
exception (a bug) with exit 2. Exit 1 means only "a budget failed".
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from ..errors import ConvcostError, OutputError, SpecError, printable

__all__ = ["EXIT_FAILED", "EXIT_INVALID", "EXIT_IO", "EXIT_OK", "app", "fail", "one_line"]

EXIT_OK = 0
EXIT_FAILED = 1  # a budget failed, and nothing else
EXIT_INVALID = 2  # an invalid spec or usage
EXIT_IO = 74  # EX_IOERR (sysexits.h): the result could not be written (full disk, closed pipe)

try:  # typer 0.28 vendors click; earlier versions use click itself
    _click = importlib.import_module("typer._click.exceptions")
except ImportError:  # pragma: no cover
    _click = importlib.import_module("click.exceptions")
_CLICK_ERROR: type[Exception] = _click.ClickException
_CLICK_ABORT: tuple[type[BaseException], ...] = (typer.Abort, getattr(_click, "Abort", typer.Abort))
#: Exceptions that already carry their exit code or message: click's, and the interpreter's own exits.
_PASS_THROUGH: tuple[type[BaseException], ...] = (typer.Exit, getattr(_click, "Exit", typer.Exit), *_CLICK_ABORT,
                                                  _CLICK_ERROR, KeyboardInterrupt, SystemExit)


def one_line(text: str) -> str:
    """A message from user input stays one line, with no control characters: they are shown escaped."""
    return printable(text)


def _say(line: str) -> None:
    """A line on stderr; if stderr itself cannot be written, nothing more can be said."""
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _explain(error: ConvcostError | str) -> int:
    """Say what went wrong on one line; the exit code it calls for (74 for an :class:`OutputError`, else 2)."""
    message = error.format() if isinstance(error, SpecError) else str(error)
    _say(f"convcost: error: {one_line(message)}")
    return EXIT_IO if isinstance(error, OutputError) else EXIT_INVALID


def fail(error: ConvcostError | str, code: int | None = None) -> NoReturn:
    """One line on stderr, then exit with ``code`` (by default 74 for an :class:`OutputError`, else 2)."""
    explained = _explain(error)
    raise typer.Exit(explained if code is None else code)


def _settle_stdout() -> None:
    """Flush stdout now; if that fails, point it at /dev/null so the interpreter's own flush at exit
    cannot fail again (and print "Exception ignored" after our one line)."""
    try:
        sys.stdout.flush()
        return
    except (OSError, ValueError):
        pass
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError):  # no file descriptor (CliRunner, a test's stream): nothing to flush at exit
        pass


def _report(error: BaseException) -> int:
    """One line on stderr for an exception that escaped a command; returns the exit code."""
    if isinstance(error, BrokenPipeError):  # the reader went away (`| head`): quietly, the same for every format
        code = EXIT_IO
    elif isinstance(error, ConvcostError):
        code = _explain(error)
    elif isinstance(error, OSError):
        _say(f"convcost: error: input/output error: {one_line(error.strerror or str(error))}")
        code = EXIT_IO
    else:
        _say(f"convcost: error: internal error (please report it): {type(error).__name__}: {one_line(str(error))}")
        code = EXIT_INVALID
    if code == EXIT_IO:
        _settle_stdout()
    return code


class _Guarded(TyperGroup):
    """The command group with convcost's error handling around every command (see the module docstring)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            try:
                return super().invoke(ctx)
            finally:
                sys.stdout.flush()  # a full disk or closed pipe shows here, not in the interpreter's exit
        except _PASS_THROUGH:
            raise
        except BaseException as error:  # noqa: BLE001  (the one place every other exception ends)
            raise typer.Exit(_report(error)) from None

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, windows_expand_args: bool = True,
             **extra: Any) -> Any:
        try:
            result = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
            code = result if isinstance(result, int) and not isinstance(result, bool) else EXIT_OK
            try:
                sys.stdout.flush()
            except BaseException as error:  # noqa: BLE001
                code = _report(error)
        except _CLICK_ERROR as error:
            code = _usage_error(error)
        except _CLICK_ABORT:
            _say("convcost: error: aborted")
            code = EXIT_INVALID
        if standalone_mode:
            sys.exit(code)
        return code


def _usage_error(error: Any) -> int:
    """A click usage error (unknown option, bad value) as one line; ``convcost`` alone still shows its help."""
    if type(error).__name__ == "NoArgsIsHelpError":
        error.show()
        return int(error.exit_code)
    context = getattr(error, "ctx", None)
    hint = f" (see '{context.command_path} --help')" if context is not None else ""
    _say(f"convcost: error: {one_line(error.format_message())}{hint}")
    return EXIT_INVALID


HELP = (
    "Exact MACs, FLOPs, parameters and memory of convolution layers and network drafts.\n\n"
    "Conventions: MACs are multiply-accumulates of convolution and linear layers, bias excluded (as in "
    "torchvision's published figures); FLOPs are 2 per MAC plus bias adds and the elementwise work of batch norm, "
    "activations, pooling, adds, upsampling and softmax; params are trainable (batch norm's running statistics "
    "are buffers); shapes are channels-first without the batch (CxHxW); K M G are 10^3 10^6 10^9, KiB MiB GiB "
    "2^10 2^20 2^30. Every formula: docs/conventions.md in the source repository.\n\n"
    "Exit codes: 0 ok, 1 a check or budget failed, 2 invalid spec or usage, 74 the result could not be written."
)

app = typer.Typer(
    name="convcost",
    cls=_Guarded,
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
