"""``convcost compare``: with and without 1x1 bottlenecks, or draft against draft."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

import typer

from ..bottleneck import (
    SKIP_CATEGORIES, BottleneckRule, Skip, apply_marked_bottlenecks, has_marked_bottlenecks, has_marked_reductions,
    insert_bottlenecks_at, plan_bottlenecks,
    remove_reductions,
)
from ..compare import compare as compare_reports
from ..costs import analyze
from ..errors import ConvcostError, UsageError
from ..figures import with_figures
from ..network import Network
from ..render.comparison import COMPARISON_RENDERERS
from .app import app, fail, one_line
from .display import display, for_output
from .inputs import Problems, fail_problems, load_network, network_from
from .options import (
    DECIMAL,
    INTEGER,
    ExactOpt,
    FigureOptions,
    LayerFlags,
    OutputOptions,
    RewriteOptions,
    RunOptions,
    with_option_groups,
)
from .output import emit

BOTTLENECK = "Bottleneck rewrite"

SpecsArg = typer.Argument(None, metavar="[A.yaml [B.yaml]]", show_default=False,
                          help="One spec (against its bottlenecked or naive form) or two (A is the baseline); "
                        "an ONNX model (.onnx) stands for a spec.")
BottleneckOpt = typer.Option(None, "--bottleneck", help="Insert a 1x1 reduction to this many channels before "
                             "every eligible conv.", rich_help_panel=BOTTLENECK, show_default=False, **INTEGER)
ReduceOpt = typer.Option(None, "--reduce", help="Like --bottleneck, with the width a fraction of each conv's input "
                         "channels (0 < f < 1, floored, at least 1).", rich_help_panel=BOTTLENECK, show_default=False,
                         **DECIMAL)
ByBlockOpt = typer.Option(False, "--by-block", help="One row per top-level block (e.g. Inception module) "
                          "instead of per layer.")


def bottleneck_rule(width: Optional[int], fraction: Optional[float], rewrite: RewriteOptions,
                    one_layer: bool = False) -> BottleneckRule | None:
    """The --bottleneck/--reduce options as a BottleneckRule (None when neither is given). A layer given by
    flags is the conv to rewrite, so the first-conv rule does not apply to it."""
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
                          expand=rewrite.expand, min_kernel=rewrite.min_kernel, min_in_channels=rewrite.min_channels,
                          include_first=rewrite.include_first or one_layer)


@dataclass(frozen=True, slots=True)
class Sides:
    """What compare compares: the two networks, what each one is, and what a rewrite left alone."""

    baseline: Network
    candidate: Network
    labels: tuple[str, str]
    skipped: tuple[Skip, ...] = ()
    changed: bool = True  # False: a rewrite that inserted nothing


def _rewrite_flags(rule: BottleneckRule, width: Optional[int], fraction: Optional[float], layer: LayerFlags) -> str:
    flags = f"--bottleneck {width}" if width is not None else f"--reduce {fraction}"
    first = rule.include_first and (layer.input_shape is None or not layer.given())  # a spec's first conv, asked for
    return flags + (" --expand" if rule.expand else "") + (" --include-first" if first else "")


def networks_to_compare(specs: list[str], layer: LayerFlags, rule: BottleneckRule | None, expand: bool,
                        width: Optional[int] = None, fraction: Optional[float] = None) -> Sides:
    """(baseline, candidate) networks and their labels for the command's three forms."""
    if len(specs) > 2:
        raise UsageError(f"give at most two specs, got {len(specs)}")
    if len(specs) == 2:
        if layer.given():
            raise UsageError("give either two specs or layer flags, not both; --input and --resolution do apply "
                             "to both specs")
        if rule is not None or expand:
            raise UsageError("--bottleneck/--reduce/--expand compare one spec with its rewrite; "
                             "two specs are compared as written")
        a, b = load_network(specs[0], layer), load_network(specs[1], layer)
        return Sides(a, b, (a.name, b.name))
    network = network_from(specs[0] if specs else None, layer)
    if rule is not None:
        widths, skipped = plan_bottlenecks(network, rule)
        candidate = insert_bottlenecks_at(network, widths, rule.expand)
        flags = _rewrite_flags(rule, width, fraction, layer)
        labels = (f"{network.name} as written", f"{network.name} with 1x1 bottlenecks ({flags})")
        return Sides(network, candidate, labels, skipped, changed=bool(widths))
    marked, reduced = has_marked_bottlenecks(network), has_marked_reductions(network)
    if not (marked or reduced):
        raise UsageError("nothing to compare: give a second spec, --bottleneck WIDTH or --reduce FRACTION, "
                         "or mark layers in the spec with 'bottleneck:' or 'reduction: true'")
    baseline = remove_reductions(network) if reduced else network
    candidate = apply_marked_bottlenecks(network, expand) if marked else network
    labels = (f"{network.name} naive (its 'reduction: true' 1x1s removed)" if reduced
              else f"{network.name} as written",
              f"{network.name} with its marked bottlenecks" if marked else f"{network.name} as written")
    return Sides(baseline, candidate, labels)


def unchanged_note(sides: Sides) -> str:
    """Why a rewrite inserted nothing, for stderr: the reasons it skipped every conv."""
    reasons: dict[str, int] = {}
    for skip in sides.skipped:
        reasons[skip.category] = reasons.get(skip.category, 0) + 1
    why = "; ".join(f"{count} {SKIP_CATEGORIES[category]}" for category, count in reasons.items())
    return ("the rewrite changes nothing: it inserted no bottleneck"
            + (f" (skipped {len(sides.skipped)} convs: {why})" if why else " (the network has no conv)"))


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
    beyond: FigureOptions = FigureOptions(),
    exact: bool = ExactOpt,
    by_block: bool = ByBlockOpt,
) -> None:
    """Compare costs: a spec with vs without 1x1 bottlenecks, or draft A against draft B.

    Layers are matched by name where both sides name one, else by kind and
    kernel in order within their block; a pair of different kinds or kernels
    is "replaced". A bottleneck rewrite leaves alone convs that read no more
    channels than the width and, unless --include-first, the network's first
    conv; the output lists them.

    \b
    convcost compare --input 192x28x28 --out 32 --kernel 5 --padding same --bottleneck 16
    convcost compare net.yaml --reduce 0.25 [--expand]
    convcost compare googlenet.yaml        (marked reductions vs the naive form)
    convcost compare A.yaml B.yaml         (A is the baseline)
    convcost compare A.yaml B.yaml --hardware t4 --dtype float16   (training memory, roofline time)
    """
    specs = specs or []
    note = None
    try:
        rule = bottleneck_rule(bottleneck, reduce, rewrite, one_layer=not specs)
        sides = networks_to_compare(specs, layer, rule, rewrite.expand, bottleneck, reduce)
        settings = beyond.settings(run.dtype)
        comparison = compare_reports(
            *(with_figures(side, analyze(side, batch=run.batch, dtype=run.dtype), settings)
              for side in (sides.baseline, sides.candidate)),
            labels=sides.labels, skipped=sides.skipped)
        shown = display(to_file=target.to_file)
        result = for_output(COMPARISON_RENDERERS[target.format](
            comparison, shown.view(exact=exact, by_block=by_block)), shown)
        emit(target.format, result, output=target.output, protect=specs)
        if not sides.changed:
            note = unchanged_note(sides)
    except Problems as problems:
        fail_problems(problems)
    except ConvcostError as error:
        fail(error)
    if note:
        sys.stderr.write(f"convcost: note: {one_line(note)}\n")
