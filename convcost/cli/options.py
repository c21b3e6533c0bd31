"""Options shared by the commands, each group declared once as a dataclass.

A command names a group in its signature (``layer: LayerFlags``,
``run: RunOptions``, ``out: OutputOptions``); ``@with_option_groups`` puts the
group's options in the signature typer reads (each field's ``option``
metadata) and hands the command the group as one value. So analyze, compare,
sweep and check declare and validate ``--dtype``, ``--batch``, ``--format``,
``--output`` and the single-layer flags in one place.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Optional, TypeVar, get_type_hints

import typer

from ..errors import ConvcostError, UsageError, did_you_mean
from ..figures import Settings
from ..hardware import get_profile
from ..render.common import FORMATS
from ..roofline import peak_precision
from ..training_memory import OPTIMIZERS
from ..units import DTYPE_BYTES
from .app import fail

__all__ = ["DECIMAL", "INTEGER", "OUTPUT_EXTENSIONS", "DepthOpt", "ExactOpt", "FigureOptions", "LayerFlags",
           "OutputOptions",
           "RewriteOptions", "RunOptions", "SpecArg", "ascii_decimal", "ascii_int", "with_option_groups"]

#: ``--output`` extension -> the format it implies.
OUTPUT_EXTENSIONS = {".json": "json", ".md": "markdown", ".markdown": "markdown", ".csv": "csv"}

_LAYER = "Input, or a single layer instead of SPEC"
_REWRITE = "Bottleneck rewrite"
_FIGURES = "Training memory and hardware"


def ascii_int(text: Any) -> int:
    """An integer option's value: ASCII digits only (click's own type reads '٣' as 3), at most 30 of them."""
    if isinstance(text, int):  # a default
        return text
    if not re.fullmatch(r"[+-]?[0-9]{1,30}", text.strip()):
        raise typer.BadParameter(f"{text!r} is not an integer (ASCII digits, at most 30 of them)")
    return int(text)


def ascii_decimal(text: Any) -> float:
    """A fraction option's value: a plain decimal in ASCII digits, like 0.25."""
    if isinstance(text, float):  # a default
        return text
    if not re.fullmatch(r"[0-9]{0,30}(\.[0-9]{1,30})?", text.strip()) or not text.strip().strip("."):
        raise typer.BadParameter(f"{text!r} is not a decimal number like 0.25 (ASCII digits)")
    return float(text)


#: Keyword arguments of every integer option, and of every decimal one.
INTEGER: dict[str, Any] = {"parser": ascii_int, "metavar": "INTEGER"}
DECIMAL: dict[str, Any] = {"parser": ascii_decimal, "metavar": "FLOAT"}

SpecArg = typer.Argument(None, metavar="[SPEC]", help="Spec file (YAML) or ONNX model (.onnx), or - for stdin.",
                         show_default=False)
DepthOpt = typer.Option(None, "--depth", "-d", help="Collapse blocks below this nesting level (1 = top level).",
                        show_default=False, **INTEGER)
ExactOpt = typer.Option(False, "--exact", help="Exact integers instead of K/M/G units in the table.")


def _option(default: Any, *names: str, help: str, panel: str | None = None, **extra: Any) -> Any:
    return field(default=default, metadata={"option": typer.Option(
        default, *names, help=help, rich_help_panel=panel, show_default=default not in (None, False), **extra)})


@dataclass(frozen=True, slots=True)
class RunOptions:
    """``--dtype`` and ``--batch``: what byte counts use and what counts scale with; checked when made."""

    dtype: str = _option("float32", "--dtype", help="float32 | float16 | bfloat16 | int8 (for byte counts).")
    batch: int = _option(1, "--batch", "-b", help="Batch size (MACs, FLOPs and activations scale with it).",
                         **INTEGER)

    def __post_init__(self) -> None:
        if self.dtype not in DTYPE_BYTES:
            raise UsageError(f"--dtype must be one of {', '.join(DTYPE_BYTES)}, got {self.dtype!r}")
        if self.batch < 1:
            raise UsageError(f"--batch must be >= 1, got {self.batch}")


@dataclass(frozen=True, slots=True)
class OutputOptions:
    """``--format`` (``--json`` for short) and ``--output``; checked when made."""

    as_json: bool = _option(False, "--json", help="Print one JSON document (exact integers) and nothing else.")
    fmt: Optional[str] = _option(None, "--format", metavar="FORMAT",
                                 help="table | json | markdown | csv. [default: table; --json = --format json]")
    output: Optional[str] = _option(None, "--output", metavar="FILE",
                                    help="Write to FILE instead of stdout: a file atomically (a temporary file, "
                                         "then a rename), a device or FIFO in place; .json, .md and .csv imply the "
                                         "format. Never a spec given here, any .yaml/.yml path, or the file stdin "
                                         "reads.")

    def __post_init__(self) -> None:
        if self.fmt is not None and self.fmt not in FORMATS:
            raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {self.fmt!r}"
                             f"{did_you_mean(self.fmt, FORMATS)}")
        if self.as_json and self.fmt not in (None, "json"):
            raise UsageError(f"--json conflicts with --format {self.fmt}")
        explicit, implied = self.explicit, self.implied
        if explicit is not None and implied is not None and explicit != implied:
            flag = "--json" if self.as_json else f"--format {explicit}"
            raise UsageError(f"--output {self.output} is {implied} by its extension, but {flag} asks for {explicit}; "
                             "give one or make them agree")

    @property
    def explicit(self) -> str | None:
        """The format given by ``--format`` or ``--json``, if any."""
        return "json" if self.as_json else self.fmt

    @property
    def implied(self) -> str | None:
        """The format ``--output``'s extension stands for (.json, .md, .csv), if any."""
        if self.output is None or self.output == "-":
            return None
        return OUTPUT_EXTENSIONS.get(os.path.splitext(self.output)[1].lower())

    @property
    def format(self) -> str:
        """The chosen format: ``--format`` (``--json`` for short), else ``--output``'s extension, else table."""
        return self.explicit or self.implied or "table"

    @property
    def to_file(self) -> bool:
        return self.output is not None and self.output != "-"


@dataclass(frozen=True, slots=True)
class RewriteOptions:
    """Which convs a bottleneck rewrite touches, and whether it expands back; checked when made."""

    expand: bool = _option(False, "--expand", panel=_REWRITE,
                           help="Also add a 1x1 back up after the kxk conv (ResNet style); the kxk then runs on the "
                                "bottleneck width.")
    min_kernel: int = _option(2, "--min-kernel", panel=_REWRITE, **INTEGER,
                              help="Only convs whose largest kernel side is at least this.")
    min_channels: int = _option(1, "--min-channels", panel=_REWRITE, **INTEGER,
                                help="Only convs reading at least this many channels.")
    include_first: bool = _option(False, "--include-first", panel=_REWRITE,
                                  help="Also rewrite the network's first conv, which reads the raw input (e.g. 3 "
                                       "RGB channels) and is left alone by default.")

    def __post_init__(self) -> None:
        if self.min_kernel < 1 or self.min_channels < 1:
            raise UsageError("--min-kernel and --min-channels must be >= 1")


@dataclass(frozen=True, slots=True)
class LayerFlags:
    """One layer described on the command line, instead of a spec."""

    input_shape: Optional[str] = _option(None, "--input", "-i", panel=_LAYER,
                                         help="Input shape, channels first: CxHxW (e.g. 192x28x28); with a SPEC, "
                                              "replaces the spec's input.")
    resolution: Optional[str] = _option(None, "--resolution", "-r", panel=_LAYER, metavar="HxW",
                                        help="Spatial input size, replacing the spec's (or --input's): 320 for "
                                             "every axis, or 320x240.")
    kind: str = _option("conv", "--kind", panel=_LAYER,
                        help="conv | conv_transpose | depthwise | pointwise | conv1d/2d/3d ...")
    out: Optional[int] = _option(None, "--out", "-o", panel=_LAYER, help="Output channels.", **INTEGER)
    kernel: Optional[str] = _option(None, "--kernel", "-k", panel=_LAYER, help="Kernel: 5 or per axis, 1x7.")
    stride: Optional[str] = _option(None, "--stride", "-s", panel=_LAYER, help="Stride: 2 or per axis. [default: 1]")
    padding: Optional[str] = _option(None, "--padding", "-p", panel=_LAYER,
                                     help="Padding: int, per axis, same or valid. [default: 0]")
    dilation: Optional[str] = _option(None, "--dilation", panel=_LAYER, help="Dilation. [default: 1]")
    groups: Optional[int] = _option(None, "--groups", "-g", panel=_LAYER, help="Groups. [default: 1]", **INTEGER)
    bias: Optional[bool] = _option(None, "--bias/--no-bias", panel=_LAYER, help="Bias term. [default: bias]")
    output_padding: Optional[str] = _option(None, "--output-padding", panel=_LAYER,
                                            help="Transposed conv output padding.")

    def layer_options(self) -> dict[str, Any]:
        """The spec options of the layer: ``{"out": 32, "kernel": 5, ...}`` (None where not given)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("input_shape", "resolution", "kind")}

    def given(self) -> list[str]:
        """The layer flags given (``--out``, ``--kernel``...), not counting ``--input``, ``--resolution``
        and ``--kind``."""
        names = {f.name: f.metadata["option"].param_decls[0].split("/")[0] for f in fields(self)}
        return [names[key] for key, value in self.layer_options().items() if value is not None]


@dataclass(frozen=True, slots=True)
class FigureOptions:
    """What training memory and the roofline bound depend on besides batch and dtype; checked when made
    (a hardware profile is read by :meth:`settings`)."""

    optimizer: str = _option("adam", "--optimizer", panel=_FIGURES,
                             help="sgd | momentum | adam | adamw: the optimizer state counted in training memory.")
    mixed_precision: bool = _option(False, "--mixed-precision", panel=_FIGURES,
                                    help="Training memory under autocast: float32 master weights (--dtype float32) "
                                         "with half-precision activations.")
    hardware: Optional[str] = _option(None, "--hardware", metavar="NAME|FILE", panel=_FIGURES,
                                      help="Hardware profile for the roofline bound on latency: a name from "
                                           "'convcost hardware' or a profile YAML file.")
    precision: Optional[str] = _option(None, "--precision", metavar="tf32", panel=_FIGURES,
                                       help="tf32: run a float32 report at the profile's TF32 tensor-core peak.")

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"
                             f"{did_you_mean(self.optimizer, OPTIMIZERS)}")
        if self.precision not in (None, "tf32"):
            raise UsageError(f"--precision takes only tf32 (other precisions follow --dtype), got {self.precision!r}")
        if self.precision is not None and self.hardware is None:
            raise UsageError("--precision sets the peak of a hardware profile: give --hardware too")

    def settings(self, dtype: str) -> Settings:
        """The figures' settings for a report of ``dtype``; reads the hardware profile (a shipped name or a
        file), refusing an unknown name or a precision the profile does not publish."""
        if self.mixed_precision and dtype != "float32":
            raise UsageError("--mixed-precision keeps float32 master weights and computes in half precision: use "
                             f"it with --dtype float32 (the default), not {dtype}")
        profile = None
        if self.hardware is not None:
            profile = get_profile(self.hardware)
            profile.peak(peak_precision(dtype, self.precision))  # refuses one the profile does not publish
        return Settings(optimizer=self.optimizer, mixed_precision=self.mixed_precision, hardware=profile,
                        precision=self.precision)


_GROUPS = (RunOptions, OutputOptions, RewriteOptions, LayerFlags, FigureOptions)
_Command = TypeVar("_Command", bound=Callable[..., None])


def _parameters(group: type) -> list[inspect.Parameter]:
    types = get_type_hints(group)
    return [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.metadata["option"],
                              annotation=types[f.name]) for f in fields(group)]


def with_option_groups(command: _Command) -> _Command:
    """Replace each parameter of ``command`` typed with an option group by the group's options."""
    types = get_type_hints(command)
    groups = {name: kind for name, kind in types.items() if kind in _GROUPS}
    parameters = []
    for parameter in inspect.signature(command).parameters.values():
        if parameter.name in groups:
            parameters += _parameters(groups[parameter.name])
        else:
            parameters.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY))
    names = [parameter.name for parameter in parameters]
    if len(set(names) | set(groups)) != len(names) + len(groups):  # typer reads hints by name
        raise TypeError(f"{command.__name__}: an option group's field shares a name with a parameter")

    @functools.wraps(command)
    def wrapper(**values: Any) -> None:
        try:
            for name, group in groups.items():
                values[name] = group(**{f.name: values.pop(f.name) for f in fields(group)})
        except ConvcostError as error:  # a group checks its values when made
            fail(error)
        command(**values)

    setattr(wrapper, "__signature__", inspect.Signature(parameters))
    return wrapper  # type: ignore[return-value]
