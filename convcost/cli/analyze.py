"""``convcost analyze``: the cost of a spec or of one layer given by flags."""

from __future__ import annotations

from typing import Any, Optional

from ..errors import ConvcostError, UsageError
from .common import (
    BatchOpt, BiasOpt, DepthOpt, DilationOpt, DtypeOpt, ExactOpt, FormatOpt, GroupsOpt, InputOpt, JsonOpt, KernelOpt,
    KindOpt, OutOpt, OutputOpt, OutputPaddingOpt, PaddingOpt, SpecArg, StrideOpt, analyze_network, app, emit, fail,
    network_from_args, output_format,
)

@app.command()
def analyze(
    spec: Optional[str] = SpecArg,
    input_shape: Optional[str] = InputOpt,
    kind: str = KindOpt,
    out: Optional[int] = OutOpt,
    kernel: Optional[str] = KernelOpt,
    stride: Optional[str] = StrideOpt,
    padding: Optional[str] = PaddingOpt,
    dilation: Optional[str] = DilationOpt,
    groups: Optional[int] = GroupsOpt,
    bias: Optional[bool] = BiasOpt,
    output_padding: Optional[str] = OutputPaddingOpt,
    dtype: str = DtypeOpt,
    batch: int = BatchOpt,
    as_json: bool = JsonOpt,
    exact: bool = ExactOpt,
    depth: Optional[int] = DepthOpt,
    fmt: Optional[str] = FormatOpt,
    output: Optional[str] = OutputOpt,
) -> None:
    """Cost of a spec (or of one layer given by flags): a row per layer, block subtotals and totals.

    Example: convcost analyze --input 192x28x28 --out 32 --kernel 5 --padding same
    """
    try:
        fmt = output_format(as_json, fmt)
        network = network_from_args(spec, input_shape, kind, out, kernel, stride, padding, dilation, groups,
                                     bias, output_padding)
        report = analyze_network(network, batch, dtype)
        del network  # its nodes are not needed to write the report: their memory is reused
    except ConvcostError as error:
        fail(error)
    if depth is not None and depth < 1:
        fail(UsageError(f"--depth must be >= 1, got {depth}"))
    try:
        emit(fmt, lambda chosen: render_report(report, chosen, exact=exact, depth=depth), output=output,
             protect=[spec] if spec else [])
    except ConvcostError as error:
        fail(error)


def render_report(report: Any, fmt: str, *, exact: bool = False, depth: int | None = None) -> Any:
    if fmt == "json":
        from ..render_json import report_json_chunks

        return report_json_chunks(report)
    if fmt == "markdown":
        from ..render_markdown import report_markdown

        return report_markdown(report)
    if fmt == "csv":
        from ..render_csv import report_csv

        return report_csv(report)
    from ..render_table import report_renderable

    return report_renderable(report, exact=exact, depth=depth)
