"""Shared pieces of the command line: the app, exit codes, option declarations,
turning arguments into a network, and writing output.

Only ``convcost.cli`` prints, exits or touches typer. Exit codes:
0 success, 1 a check or budget failed, 2 an invalid spec or usage error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn, Optional

import typer

from ..errors import ConvcostError, Location, SpecError, UsageError

__all__ = ["EXIT_FAILED", "EXIT_INVALID", "EXIT_OK", "app", "emit", "fail", "network_from_args", "analyze_network"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2

app = typer.Typer(
    name="convcost",
    help="Exact MACs, FLOPs, parameters and memory of convolution layers and network drafts.\n\n"
    "Exit codes: 0 ok, 1 a check or budget failed, 2 invalid spec or usage.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def fail(error: ConvcostError | str, code: int = EXIT_INVALID) -> NoReturn:
    """One line on stderr, then exit with ``code``."""
    message = error.format() if isinstance(error, SpecError) else str(error)
    sys.stderr.write(f"convcost: error: {message}\n")
    raise typer.Exit(code)


def console() -> Any:
    from rich.console import Console

    return Console()


def emit(fmt: str, render: Callable[[str], Any]) -> None:
    """Write one result in format ``fmt``. ``render(fmt)`` returns a JSON-ready
    object for ``json``, a string for text formats, or a Rich renderable for ``table``."""
    result = render(fmt)
    if fmt == "json":
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    elif isinstance(result, str):
        sys.stdout.write(result if result.endswith("\n") else result + "\n")
    else:
        console().print(result)


def output_format(as_json: bool, fmt: str | None = None) -> str:
    """``--json`` is shorthand for ``--format json``."""
    if as_json and fmt not in (None, "json"):
        raise UsageError(f"--json conflicts with --format {fmt}")
    return "json" if as_json else (fmt or "table")


# --------------------------------------------------------------------------- shared options

LAYER_FLAGS = "Single layer (instead of SPEC)"


def _axis_value(text: Optional[str], flag: str) -> Any:
    """'5' -> 5, '1x7' stays a per-axis string, 'same'/'valid' pass through."""
    if text is None:
        return None
    text = text.strip()
    if text.isdigit():
        return int(text)
    return text


def network_from_args(spec: Optional[str], input_shape: Optional[str], kind: str, out: Optional[int],
                       kernel: Optional[str], stride: Optional[str], padding: Optional[str],
                       dilation: Optional[str], groups: Optional[int], bias: Optional[bool],
                       output_padding: Optional[str]) -> Any:
    from ..network import build_network
    from ..spec import Spec, load_spec, parse_shape

    layer_flags = {"--out": out, "--kernel": kernel, "--stride": stride, "--padding": padding,
                   "--dilation": dilation, "--groups": groups, "--bias": bias, "--output-padding": output_padding}
    given = [flag for flag, value in layer_flags.items() if value is not None]
    if spec is not None:
        if input_shape is not None or given:
            raise UsageError(f"give either SPEC or --input with layer flags, not both ({', '.join(given or ['--input'])})")
        return build_network(load_spec(spec))
    if input_shape is None:
        raise UsageError("give a SPEC file (or - for stdin), or --input CxHxW with layer flags")
    where = Location("<command line>")
    shape = parse_shape(input_shape, where, "--input")
    options: dict[str, Any] = {
        "out": out,
        "kernel": _axis_value(kernel, "--kernel"),
        "stride": _axis_value(stride, "--stride"),
        "padding": _axis_value(padding, "--padding"),
        "dilation": _axis_value(dilation, "--dilation"),
        "groups": groups,
        "bias": bias,
        "output_padding": _axis_value(output_padding, "--output-padding"),
    }
    return build_network(Spec.single_layer(shape, kind, options))


def analyze_network(network: Any, batch: int, dtype: str) -> Any:
    from ..costs import analyze
    from ..units import DTYPE_BYTES

    if dtype not in DTYPE_BYTES:
        raise UsageError(f"--dtype must be one of {', '.join(DTYPE_BYTES)}, got {dtype!r}")
    if batch < 1:
        raise UsageError(f"--batch must be >= 1, got {batch}")
    return analyze(network, batch=batch, dtype=dtype)


SpecArg = typer.Argument(None, metavar="[SPEC]", help="Spec file (YAML), or - for stdin.", show_default=False)
InputOpt = typer.Option(None, "--input", "-i", help="Input shape, channels first: CxHxW (e.g. 192x28x28).",
                        rich_help_panel=LAYER_FLAGS, show_default=False)
KindOpt = typer.Option("conv", "--kind", help="conv | conv_transpose | depthwise | pointwise | conv1d/2d/3d ...",
                       rich_help_panel=LAYER_FLAGS)
OutOpt = typer.Option(None, "--out", "-o", help="Output channels.", rich_help_panel=LAYER_FLAGS, show_default=False)
KernelOpt = typer.Option(None, "--kernel", "-k", help="Kernel: 5 or per axis, 1x7.", rich_help_panel=LAYER_FLAGS,
                         show_default=False)
StrideOpt = typer.Option(None, "--stride", "-s", help="Stride: 2 or per axis. [default: 1]",
                         rich_help_panel=LAYER_FLAGS, show_default=False)
PaddingOpt = typer.Option(None, "--padding", "-p", help="Padding: int, per axis, same or valid. [default: 0]",
                          rich_help_panel=LAYER_FLAGS, show_default=False)
DilationOpt = typer.Option(None, "--dilation", help="Dilation. [default: 1]", rich_help_panel=LAYER_FLAGS,
                           show_default=False)
GroupsOpt = typer.Option(None, "--groups", "-g", help="Groups. [default: 1]", rich_help_panel=LAYER_FLAGS,
                         show_default=False)
BiasOpt = typer.Option(None, "--bias/--no-bias", help="Bias term. [default: bias]", rich_help_panel=LAYER_FLAGS,
                       show_default=False)
OutputPaddingOpt = typer.Option(None, "--output-padding", help="Transposed conv output padding.",
                                rich_help_panel=LAYER_FLAGS, show_default=False)
DtypeOpt = typer.Option("float32", "--dtype", help="float32 | float16 | bfloat16 | int8 (for byte counts).")
BatchOpt = typer.Option(1, "--batch", "-b", help="Batch size (MACs, FLOPs and activations scale with it).")
JsonOpt = typer.Option(False, "--json", help="Print one JSON document (exact integers) and nothing else.")
DepthOpt = typer.Option(None, "--depth", "-d", help="Collapse blocks below this nesting level (1 = top level).",
                        show_default=False)
ExactOpt = typer.Option(False, "--exact", help="Exact integers instead of K/M/G units in the table.")




@app.callback()
def _root() -> None:
    """Exact MACs, FLOPs, parameters and memory of convolution layers and network drafts."""
