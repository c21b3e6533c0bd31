"""From command-line arguments to a built network: a spec file, or one layer from flags.

A spec is read and built collecting every problem (as ``check`` does), so a
command reports them all at once. ``--input`` replaces a spec's input shape and
``--resolution`` its spatial size only ("what does this draft cost at 320x320?").
"""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from typing import Any, NoReturn

import typer

from ..bottleneck import with_input_shape
from ..bridges import is_onnx_path
from ..budget import Limit, budget_from_spec
from ..builder import build_network
from ..errors import ConvcostError, Location, SpecError, UsageError
from ..network import Network
from ..spec import Spec, load_spec, parse_shape
from .app import EXIT_INVALID, one_line
from .options import LayerFlags

__all__ = ["Loaded", "Problems", "fail_problems", "load_network", "load_spec_network", "network_from",
           "parse_resolution"]

_COMMAND_LINE = Location("<command line>")


class Problems(ConvcostError):
    """Every problem of a spec, in file order; the CLI prints one line each."""

    def __init__(self, problems: list[SpecError]):
        self.problems = sorted(problems, key=_order)
        super().__init__(self.problems[0].format() if self.problems else "invalid spec")


def _order(error: SpecError) -> tuple[int, int]:
    where = error.where
    return (1 << 62, 0) if where is None or where.line <= 0 else (where.line, where.column)


def fail_problems(problems: Problems) -> NoReturn:
    """Each problem on its own line of stderr, then exit 2 (an invalid spec)."""
    for problem in problems.problems:
        sys.stderr.write(f"convcost: error: {one_line(problem.format())}\n")
    raise typer.Exit(EXIT_INVALID)


def parse_resolution(text: str) -> tuple[int, ...]:
    """``320`` (every spatial axis) or ``320x240`` (per axis)."""
    if not re.fullmatch(r"\s*[0-9]{1,9}(\s*[xX]\s*[0-9]{1,9}){0,2}\s*", text):
        raise UsageError(f"--resolution must be like 224 or 224x160, got {text!r}")
    sizes = tuple(int(part) for part in re.split(r"[xX]", text))
    if min(sizes) < 1:
        raise UsageError(f"--resolution sizes must be >= 1, got {text!r}")
    return sizes


def _with_input(shape: tuple[int, ...], layer: LayerFlags, given: tuple[int, ...] | None) -> tuple[int, ...]:
    """``shape`` with ``--input`` (when ``given``) and then ``--resolution`` applied."""
    if given is not None:
        shape = given
    if layer.resolution is None:
        return shape
    sizes = parse_resolution(layer.resolution)
    spatial = len(shape) - 1
    if spatial < 1:
        raise UsageError(f"--resolution needs an input with spatial axes, the input is {'x'.join(map(str, shape))}")
    if len(sizes) == 1:
        sizes = sizes * spatial
    if len(sizes) != spatial:
        raise UsageError(f"--resolution {layer.resolution} has {len(sizes)} sizes; the input "
                         f"{'x'.join(map(str, shape))} has {spatial} spatial axes")
    return (shape[0], *sizes)


class Loaded:
    """A spec's built network, and its ``budget:`` limits with any problem they have (for notes)."""

    def __init__(self, network: Network, limits: tuple[Limit, ...], budget_problems: list[SpecError]):
        self.network = network
        self.limits = limits
        self.budget_problems = budget_problems


def load_spec_network(path: str, layer: LayerFlags | None = None) -> Loaded:
    """A spec file (``-`` for standard input) or an ONNX model (``.onnx``, imported), built; raises
    :class:`Problems` with every problem found."""
    if is_onnx_path(path):
        from ..bridges.onnx_import import onnx_network  # imports onnx: only for .onnx files

        network = onnx_network(path)
        if layer is not None and (layer.input_shape is not None or layer.resolution is not None):
            given = None if layer.input_shape is None else parse_shape(layer.input_shape, _COMMAND_LINE, "--input")
            network = with_input_shape(network, _with_input(network.input_shape, layer, given))
        return Loaded(network, (), [])
    problems: list[SpecError] = []
    try:
        spec = load_spec(path, errors=problems)
    except SpecError as error:
        raise Problems(problems if error in problems else [*problems, error]) from None
    if layer is not None:
        given = None if layer.input_shape is None else parse_shape(layer.input_shape, _COMMAND_LINE, "--input")
        shape = _with_input(spec.input_shape, layer, given)
        if shape != spec.input_shape:  # the first input's, in a spec of several
            spec = replace(spec, inputs=((spec.inputs[0][0], shape), *spec.inputs[1:]))
    budget_problems: list[SpecError] = []
    limits = budget_from_spec(spec, budget_problems)
    try:
        network = build_network(spec, errors=problems)
    except SpecError as error:
        if error not in problems:
            problems.append(error)
    if problems:
        raise Problems(problems)
    return Loaded(network, limits, budget_problems)


def load_network(path: str, layer: LayerFlags | None = None) -> Network:
    """A spec file (``-`` for standard input) or an ONNX model, built, with ``--input``/``--resolution``
    applied."""
    return load_spec_network(path, layer).network


def network_from(spec: str | None, layer: LayerFlags) -> Network:
    """A spec file, or the one layer the flags describe; never both."""
    given = layer.given()
    if spec is not None:
        if given:
            raise UsageError(f"give either SPEC or layer flags, not both ({', '.join(given)}); "
                             "--input and --resolution do apply to a spec")
        return load_network(spec, layer)
    if layer.input_shape is None:
        raise UsageError("give a SPEC file (or - for stdin), or --input CxHxW with layer flags")
    shape = _with_input(parse_shape(layer.input_shape, _COMMAND_LINE, "--input"), layer, None)
    options = {key: _axis_value(value) if isinstance(value, str) else value
               for key, value in layer.layer_options().items()}
    return build_network(Spec.single_layer(shape, layer.kind, options))


def _axis_value(text: str) -> Any:
    """'5' -> 5, '1x7' stays a per-axis string, 'same'/'valid' pass through."""
    text = text.strip()
    # ASCII digits only ('٣' is not 3); longer than 30: left to the spec rules, which refuse it in one line
    if text.isascii() and text.isdigit() and len(text) <= 30:
        return int(text)
    return text
