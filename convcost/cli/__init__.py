"""The command line: arguments -> spec -> network -> costs -> rendering.

One module per command; each registers itself on the shared typer ``app``.
Only this package prints, exits or touches typer. Exit codes: 0 success,
1 a check or budget failed, 2 an invalid spec or usage error.
"""

from __future__ import annotations

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
    app()
