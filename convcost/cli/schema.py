"""``convcost schema``: the JSON Schema of the spec format (or of the JSON report)."""

from __future__ import annotations

from typing import Optional

import typer

from ..errors import ConvcostError
from .common import OutputOpt, app, emit, fail


@app.command()
def schema(
    report: bool = typer.Option(False, "--report", help="The schema of `analyze --json` instead of the spec's."),
    output: Optional[str] = OutputOpt,
) -> None:
    """Print the JSON Schema of the spec format, for editors and CI validators.

    Save it and point your editor at it, e.g. with the yaml-language-server
    modeline as the first line of a spec:
    # yaml-language-server: $schema=./convcost.schema.json
    """
    from ..schema import report_schema, spec_schema

    try:
        emit("json", lambda _fmt: report_schema() if report else spec_schema(), output=output)
    except ConvcostError as error:
        fail(error)
