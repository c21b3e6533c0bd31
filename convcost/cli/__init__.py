"""The command line: arguments -> spec -> network -> costs -> rendering.

One module per command; each registers itself on the typer ``app``. Only this
package prints, exits or touches typer. Exit codes: 0 success, 1 a budget
failed, 2 an invalid spec or usage error (or any unexpected error, in one line),
74 the result could not be written (cli/app.py turns every exception into one).
"""

from __future__ import annotations

from . import analyze, check, compare, export, hardware, import_, schema, sweep  # noqa: F401  (each registers its command)
from .app import EXIT_FAILED, EXIT_INVALID, EXIT_IO, EXIT_OK, app

__all__ = ["EXIT_FAILED", "EXIT_INVALID", "EXIT_IO", "EXIT_OK", "app", "main"]


def main() -> None:
    """Console-script entry point."""
    app()
