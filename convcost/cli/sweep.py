"""``convcost sweep``: bottleneck widths (x kernel sizes x resolutions) for one layer or a whole spec."""

from __future__ import annotations

import re
from contextlib import contextmanager
from fractions import Fraction
from typing import Any, Iterator, Optional

import typer

from ..errors import ConvcostError, UsageError
from .common import (
    BatchOpt, BiasOpt, DilationOpt, DtypeOpt, ExactOpt, GroupsOpt, InputOpt, JsonOpt, KernelOpt, KindOpt, OutOpt,
    FormatOpt, OutputOpt, OutputPaddingOpt, PaddingOpt, SpecArg, StrideOpt, app, emit, fail, network_from_args,
    output_format,
)

GRID = "Grid"
MAX_POINTS = 50_000_000
LONG_POINTS = 2_000_000  # a layer sweep this big shows a progress indicator on stderr
METRIC_NAMES = {"macs": "macs", "flops": "flops", "params": "params", "peak": "peak_activation_bytes",
                "activations": "activation_bytes"}

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
ExpandOpt = typer.Option(False, "--expand", help="Add a 1x1 back up after the kxk conv (ResNet style).",
                         rich_help_panel=GRID)
MinKernelOpt = typer.Option(2, "--min-kernel", help="Only convs whose largest kernel side is at least this.",
                            rich_help_panel=GRID)
MinChannelsOpt = typer.Option(1, "--min-channels", help="Only convs reading at least this many channels "
                              "(whole spec).", rich_help_panel=GRID)
ParetoOpt = typer.Option("macs", "--pareto", help="Costs traded against width for the Pareto mark: any of "
                         "macs, flops, params, peak, activations, comma separated.")
LimitOpt = typer.Option(40, "--limit", help="Most rows in a table or markdown (Pareto-optimal points first); "
                        "0 = all.")


def parse_numbers(text: str, flag: str, fractions: bool = False) -> list[Any]:
    """'8:128' (inclusive), '8:128:8', '8,16,32' or a mix; fractions accept decimals."""
    number = r"\d+(?:\.\d+)?" if fractions else r"\d+"
    values: list[Any] = []
    for item in text.split(","):
        item = item.strip()
        match = re.fullmatch(rf"({number})(?::({number}))?(?::({number}))?", item)
        if not match:
            raise UsageError(f"{flag} must look like 8:128, 8:128:8 or 8,16,32, got {text!r}")
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
def progress_bar(description: str, enabled: bool) -> Iterator[Any]:
    """A Rich progress bar on stderr; yields a callback ``(done, total)`` (or None when disabled)."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


@app.command()
def sweep(
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
    layer: Optional[str] = LayerOpt,
    widths: Optional[str] = WidthsOpt,
    fractions: Optional[str] = FractionsOpt,
    kernels: Optional[str] = KernelsOpt,
    resolutions: Optional[str] = ResolutionsOpt,
    expand: bool = ExpandOpt,
    min_kernel: int = MinKernelOpt,
    min_channels: int = MinChannelsOpt,
    pareto: str = ParetoOpt,
    limit: int = LimitOpt,
    dtype: str = DtypeOpt,
    batch: int = BatchOpt,
    as_json: bool = JsonOpt,
    fmt: Optional[str] = FormatOpt,
    output: Optional[str] = OutputOpt,
    exact: bool = ExactOpt,
) -> None:
    """Bottleneck widths (and kernel sizes, resolutions) against MACs, params and peak memory.

    \b
    convcost sweep --input 192x28x28 --out 32 --kernel 5 --padding same --widths 4:64 --kernels 3,5
    convcost sweep net.yaml --fractions 0.1:0.9:0.1 --resolutions 160,224
    convcost sweep net.yaml --layer stage2.conv --widths 8:256:8
    """
    try:
        chosen = output_format(as_json, fmt)
        from ..units import DTYPE_BYTES

        if dtype not in DTYPE_BYTES:
            raise UsageError(f"--dtype must be one of {', '.join(DTYPE_BYTES)}, got {dtype!r}")
        if batch < 1 or min_kernel < 1 or min_channels < 1 or limit < 0:
            raise UsageError("--batch, --min-kernel and --min-channels must be >= 1, --limit >= 0")
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
        network = network_from_args(spec, input_shape, kind, out, kernel, stride, padding, dilation, groups, bias,
                                    output_padding)
        result = run_sweep(network, spec is None or layer is not None, layer, width_values, fraction_values,
                           kernel_values, resolution_values, expand, min_kernel, min_channels, metrics, batch, dtype)
    except ConvcostError as error:
        fail(error)
    emit(chosen, lambda name: render_sweep(result, name, exact=exact, limit=limit or None), output=output,
         protect=[spec] if spec else [])


def run_sweep(network: Any, one_layer: bool, layer_name: Optional[str], widths: Optional[list[int]],
              fractions: Optional[list[Fraction]], kernels: Optional[list[int]], resolutions: Optional[list[int]],
              expand: bool, min_kernel: int, min_channels: int, metrics: list[str], batch: int, dtype: str) -> Any:
    from ..layers import Conv
    from ..sweep import sweep_layer, sweep_network

    if not one_layer:
        if kernels is not None:
            raise UsageError("--kernels applies to one layer (flags or --layer NAME), not a whole spec")
        if widths is None and fractions is None:
            fractions = [Fraction(i, 20) for i in range(1, 20)]
        total = len(widths or fractions or []) * len(resolutions or [1])
        with progress_bar("sweeping", enabled=len(resolutions or []) > 4 or total > 1000) as advance:
            try:
                return sweep_network(network, widths=widths, fractions=fractions, resolutions=resolutions,
                                     expand=expand, min_kernel=min_kernel, min_in_channels=min_channels,
                                     batch=batch, dtype=dtype, pareto_metrics=metrics, progress=advance)
            except ValueError as error:
                raise UsageError(str(error)) from None
    nodes = network.nodes
    if layer_name is not None:
        matches = [node for node in nodes if node.name == layer_name]
        if not matches:
            from ..spec import did_you_mean

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
    if widths is None:
        widths = list(range(1, c_in + 1))
    points = len(widths) * len(kernels or [1]) * len(resolutions or [1])
    if points > MAX_POINTS:
        raise UsageError(f"the grid has {points:,} points; the most is {MAX_POINTS:,}")
    with progress_bar(f"sweeping {points:,} points", enabled=points >= LONG_POINTS) as advance:
        try:
            result = sweep_layer(node.layer, node.input_shape, widths, kernels=kernels, resolutions=resolutions,
                                 expand=expand, min_kernel=min_kernel, batch=batch, dtype=dtype, name=node.name,
                                 pareto_metrics=metrics)
        except ValueError as error:
            raise UsageError(str(error)) from None
        if advance is not None:
            advance(points, points)
    return result


def render_sweep(result: Any, fmt: str, *, exact: bool = False, limit: Optional[int] = 40) -> Any:
    from ..render_compare import SWEEP_RENDERERS

    if fmt in ("table", "markdown"):
        return SWEEP_RENDERERS[fmt](result, exact=exact, limit=limit)
    return SWEEP_RENDERERS[fmt](result)
