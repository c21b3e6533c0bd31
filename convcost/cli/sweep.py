"""``convcost sweep``: bottleneck widths (x kernel sizes x resolutions) for one layer or a whole spec."""

from __future__ import annotations

import re
import sys
from contextlib import contextmanager
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Iterator, Optional

import typer

from ..errors import ConvcostError, UsageError, did_you_mean
from ..layers import Conv
from ..network import Network
from .app import app, fail
from .display import display, for_output
from .inputs import Problems, fail_problems, network_from
from .options import (
    INTEGER,
    ExactOpt,
    FigureOptions,
    LayerFlags,
    OutputOptions,
    RewriteOptions,
    RunOptions,
    SpecArg,
    with_option_groups,
)
from .output import emit

if TYPE_CHECKING:
    from ..figures import Settings
    from ..sweep import SweepResult

GRID = "Grid"
MAX_POINTS = 50_000_000
LONG_POINTS = 2_000_000  # a layer sweep this big shows a progress indicator on stderr
METRIC_NAMES = {"macs": "macs", "flops": "flops", "params": "params", "peak": "peak_activation_bytes",
                "activations": "activation_bytes", "train_memory": "training_memory_bytes",
                "latency": "roofline_seconds"}
#: Metrics measured design by design (convcost.sweep_figures), not by the closed forms.
MEASURED = ("training_memory_bytes", "roofline_seconds")
MAX_SHOWN = 2_000  # with --hardware, a grid up to this size shows the roofline time even when not in --pareto

WidthsOpt = typer.Option(None, "--widths", "-w", help="Bottleneck widths: 8:128 (inclusive), 8:128:8, or 8,16,32. "
                         "[default: 1 to the layer's input channels]", rich_help_panel=GRID, show_default=False)
FractionsOpt = typer.Option(None, "--fractions", help="Widths as fractions of each conv's input channels: "
                            "0.1:0.9:0.1 or 0.25,0.5. [default for a whole spec: 0.05:0.95:0.05]",
                            rich_help_panel=GRID, show_default=False)
KernelsOpt = typer.Option(None, "--kernels", help="Kernel sizes to try (one layer only): 1,3,5,7 or 1:9:2.",
                          rich_help_panel=GRID, show_default=False)
ResolutionsOpt = typer.Option(None, "--resolutions", help="Input spatial sizes to try: 14,28,56 or 7:224.",
                              rich_help_panel=GRID, show_default=False)
LayerOpt = typer.Option(None, "--layer", "-l", help="Sweep this conv of SPEC on its own (its input shape as in "
                        "the spec) instead of the whole network.", rich_help_panel=GRID, show_default=False)
ParetoOpt = typer.Option("macs", "--pareto", help="Costs traded against width for the Pareto mark: any of "
                         "macs, flops, params, peak, activations, train_memory, latency (with --hardware), comma "
                         "separated; train_memory and latency are measured design by design (at most 20,000 "
                         "points).")
LimitOpt = typer.Option(40, "--limit", help="Most rows in a table or markdown (Pareto-optimal points first); "
                        "0 = all.", **INTEGER)


def parse_numbers(text: str, flag: str, fractions: bool = False) -> list[Any]:
    """'8:128' (inclusive), '8:128:8', '8,16,32' or a mix; fractions accept decimals."""
    number = r"[0-9]+(?:\.[0-9]+)?" if fractions else r"[0-9]+"  # ASCII digits only
    values: list[Any] = []
    for item in text.split(","):
        item = item.strip()
        match = re.fullmatch(rf"({number})(?::({number}))?(?::({number}))?", item)
        if not match:
            raise UsageError(f"{flag} must look like 8:128, 8:128:8 or 8,16,32, got {text!r}")
        if re.search(r"[0-9]{31}", item):  # also keeps int() below its 4,300-digit limit
            raise UsageError(f"{flag}: numbers have at most 30 digits, got {item[:40]!r}...")
        convert = (lambda s: Fraction(s)) if fractions else int
        start = convert(match.group(1))
        stop = convert(match.group(2)) if match.group(2) else start
        step = convert(match.group(3)) if match.group(3) else (Fraction(1, 20) if fractions else 1)
        if step <= 0 or stop < start:
            raise UsageError(f"{flag}: a range needs start <= stop and a positive step, got {item!r}")
        count = int((stop - start) // step) + 1
        if len(values) + count > MAX_POINTS:
            raise UsageError(f"{flag} has more than {MAX_POINTS:,} values")
        values.extend(start + i * step for i in range(count))
    if fractions and not all(0 < v < 1 for v in values):
        raise UsageError(f"{flag} values must be between 0 and 1, got {text!r}")
    if not fractions and not all(v >= 1 for v in values):
        raise UsageError(f"{flag} values must be >= 1, got {text!r}")
    return values


@contextmanager
def progress_bar(description: str, total: int, enabled: bool) -> Iterator[Any]:
    """A Rich progress bar on stderr out of ``total`` points; yields a callback ``(done, total)``
    (or None when disabled)."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (  # only for long sweeps
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)  # known from the start: the label formats it

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


@app.command()
@with_option_groups
def sweep(
    spec: Optional[str] = SpecArg,
    layer: LayerFlags = LayerFlags(),
    layer_name: Optional[str] = LayerOpt,
    widths: Optional[str] = WidthsOpt,
    fractions: Optional[str] = FractionsOpt,
    kernels: Optional[str] = KernelsOpt,
    resolutions: Optional[str] = ResolutionsOpt,
    rewrite: RewriteOptions = RewriteOptions(),
    pareto: str = ParetoOpt,
    limit: int = LimitOpt,
    run: RunOptions = RunOptions(),
    beyond: FigureOptions = FigureOptions(),
    target: OutputOptions = OutputOptions(),
    exact: bool = ExactOpt,
) -> None:
    """Bottleneck widths (and kernel sizes, resolutions) against MACs, params and peak memory.

    \b
    convcost sweep --input 192x28x28 --out 32 --kernel 5 --padding same --widths 4:64 --kernels 3,5
    convcost sweep net.yaml --fractions 0.1:0.9:0.1 --resolutions 160,224
    convcost sweep net.yaml --layer stage2.conv --widths 8:256:8
    convcost sweep net.yaml --fractions 0.1:0.9:0.1 --pareto macs,train_memory,latency --hardware t4
    """
    try:
        if limit < 0:
            raise UsageError(f"--limit must be >= 0, got {limit}")
        metrics = []
        for name in (part.strip() for part in pareto.split(",")):
            if name not in METRIC_NAMES:
                raise UsageError(f"--pareto takes {', '.join(METRIC_NAMES)}, got {name!r}")
            metrics.append(METRIC_NAMES[name])
        if widths is not None and fractions is not None:
            raise UsageError("give --widths or --fractions, not both")
        width_values = parse_numbers(widths, "--widths") if widths is not None else None
        fraction_values = parse_numbers(fractions, "--fractions", fractions=True) if fractions is not None else None
        kernel_values = parse_numbers(kernels, "--kernels") if kernels is not None else None
        resolution_values = parse_numbers(resolutions, "--resolutions") if resolutions is not None else None
        network = network_from(spec, layer)
        settings = beyond.settings(run.dtype)
        if "roofline_seconds" in metrics and settings.hardware is None:
            raise UsageError("--pareto latency is the roofline time on a device: give --hardware NAME too")
        closed = [metric for metric in metrics if metric not in MEASURED] or ["macs"]
        result = run_sweep(network, spec is None or layer_name is not None, layer_name, width_values,
                           fraction_values, kernel_values, resolution_values, rewrite,
                           closed, run.batch, run.dtype)
        measured = [metric for metric in MEASURED if metric in metrics]
        if settings.hardware is not None and "roofline_seconds" not in measured and len(result) <= MAX_SHOWN:
            measured.append("roofline_seconds")  # shown beside the closed forms, not in the Pareto mark
        if measured:
            result = measure_points(result, network, layer_name, spec is None, rewrite, measured, metrics,
                                    settings)
        from ..render.sweep import (
            SWEEP_RENDERERS,  # numpy: ~60 ms to import, and only sweeps need it
        )

        shown = display(to_file=target.to_file)
        rendered = for_output(SWEEP_RENDERERS[target.format](result, shown.view(exact=exact, limit=limit or None)),
                              shown)
        emit(target.format, rendered, output=target.output, protect=[spec] if spec else [])
        if result.python_ints:  # said once the result is out, so a failure stays the one line on stderr
            sys.stderr.write("convcost: note: values beyond 64-bit integers: the sweep computed with exact Python "
                             "integers (slower)\n")
    except Problems as problems:
        fail_problems(problems)
    except ConvcostError as error:
        fail(error)


def measure_points(result: SweepResult, network: Network, layer_name: Optional[str], flags: bool,
                   rewrite: RewriteOptions, measured: list[str], metrics: list[str], settings: Settings) -> SweepResult:
    """The sweep's points with training memory and roofline time measured design by design."""
    from ..sweep_figures import add_figure_columns, layer_design, network_design

    if flags or layer_name is not None:
        node = network.nodes[0] if flags else next(node for node in network.nodes if node.name == layer_name)
        assert isinstance(node.layer, Conv)
        design = layer_design(node.layer, node.input_shape, result.kernels, expand=rewrite.expand,
                              min_kernel=rewrite.min_kernel, name=node.name)
    else:
        design = network_design(network, expand=rewrite.expand, min_kernel=rewrite.min_kernel,
                                min_in_channels=rewrite.min_channels, include_first=rewrite.include_first)
    with progress_bar("measuring", len(result), enabled=len(result) > 200) as advance:
        try:
            return add_figure_columns(result, design, measured, settings, metrics, progress=advance)
        except ValueError as error:
            raise UsageError(str(error)) from None


def run_sweep(network: Network, one_layer: bool, layer_name: Optional[str], widths: Optional[list[int]],
              fractions: Optional[list[Fraction]], kernels: Optional[list[int]], resolutions: Optional[list[int]],
              rewrite: RewriteOptions, metrics: list[str], batch: int,
              dtype: str) -> SweepResult:
    from ..sweep import (  # numpy: ~60 ms to import, and only sweeps need it
        sweep_layer,
        sweep_network,
    )

    if not one_layer:
        if kernels is not None:
            raise UsageError("--kernels applies to one layer (flags or --layer NAME), not a whole spec")
        if widths is None and fractions is None:
            fractions = [Fraction(i, 20) for i in range(1, 20)]
        total = len(widths or fractions or []) * len(resolutions or [1])
        with progress_bar("sweeping", total, enabled=len(resolutions or []) > 4 or total > 1000) as advance:
            try:
                return sweep_network(network, widths=widths, fractions=fractions, resolutions=resolutions,
                                     expand=rewrite.expand, min_kernel=rewrite.min_kernel,
                                     min_in_channels=rewrite.min_channels, include_first=rewrite.include_first,
                                     batch=batch, dtype=dtype, pareto_metrics=metrics, progress=advance)
            except ValueError as error:
                raise UsageError(str(error)) from None
    nodes = network.nodes
    if layer_name is not None:
        matches = [node for node in nodes if node.name == layer_name]
        if not matches:
            names = [node.name for node in nodes if isinstance(node.layer, Conv)]
            raise UsageError(f"no layer named '{layer_name}'{did_you_mean(layer_name, names)}")
        node = matches[0]
    else:
        node = nodes[0]
    if not isinstance(node.layer, Conv) or node.layer.groups != 1:
        raise UsageError(f"'{node.name}' is a {node.layer.kind}; a sweep needs a conv with groups 1")
    c_in = node.layer.in_channels
    if fractions is not None:
        widths = sorted({max(1, int(f * c_in)) for f in fractions})
    points = (c_in if widths is None else len(widths)) * len(kernels or [1]) * len(resolutions or [1])
    if points > MAX_POINTS:
        raise UsageError(f"the grid has {points:,} points; the most is {MAX_POINTS:,}")
    if widths is None:  # counted first: 1 to c_in, and c_in may be huge
        widths = list(range(1, c_in + 1))
    with progress_bar("sweeping", points, enabled=points >= LONG_POINTS) as advance:
        try:
            result = sweep_layer(node.layer, node.input_shape, widths, kernels=kernels, resolutions=resolutions,
                                 expand=rewrite.expand, min_kernel=rewrite.min_kernel, batch=batch, dtype=dtype,
                                 name=node.name, pareto_metrics=metrics)
        except ValueError as error:
            raise UsageError(str(error)) from None
        if advance is not None:
            advance(points, points)
    return result
