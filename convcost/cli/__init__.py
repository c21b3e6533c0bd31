"""The command line: arguments -> spec -> network -> costs -> rendering.

One module per command; each registers itself on the shared typer ``app``.
Only this package prints, exits or touches typer. Exit codes: 0 success,
1 a check or budget failed, 2 an invalid spec or usage error.
"""

from __future__ import annotations

import copy
import sys
from typing import Any

from . import analyze as _analyze  # noqa: F401  (registers the command)
from . import check as _check  # noqa: F401  (registers the command)
from . import schema as _schema  # noqa: F401  (registers the command)
from . import compare as _compare  # noqa: F401  (registers the command)
from . import sweep as _sweep  # noqa: F401  (registers the command)
from .common import EXIT_FAILED, EXIT_INVALID, EXIT_OK, app

__all__ = ["EXIT_FAILED", "EXIT_INVALID", "EXIT_OK", "app", "main"]


def main() -> None:
    """Console-script entry point."""
    import gc

    # A short run over acyclic data: rare collections (as mypy does) save up to half the
    # time on specs of 100,000 layers, where full passes re-scan every layer object.
    gc.set_threshold(200_000, 30, 30)
    _app_for(sys.argv[1:])()


def _app_for(args: list[str]) -> Any:
    """``app`` holding only the command ``args`` name, else the whole ``app``.

    typer builds the click command of every registered command before parsing
    (about 3 ms each, most of it reading the functions' signatures); a run uses
    one. Help, usage errors and exit codes of that command are unchanged; an
    unknown or missing command name falls back to the whole app.
    """
    from typer.main import get_command_name

    name = args[0] if args else None
    chosen = [info for info in app.registered_commands
              if (info.name or get_command_name(info.callback.__name__)) == name]
    if not chosen:
        return app
    single = copy.copy(app)
    single.registered_commands = chosen
    return single
