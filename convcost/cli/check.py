"""``convcost check``: validate specs (every problem at once) and hold them to budgets, for CI."""

from __future__ import annotations

import sys
from typing import Any, Optional

import typer

from ..errors import ConvcostError, UsageError
from .common import (
    BatchOpt, DtypeOpt, FormatOpt, JsonOpt, OutputOpt, app, emit, fail, one_line, output_format,
)

_BUDGET = "Budget (overrides the spec's budget: section)"
_QUANTITY = "SI (K M G T = 10^3..) or binary (Ki Mi Gi) suffixes, exact: 1.5G, 7M"


@app.command()
def check(
    specs: list[str] = typer.Argument(..., metavar="SPEC...", help="Spec files (YAML); - for stdin.",
                                      show_default=False),
    max_macs: Optional[str] = typer.Option(None, "--max-macs", metavar="N", rich_help_panel=_BUDGET,
                                           help=f"Most MACs (bias excluded). {_QUANTITY}.", show_default=False),
    max_flops: Optional[str] = typer.Option(None, "--max-flops", metavar="N", rich_help_panel=_BUDGET,
                                            help="Most FLOPs.", show_default=False),
    max_params: Optional[str] = typer.Option(None, "--max-params", metavar="N", rich_help_panel=_BUDGET,
                                             help="Most trainable parameters.", show_default=False),
    max_weight_bytes: Optional[str] = typer.Option(None, "--max-weight-bytes", metavar="BYTES",
                                                   rich_help_panel=_BUDGET, show_default=False,
                                                   help="Most parameter bytes at --dtype: 25MB, 16MiB."),
    max_peak_memory: Optional[str] = typer.Option(None, "--max-peak-memory", metavar="BYTES",
                                                  rich_help_panel=_BUDGET, show_default=False,
                                                  help="Most activation bytes alive at once (inference): 8MiB."),
    dtype: str = DtypeOpt,
    batch: int = BatchOpt,
    as_json: bool = JsonOpt,
    fmt: Optional[str] = FormatOpt,
    output: Optional[str] = OutputOpt,
) -> None:
    """Validate specs and check their budgets; every problem is listed as file:line:col: layer 'name': message.

    Exit codes: 0 every spec valid and within budget, 1 a budget exceeded,
    2 a spec invalid or a usage error (2 wins). Problems go to stderr, one per
    line; the summary (a line per spec) to stdout or --output.

    Example: convcost check drafts/*.yaml --max-macs 1.5G --max-params 7M
    """
    from ..budget import budget_from_options
    from ..check import check_file, exit_code
    from ..units import DTYPE_BYTES

    try:
        chosen = output_format(as_json, fmt)
        limits = budget_from_options({"max_macs": max_macs, "max_flops": max_flops, "max_params": max_params,
                                      "max_weight_bytes": max_weight_bytes, "max_peak_memory": max_peak_memory})
        if dtype not in DTYPE_BYTES:
            raise UsageError(f"--dtype must be one of {', '.join(DTYPE_BYTES)}, got {dtype!r}")
        if batch < 1:
            raise UsageError(f"--batch must be >= 1, got {batch}")
        if specs.count("-") > 1:
            raise UsageError("standard input (-) can be given once")
        if output is not None and output != "-":
            from .common import check_output

            check_output(output, specs)
    except ConvcostError as error:
        fail(error)
    results = [check_file(path, limits, batch=batch, dtype=dtype) for path in specs]
    for result in results:
        for problem in result.problems:
            sys.stderr.write(one_line(problem.format()) + "\n")
    code = exit_code(results)
    try:
        emit(chosen, lambda form: render_check(results, form, code), output=output, protect=specs)
    except ConvcostError as error:
        fail(error)
    raise typer.Exit(code)


def render_check(results: Any, fmt: str, code: int) -> Any:
    if fmt == "json":
        from ..render_check import check_dict

        return check_dict(results, code)
    if fmt == "markdown":
        from ..render_markdown import check_markdown

        return check_markdown(results)
    if fmt == "csv":
        from ..render_csv import check_csv

        return check_csv(results)
    from ..render_check import check_lines

    return check_lines(results)
