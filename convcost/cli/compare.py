"""``convcost compare``: with and without 1x1 bottlenecks, or draft against draft."""

from __future__ import annotations

from typing import Any, Optional

import typer

from ..errors import ConvcostError, UsageError
from .common import (
    BatchOpt, BiasOpt, DilationOpt, DtypeOpt, ExactOpt, GroupsOpt, InputOpt, JsonOpt, KernelOpt, KindOpt, OutOpt,
    FormatOpt, OutputOpt, OutputPaddingOpt, PaddingOpt, StrideOpt, analyze_network, app, emit, fail,
    network_from_args, output_format,
)

BOTTLENECK = "Bottleneck rewrite"

SpecsArg = typer.Argument(None, metavar="[A.yaml [B.yaml]]", show_default=False,
                          help="One spec (against its bottlenecked or naive form) or two (A is the baseline).")
BottleneckOpt = typer.Option(None, "--bottleneck", help="Insert a 1x1 reduction to this many channels before "
                             "every eligible conv.", rich_help_panel=BOTTLENECK, show_default=False)
ReduceOpt = typer.Option(None, "--reduce", help="Like --bottleneck, with the width a fraction of each conv's input "
                         "channels (0 < f < 1, floored, at least 1).", rich_help_panel=BOTTLENECK, show_default=False)
ExpandOpt = typer.Option(False, "--expand", help="Also add a 1x1 back up after the kxk conv (ResNet style); the kxk "
                         "then runs on the bottleneck width.", rich_help_panel=BOTTLENECK)
MinKernelOpt = typer.Option(2, "--min-kernel", help="Only convs whose largest kernel side is at least this.",
                            rich_help_panel=BOTTLENECK)
MinChannelsOpt = typer.Option(1, "--min-channels", help="Only convs reading at least this many channels.",
                              rich_help_panel=BOTTLENECK)
ByBlockOpt = typer.Option(False, "--by-block", help="One row per top-level block (e.g. Inception module) "
                          "instead of per layer.")


def bottleneck_rule(width: Optional[int], fraction: Optional[float], expand: bool, min_kernel: int,
                    min_channels: int) -> Any:
    """The --bottleneck/--reduce options as a BottleneckRule (None when neither is given)."""
    from fractions import Fraction

    from ..bottleneck import BottleneckRule

    if width is not None and fraction is not None:
        raise UsageError("give --bottleneck (a width) or --reduce (a fraction), not both")
    if width is None and fraction is None:
        if expand:
            raise UsageError("--expand needs --bottleneck or --reduce (or bottleneck: keys in the spec)")
        return None
    if width is not None and width < 1:
        raise UsageError(f"--bottleneck must be >= 1, got {width}")
    if fraction is not None and not 0 < fraction < 1:
        raise UsageError(f"--reduce must be between 0 and 1, got {fraction}")
    if min_kernel < 1 or min_channels < 1:
        raise UsageError("--min-kernel and --min-channels must be >= 1")
    return BottleneckRule(width=width, fraction=None if fraction is None else Fraction(str(fraction)),
                          expand=expand, min_kernel=min_kernel, min_in_channels=min_channels)


def networks_to_compare(specs: list[str], layer_network: Any, rule: Any, expand: bool) -> tuple[Any, Any]:
    """(baseline, candidate) networks for the command's three forms."""
    from ..bottleneck import (
        apply_marked_bottlenecks, has_marked_bottlenecks, has_marked_reductions, insert_bottlenecks,
        remove_reductions,
    )

    if len(specs) == 2:
        if rule is not None or expand:
            raise UsageError("--bottleneck/--reduce/--expand compare one spec with its rewrite; "
                             "two specs are compared as written")
        return (network_from_args(specs[0], *[None] * 10), network_from_args(specs[1], *[None] * 10))
    network = layer_network
    if rule is not None:
        return network, insert_bottlenecks(network, rule)
    marked, reduced = has_marked_bottlenecks(network), has_marked_reductions(network)
    if not (marked or reduced):
        raise UsageError("nothing to compare: give a second spec, --bottleneck WIDTH or --reduce FRACTION, "
                         "or mark layers in the spec with 'bottleneck:' or 'reduction: true'")
    baseline = remove_reductions(network) if reduced else network
    candidate = apply_marked_bottlenecks(network, expand) if marked else network
    return baseline, candidate


@app.command()
def compare(
    specs: Optional[list[str]] = SpecsArg,
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
    bottleneck: Optional[int] = BottleneckOpt,
    reduce: Optional[float] = ReduceOpt,
    expand: bool = ExpandOpt,
    min_kernel: int = MinKernelOpt,
    min_channels: int = MinChannelsOpt,
    dtype: str = DtypeOpt,
    batch: int = BatchOpt,
    as_json: bool = JsonOpt,
    fmt: Optional[str] = FormatOpt,
    output: Optional[str] = OutputOpt,
    exact: bool = ExactOpt,
    by_block: bool = ByBlockOpt,
) -> None:
    """Compare costs: a spec with vs without 1x1 bottlenecks, or draft A against draft B.

    \b
    convcost compare --input 192x28x28 --out 32 --kernel 5 --padding same --bottleneck 16
    convcost compare net.yaml --reduce 0.25 [--expand]
    convcost compare googlenet.yaml        (marked reductions vs the naive form)
    convcost compare A.yaml B.yaml         (A is the baseline)
    """
    try:
        chosen = output_format(as_json, fmt)
        specs = specs or []
        if len(specs) > 2:
            raise UsageError(f"give at most two specs, got {len(specs)}")
        rule = bottleneck_rule(bottleneck, reduce, expand, min_kernel, min_channels)
        single = None
        if len(specs) < 2:
            single = network_from_args(specs[0] if specs else None, input_shape, kind, out, kernel, stride,
                                       padding, dilation, groups, bias, output_padding)
        elif input_shape is not None:
            raise UsageError("give either two specs or --input with layer flags, not both")
        baseline, candidate = networks_to_compare(specs, single, rule, expand)
        from ..compare import compare as compare_reports

        comparison = compare_reports(analyze_network(baseline, batch, dtype), analyze_network(candidate, batch, dtype))
    except ConvcostError as error:
        fail(error)
    emit(chosen, lambda name: render_comparison(comparison, name, exact=exact, by_block=by_block), output=output,
         protect=specs)


def render_comparison(comparison: Any, fmt: str, *, exact: bool = False, by_block: bool = False) -> Any:
    from ..render_compare import COMPARE_RENDERERS

    return COMPARE_RENDERERS[fmt](comparison, exact=exact, by_block=by_block)
