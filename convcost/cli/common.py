"""Shared pieces of the command line: the app, exit codes, option declarations,
turning arguments into a network, and writing output.

Only ``convcost.cli`` prints, exits or touches typer. Exit codes:
0 success, 1 a check or budget failed, 2 an invalid spec or usage error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NoReturn, Optional

import typer

from ..errors import ConvcostError, Location, SpecError, UsageError

__all__ = ["EXIT_FAILED", "EXIT_INVALID", "EXIT_OK", "FORMATS", "app", "check_output", "emit", "fail",
           "network_from_args", "analyze_network", "output_format", "write_atomic"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2

_SLICE = 1 << 20  # characters of a result written to stdout at a time

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
    sys.stderr.write(f"convcost: error: {one_line(message)}\n")
    raise typer.Exit(code)


def one_line(text: str) -> str:
    """A message from user input stays one line: newlines are shown escaped."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


# --------------------------------------------------------------------------- output

#: Every command's ``--format`` choices; ``--json`` is shorthand for ``--format json``.
FORMATS = ("table", "json", "markdown", "csv")
_PLAIN_WIDTH = 240  # off a terminal (pipe, file, CI log), unless COLUMNS says otherwise


def _plain_wanted(stream: Any) -> bool:
    """No colour or box art off a terminal, or when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR", ""):
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return not (isatty and isatty())
    except (OSError, ValueError):
        return True


def console(file: Any = None) -> Any:
    """A Rich console on ``file`` (stdout): the terminal's width and colours on a terminal,
    else plain: no colour, no highlighting, ``COLUMNS`` (or a wide default) for the width."""
    from rich.console import Console

    stream = sys.stdout if file is None else file
    if not _plain_wanted(stream):
        return Console(file=stream)
    try:
        width = int(os.environ.get("COLUMNS", "")) or _PLAIN_WIDTH
    except ValueError:
        width = _PLAIN_WIDTH
    return Console(file=stream, width=max(width, 40), no_color=True, color_system=None, highlight=False,
                   emoji=False, force_terminal=False, force_interactive=False, legacy_windows=False)


def _without_boxes(renderable: Any) -> Any:
    """Tables (also inside a Group) lose their box-drawing characters."""
    from rich.console import Group
    from rich.table import Table

    if isinstance(renderable, Table):
        renderable.box = None
        renderable.show_edge = False
    elif isinstance(renderable, Group):
        for child in renderable.renderables:
            _without_boxes(child)
    return renderable


def emit(fmt: str, render: Callable[[str], Any], *, output: str | None = None,
         protect: Iterable[str] = ()) -> None:
    """Write one result in format ``fmt`` to stdout, or atomically to ``output``.

    ``render(fmt)`` returns a JSON-ready object (or the JSON text as an iterator
    of strings) for ``json``, a string for ``markdown`` and ``csv``, or a Rich
    renderable for ``table``. ``protect``
    lists the spec files of the command line, which ``output`` may not replace.
    A refused or failed write is one line on stderr and exit code 2.
    """
    try:
        _emit(fmt, render, output, protect)
    except ConvcostError as error:
        fail(error)


def _emit(fmt: str, render: Callable[[str], Any], output: str | None, protect: Iterable[str]) -> None:
    if output is not None and output != "-":
        check_output(output, protect)
    result = render(fmt)
    chunks: Iterable[str]
    if isinstance(result, str):  # already text (markdown, csv)
        chunks = (result if result.endswith("\n") else result + "\n",)
    elif isinstance(result, Iterator):  # text in pieces (JSON from render_json.report_json_chunks)
        chunks = result
    elif fmt == "json":
        from ..render_json import json_chunks

        chunks = json_chunks(result)
    elif output is None or output == "-":
        target = console()
        target.print(_without_boxes(result) if _plain_wanted(sys.stdout) else result)
        return
    else:
        import io

        buffer = io.StringIO()
        console(buffer).print(_without_boxes(result))
        chunks = (buffer.getvalue(),)
    if output is None or output == "-":
        # Piece by piece, each in slices: the JSON report of a 100,000-layer spec is ~50 MB,
        # and holding it, or its encoding, whole would take that much memory in fresh pages.
        for text in chunks:
            for start in range(0, len(text), _SLICE):
                sys.stdout.write(text[start:start + _SLICE])
    else:
        write_atomic(output, chunks, protect)


def output_format(as_json: bool, fmt: str | None = None) -> str:
    """``--json`` is shorthand for ``--format json``; ``fmt`` must be one of FORMATS."""
    from ..spec import did_you_mean

    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}{did_you_mean(fmt, FORMATS)}")
    if as_json and fmt not in (None, "json"):
        raise UsageError(f"--json conflicts with --format {fmt}")
    return "json" if as_json else (fmt or "table")


def check_output(path: str, protect: Iterable[str] = ()) -> None:
    """Refuse an ``--output`` that could destroy a spec: any ``.yaml``/``.yml`` path
    (convcost never writes YAML) and any file given as a spec on the command line."""
    if path.lower().endswith((".yaml", ".yml")):
        raise UsageError(f"refusing to write output to {path}: convcost writes no YAML, and a .yaml/.yml "
                         "path is probably a spec")
    target = os.path.realpath(path)
    for spec in protect:
        if spec in (None, "-"):
            continue
        same = os.path.realpath(spec) == target
        if not same and os.path.exists(path) and os.path.exists(spec):
            try:
                same = os.path.samefile(path, spec)
            except OSError:
                same = False
        if same:
            raise UsageError(f"refusing to write output over the spec {spec}")


def write_atomic(path: str, text: str | Iterable[str], protect: Iterable[str] = ()) -> None:
    """Write ``text`` (a string, or strings one after another) to a temporary file beside
    ``path``, then rename it over ``path``: readers see the old file or the new one, never half of it."""
    import tempfile

    check_output(path, protect)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        mode = os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:
        handle, temporary = tempfile.mkstemp(prefix=".convcost-", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            if isinstance(text, str):
                stream.write(text)
            else:
                stream.writelines(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except OSError as exc:
        _remove(temporary)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        _remove(temporary)
        raise


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# --------------------------------------------------------------------------- shared options

LAYER_FLAGS = "Single layer (instead of SPEC)"


def _axis_value(text: Optional[str]) -> Any:
    """'5' -> 5, '1x7' stays a per-axis string, 'same'/'valid' pass through."""
    if text is None:
        return None
    text = text.strip()
    if text.isdigit() and len(text) <= 30:  # longer: left to the spec rules, which refuse it in one line
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
        "kernel": _axis_value(kernel),
        "stride": _axis_value(stride),
        "padding": _axis_value(padding),
        "dilation": _axis_value(dilation),
        "groups": groups,
        "bias": bias,
        "output_padding": _axis_value(output_padding),
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
FormatOpt = typer.Option(None, "--format", metavar="FORMAT",
                         help="table | json | markdown | csv. [default: table; --json = --format json]",
                         show_default=False)
OutputOpt = typer.Option(None, "--output", metavar="FILE", show_default=False,
                         help="Write to FILE (atomically: a temporary file, then a rename) instead of stdout. "
                              "Never a spec given here, nor any .yaml/.yml path.")
DepthOpt = typer.Option(None, "--depth", "-d", help="Collapse blocks below this nesting level (1 = top level).",
                        show_default=False)
ExactOpt = typer.Option(False, "--exact", help="Exact integers instead of K/M/G units in the table.")




@app.callback()
def _root() -> None:
    """Exact MACs, FLOPs, parameters and memory of convolution layers and network drafts."""
