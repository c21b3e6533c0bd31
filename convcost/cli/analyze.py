"""``convcost analyze``: the cost of a spec or of one layer given by flags."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from ..budget import BUDGET_KEYS
from ..costs import NetworkCost
from ..costs import analyze as analyze_network
from ..errors import ConvcostError, UsageError, did_you_mean
from ..figures import with_figures
from ..render.analysis import ANALYSIS_COLUMNS, ANALYSIS_RENDERERS
from .app import app, fail, one_line
from .display import display, for_output
from .inputs import Loaded, Problems, fail_problems, load_spec_network, network_from
from .options import (
    DepthOpt,
    ExactOpt,
    FigureOptions,
    LayerFlags,
    OutputOptions,
    RunOptions,
    SpecArg,
    with_option_groups,
)
from .output import emit

ColumnsOpt = typer.Option(None, "--columns", "-c", metavar="COLS",
                          help="Columns of the per-layer table and Markdown, comma separated, in order, from: "
                               f"{', '.join(ANALYSIS_COLUMNS)} (the layer's name always comes first). "
                               "[default: as many as fit the width]", show_default=False)


def parse_columns(text: str | None) -> tuple[str, ...] | None:
    """``input,output,macs`` -> the column keys; an unknown name is a one-line error with a suggestion."""
    if text is None:
        return None
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError("--columns needs at least one column name")
    for name in names:
        if name not in ANALYSIS_COLUMNS and name not in ("layer", "name"):
            raise UsageError(f"--columns: unknown column '{name}'{did_you_mean(name, ANALYSIS_COLUMNS)}; "
                             f"choose from {', '.join(ANALYSIS_COLUMNS)}")
    return tuple(dict.fromkeys(name for name in names if name not in ("layer", "name")))


def budget_notes(loaded: Loaded, report: NetworkCost) -> list[str]:
    """The spec's ``budget:`` as notes: its problems, and each limit the report exceeds (``check`` fails on these;
    ``analyze`` only mentions them)."""
    notes = [f"budget: {problem.format()} (convcost check would refuse this spec)"
             for problem in loaded.budget_problems]
    for limit in loaded.limits:
        key = BUDGET_KEYS[limit.key]
        actual = key.measure(report)
        if actual is None:
            notes.append(f"budget '{limit.key}' needs {key.needs} (convcost check would refuse this spec)")
        elif not key.within(actual, limit.value):
            relation = "<" if key.minimum else ">"
            notes.append(f"{'under' if key.minimum else 'over'} the spec's budget: {key.label} {key.exact(actual)} "
                         f"{relation} {key.exact(limit.value)} ({key.short(actual)} {relation} "
                         f"{key.short(limit.value)}, set at {limit.origin}); convcost check exits 1 on this")
    return notes


@app.command()
@with_option_groups
def analyze(
    spec: Optional[str] = SpecArg,
    layer: LayerFlags = LayerFlags(),
    run: RunOptions = RunOptions(),
    target: OutputOptions = OutputOptions(),
    beyond: FigureOptions = FigureOptions(),
    exact: bool = ExactOpt,
    depth: Optional[int] = DepthOpt,
    columns: Optional[str] = ColumnsOpt,
) -> None:
    """Cost of a spec (or of one layer given by flags): a row per layer, block subtotals and totals.

    \b
    convcost analyze --input 192x28x28 --out 32 --kernel 5 --padding same
    convcost analyze net.yaml --resolution 320 --columns input,output,kernel,stride,macs,params
    convcost analyze net.yaml --hardware t4 --dtype float16 --columns output,macs,latency,bound,rf
    """
    notes: list[str] = []
    try:
        if depth is not None and depth < 1:
            raise UsageError(f"--depth must be >= 1, got {depth}")
        chosen = parse_columns(columns)
        settings = beyond.settings(run.dtype)
        if spec is not None and not layer.given():
            loaded = load_spec_network(spec, layer)
            network = loaded.network
        else:
            network, loaded = network_from(spec, layer), None
        report = with_figures(network, analyze_network(network, batch=run.batch, dtype=run.dtype), settings)
        if loaded is not None:
            notes = budget_notes(loaded, report)
        shown = display(to_file=target.to_file)
        result = for_output(ANALYSIS_RENDERERS[target.format](
            report, shown.view(exact=exact, depth=depth, columns=chosen)), shown)
        emit(target.format, result, output=target.output, protect=[spec] if spec else [])
    except Problems as problems:
        fail_problems(problems)
    except ConvcostError as error:
        fail(error)
    for text in notes:
        sys.stderr.write(f"convcost: note: {one_line(text)}\n")
