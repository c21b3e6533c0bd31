"""``convcost analyze``: the cost of a spec or of one layer given by flags."""

from __future__ import annotations

from typing import Optional

from ..costs import analyze as analyze_network
from ..errors import ConvcostError, UsageError
from ..render.analysis import ANALYSIS_RENDERERS
from ..render.common import View
from .app import app, fail
from .inputs import network_from
from .options import DepthOpt, ExactOpt, LayerFlags, OutputOptions, RunOptions, SpecArg, with_option_groups
from .output import emit


@app.command()
@with_option_groups
def analyze(
    spec: Optional[str] = SpecArg,
    layer: LayerFlags = LayerFlags(),
    run: RunOptions = RunOptions(),
    target: OutputOptions = OutputOptions(),
    exact: bool = ExactOpt,
    depth: Optional[int] = DepthOpt,
) -> None:
    """Cost of a spec (or of one layer given by flags): a row per layer, block subtotals and totals.

    Example: convcost analyze --input 192x28x28 --out 32 --kernel 5 --padding same
    """
    try:
        report = analyze_network(network_from(spec, layer), batch=run.batch, dtype=run.dtype)
        if depth is not None and depth < 1:
            raise UsageError(f"--depth must be >= 1, got {depth}")
        result = ANALYSIS_RENDERERS[target.format](report, View(exact=exact, depth=depth))
        emit(target.format, result, output=target.output, protect=[spec] if spec else [])
    except ConvcostError as error:
        fail(error)
