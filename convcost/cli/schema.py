"""``convcost schema``: the JSON Schema of the spec format (or of the JSON report)."""

from __future__ import annotations

import typer

from ..errors import ConvcostError, UsageError
from ..schema import report_schema, spec_schema
from .app import app, fail
from .options import OutputOptions, with_option_groups
from .output import emit


@app.command()
@with_option_groups
def schema(
    report: bool = typer.Option(False, "--report", help="The schema of `analyze --json` instead of the spec's."),
    target: OutputOptions = OutputOptions(),
) -> None:
    """Print the JSON Schema of the spec format, for editors and CI validators.

    Save it and point your editor at it, e.g. with the yaml-language-server
    modeline as the first line of a spec:
    # yaml-language-server: $schema=./convcost.schema.json
    """
    try:
        if target.explicit not in (None, "json") or target.implied not in (None, "json"):
            asked = f"--format {target.explicit}" if target.explicit else f"--output {target.output}"
            raise UsageError(f"a schema is JSON; {asked} asks for {target.format}")
        emit("json", report_schema() if report else spec_schema(), output=target.output)
    except ConvcostError as error:
        fail(error)
