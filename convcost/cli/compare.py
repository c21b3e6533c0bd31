"""``convcost compare``: with and without 1x1 bottlenecks, or draft against draft."""

from __future__ import annotations

from fractions import Fraction
from typing import Optional

import typer

from ..bottleneck import (
    BottleneckRule,
    apply_marked_bottlenecks,
    has_marked_bottlenecks,
    has_marked_reductions,
    insert_bottlenecks,
    remove_reductions,
)
from ..compare import compare as compare_reports
from ..costs import analyze
from ..errors import ConvcostError, UsageError
from ..network import Network
from ..render.common import View
from ..render.comparison import COMPARISON_RENDERERS
from .app import app, fail
from .inputs import load_network, network_from
from .options import (
    DECIMAL,
    INTEGER,
    ExactOpt,
    LayerFlags,
    OutputOptions,
    RewriteOptions,
    RunOptions,
    with_option_groups,
)
from .output import emit

BOTTLENECK = "Bottleneck rewrite"

SpecsArg = typer.Argument(None, metavar="[A.yaml [B.yaml]]", show_default=False,
                          help="One spec (against its bottlenecked or naive form) or two (A is the baseline).")
BottleneckOpt = typer.Option(None, "--bottleneck", help="Insert a 1x1 reduction to this many channels before "
                             "every eligible conv.", rich_help_panel=BOTTLENECK, show_default=False, **INTEGER)
ReduceOpt = typer.Option(None, "--reduce", help="Like --bottleneck, with the width a fraction of each conv's input "
                         "channels (0 < f < 1, floored, at least 1).", rich_help_panel=BOTTLENECK, show_default=False,
                         **DECIMAL)
ByBlockOpt = typer.Option(False, "--by-block", help="One row per top-level block (e.g. Inception module) "
                          "instead of per layer.")


def bottleneck_rule(width: Optional[int], fraction: Optional[float], rewrite: RewriteOptions) -> BottleneckRule | None:
    """The --bottleneck/--reduce options as a BottleneckRule (None when neither is given)."""
    if width is not None and fraction is not None:
        raise UsageError("give --bottleneck (a width) or --reduce (a fraction), not both")
    if width is None and fraction is None:
        if rewrite.expand:
            raise UsageError("--expand needs --bottleneck or --reduce (or bottleneck: keys in the spec)")
        return None
    if width is not None and width < 1:
        raise UsageError(f"--bottleneck must be >= 1, got {width}")
    if fraction is not None and not 0 < fraction < 1:
        raise UsageError(f"--reduce must be between 0 and 1, got {fraction}")
    return BottleneckRule(width=width, fraction=None if fraction is None else Fraction(str(fraction)),
                          expand=rewrite.expand, min_kernel=rewrite.min_kernel, min_in_channels=rewrite.min_channels)


def networks_to_compare(specs: list[str], layer: LayerFlags, rule: BottleneckRule | None,
                        expand: bool) -> tuple[Network, Network]:
    """(baseline, candidate) networks for the command's three forms."""
    if len(specs) > 2:
        raise UsageError(f"give at most two specs, got {len(specs)}")
    if len(specs) == 2:
        if layer.input_shape is not None or layer.given():
            raise UsageError("give either two specs or --input with layer flags, not both")
        if rule is not None or expand:
            raise UsageError("--bottleneck/--reduce/--expand compare one spec with its rewrite; "
                             "two specs are compared as written")
        return load_network(specs[0]), load_network(specs[1])
    network = network_from(specs[0] if specs else None, layer)
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
@with_option_groups
def compare(
    specs: Optional[list[str]] = SpecsArg,
    layer: LayerFlags = LayerFlags(),
    bottleneck: Optional[int] = BottleneckOpt,
    reduce: Optional[float] = ReduceOpt,
    rewrite: RewriteOptions = RewriteOptions(),
    run: RunOptions = RunOptions(),
    target: OutputOptions = OutputOptions(),
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
    specs = specs or []
    try:
        rule = bottleneck_rule(bottleneck, reduce, rewrite)
        baseline, candidate = networks_to_compare(specs, layer, rule, rewrite.expand)
        comparison = compare_reports(analyze(baseline, batch=run.batch, dtype=run.dtype),
                                     analyze(candidate, batch=run.batch, dtype=run.dtype))
        result = COMPARISON_RENDERERS[target.format](comparison, View(exact=exact, by_block=by_block))
        emit(target.format, result, output=target.output, protect=specs)
    except ConvcostError as error:
        fail(error)
