"""Stage 5: results -> output, one module per result (analysis, comparison, sweep, check).

Each module has one read-only table from output format to renderer; a
renderer takes the result and a :class:`View` and returns a JSON-ready dict,
text or a Rich renderable. Nothing here prints.
"""

from .common import FORMATS, View

__all__ = ["FORMATS", "View"]
