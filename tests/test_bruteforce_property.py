"""Property tests: convcost's closed forms against a brute-force reference.

Hypothesis draws one small layer (conv, transposed conv or pooling), writes it
as a YAML spec in one of the spellings the spec format allows, runs it through
``convcost.loads`` and ``convcost.analyze``, and compares the reported MACs and
output shape with ``tests/bruteforce.py``, which really performs the
convolution with explicit loops and counts its multiply-accumulates.
(The reference itself was checked once against PyTorch; torch is not a test
dependency.) Parameters are checked against their closed form. Two
deterministic tests add what random draws hit too rarely: every small 1-D
pooling configuration (ceil_mode corners), and ``AxB`` spellings such as
``padding: 0x1`` (which YAML 1.1 would read as hexadecimal 1).

A second group of tests draws invalid layers, each breaking exactly one rule,
and expects ``convcost.errors.SpecError`` from ``loads``.

Sizes stay small (spatial <= 9, <= 5 in 3D, channels <= 6) so the suite is fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from convcost import analyze, loads
from convcost.errors import SpecError

try:  # tests/ is a package
    from tests.bruteforce import conv, conv_transpose, pool_output_shape, resolve_conv_padding
except ImportError:  # pragma: no cover - tests/ itself on sys.path
    from bruteforce import conv, conv_transpose, pool_output_shape, resolve_conv_padding

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INVALID = settings(max_examples=100, deadline=None)

MAX_CHANNELS = 6


# --------------------------------------------------------------------------- YAML writing


@dataclass(frozen=True)
class Quoted:
    """A string option written in double quotes (``"3x2"``)."""

    text: str


def yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Quoted):
        return f'"{value.text}"'
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    raise TypeError(value)


def spec_text(input_yaml: str, kind: str, options: dict[str, Any], explicit_kind: bool) -> str:
    body = ", ".join(f"{key}: {yaml_value(value)}" for key, value in options.items())
    if explicit_kind:
        entry = f"{{kind: {kind}" + (f", {body}" if body else "") + "}"
    else:
        entry = f"{kind}: {{{body}}}"
    return f"input: {input_yaml}\nlayers:\n  - {entry}\n"


@st.composite
def per_axis(draw: st.DrawFn, values: tuple[int, ...]) -> Any:
    """One of the spellings of per-axis integers: int, list, ``AxB`` or quoted ``"AxB"``."""
    forms = ["list"]
    if len(set(values)) == 1:
        forms.append("int")
    if len(values) > 1:
        forms += ["axb", "quoted_axb"]
    form = draw(st.sampled_from(forms))
    if form == "int":
        return values[0]
    if form == "axb":
        return "x".join(map(str, values))  # as the spec writes it: kernel: 1x7
    if form == "quoted_axb":
        return Quoted("x".join(map(str, values)))
    return list(values)


@st.composite
def input_yaml(draw: st.DrawFn, shape: tuple[int, ...]) -> str:
    """The input shape as ``CxHxW`` or as a mapping."""
    if draw(st.booleans()):
        return "x".join(map(str, shape))
    names = {2: ("channels", "length"), 3: ("channels", "height", "width"),
             4: ("channels", "depth", "height", "width")}[len(shape)]
    return "{" + ", ".join(f"{n}: {v}" for n, v in zip(names, shape)) + "}"


def axes(rank: int, low: int, high: int) -> st.SearchStrategy[tuple[int, ...]]:
    return st.tuples(*[st.integers(low, high)] * rank)


@st.composite
def maybe(draw: st.DrawFn, options: dict[str, Any], key: str, value: tuple[int, ...] | int | bool,
          default: Any) -> None:
    """Set ``options[key]``, or leave it out when ``value`` is the default (half the time)."""
    if value == default and draw(st.booleans()):
        return
    options[key] = draw(per_axis(value)) if isinstance(value, tuple) else value


# --------------------------------------------------------------------------- layer cases


@dataclass
class Case:
    text: str
    rank: int
    in_shape: tuple[int, ...]
    config: dict[str, Any] = field(default_factory=dict)


def layer_kind(draw: st.DrawFn, base: str, rank: int) -> str:
    return draw(st.sampled_from([base, f"{base}{rank}d"]))


@st.composite
def channels_and_groups(draw: st.DrawFn) -> tuple[int, int, int]:
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, MAX_CHANNELS // groups))
    c_out = groups * draw(st.integers(1, MAX_CHANNELS // groups))
    return c_in, c_out, groups


@st.composite
def conv_cases(draw: st.DrawFn) -> Case:
    rank = draw(st.sampled_from([1, 2, 3]))
    max_len, max_k = (9, 4) if rank < 3 else (5, 3)
    c_in, c_out, groups = draw(channels_and_groups())
    kernel = draw(axes(rank, 1, max_k))
    dilation = draw(axes(rank, 1, 3))
    mode = draw(st.sampled_from(["omit", "int", "axis", "same", "valid"]))
    stride = (1,) * rank if mode == "same" else draw(axes(rank, 1, 3))
    if mode == "int":
        padding: Any = draw(st.integers(0, 3))
    elif mode == "axis":
        padding = draw(axes(rank, 0, 3))
    elif mode in ("same", "valid"):
        padding = mode
    else:
        padding = 0
    pads = resolve_conv_padding(padding, kernel, dilation)
    lengths = []
    for k, d, (left, right) in zip(kernel, dilation, pads):
        shortest = max(1, d * (k - 1) + 1 - left - right)
        lengths.append(draw(st.integers(shortest, max(shortest, max_len))))
    bias = draw(st.booleans())

    options: dict[str, Any] = {"out": c_out, "kernel": draw(per_axis(kernel))}
    draw(maybe(options, "stride", stride, (1,) * rank))
    if mode == "axis":
        options["padding"] = draw(per_axis(padding))
    elif mode != "omit":
        options["padding"] = padding
    draw(maybe(options, "dilation", dilation, (1,) * rank))
    draw(maybe(options, "groups", groups, 1))
    draw(maybe(options, "bias", bias, True))
    in_shape = (c_in, *lengths)
    text = spec_text(draw(input_yaml(in_shape)), layer_kind(draw, "conv", rank), options,
                     draw(st.booleans()))
    return Case(text, rank, in_shape, dict(out=c_out, kernel=kernel, stride=stride, padding=padding,
                                           dilation=dilation, groups=groups, bias=bias))


@st.composite
def conv_transpose_cases(draw: st.DrawFn) -> Case:
    rank = draw(st.sampled_from([1, 2, 3]))
    max_len, max_k = (9, 4) if rank < 3 else (4, 3)
    c_in, c_out, groups = draw(channels_and_groups())
    kernel = draw(axes(rank, 1, max_k))
    stride = draw(axes(rank, 1, 3))
    dilation = draw(axes(rank, 1, 3))
    lengths = draw(axes(rank, 1, max_len))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    padding = []
    for n, k, s, d, op in zip(lengths, kernel, stride, dilation, output_padding):
        uncropped = (n - 1) * s + d * (k - 1) + 1 + op  # output length with padding 0
        padding.append(draw(st.integers(0, min(3, (uncropped - 1) // 2))))
    padding_t = tuple(padding)
    bias = draw(st.booleans())

    options: dict[str, Any] = {"out": c_out, "kernel": draw(per_axis(kernel))}
    draw(maybe(options, "stride", stride, (1,) * rank))
    draw(maybe(options, "padding", padding_t, (0,) * rank))
    draw(maybe(options, "output_padding", output_padding, (0,) * rank))
    draw(maybe(options, "dilation", dilation, (1,) * rank))
    draw(maybe(options, "groups", groups, 1))
    draw(maybe(options, "bias", bias, True))
    in_shape = (c_in, *lengths)
    text = spec_text(draw(input_yaml(in_shape)), layer_kind(draw, "conv_transpose", rank), options,
                     draw(st.booleans()))
    return Case(text, rank, in_shape, dict(out=c_out, kernel=kernel, stride=stride, padding=padding_t,
                                           output_padding=output_padding, dilation=dilation,
                                           groups=groups, bias=bias))


@st.composite
def pool_cases(draw: st.DrawFn) -> Case:
    rank = draw(st.sampled_from([1, 2, 3]))
    op = draw(st.sampled_from(["max", "avg"]))
    channels = draw(st.integers(1, MAX_CHANNELS))
    kernel = draw(axes(rank, 1, 4))
    stride_given = draw(st.booleans())
    stride = draw(axes(rank, 1, 3)) if stride_given else kernel
    # PyTorch requires padding <= kernel // 2 (max and avg alike).
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = draw(axes(rank, 1, 3)) if op == "max" else (1,) * rank
    ceil_mode = draw(st.booleans())
    lengths = []
    for k, d, p in zip(kernel, dilation, padding):
        shortest = max(1, d * (k - 1) + 1 - 2 * p)  # the window fits in the padded input
        if op == "avg" and rank == 3:
            shortest = max(shortest, k)  # PyTorch's avg_pool3d also needs unpadded input >= kernel
        lengths.append(draw(st.integers(shortest, max(shortest, 9))))

    options: dict[str, Any] = {"kernel": draw(per_axis(kernel))}
    if stride_given:
        options["stride"] = draw(per_axis(stride))
    draw(maybe(options, "padding", padding, (0,) * rank))
    if op == "max":
        draw(maybe(options, "dilation", dilation, (1,) * rank))
    draw(maybe(options, "ceil_mode", ceil_mode, False))
    in_shape = (channels, *lengths)
    text = spec_text(draw(input_yaml(in_shape)), layer_kind(draw, f"{op}_pool", rank), options,
                     draw(st.booleans()))
    return Case(text, rank, in_shape, dict(kernel=kernel, stride=stride, padding=padding,
                                           dilation=dilation, ceil_mode=ceil_mode))


# --------------------------------------------------------------------------- helpers


def only_layer(text: str) -> Any:
    note(text)
    report = analyze(loads(text))
    assert len(report.layers) == 1, f"expected one layer row, got {len(report.layers)}"
    return report.layers[0]


def closed_form_params(c_in: int, c_out: int, groups: int, kernel: tuple[int, ...], bias: bool) -> int:
    return c_out * (c_in // groups) * math.prod(kernel) + (c_out if bias else 0)


def random_arrays(*shapes: tuple[int, ...]) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape) for shape in shapes]


def assert_spec_error(text: str) -> None:
    """``loads`` must reject ``text`` with a SpecError (not a bare ValueError, not at analyze time)."""
    note(text)
    try:
        net = loads(text)
    except SpecError:
        return
    try:
        analyze(net)
    except SpecError:
        pytest.fail(f"SpecError raised by analyze(), not loads(), for:\n{text}")
    pytest.fail(f"no SpecError for invalid spec:\n{text}")


# --------------------------------------------------------------------------- valid layers


@PROPERTY
@given(conv_cases())
def test_conv_matches_bruteforce(case: Case) -> None:
    s = case.config
    c_in = case.in_shape[0]
    x, w, b = random_arrays(case.in_shape, (s["out"], c_in // s["groups"], *s["kernel"]), (s["out"],))
    out, macs = conv(x, w, b if s["bias"] else None, stride=s["stride"], padding=s["padding"],
                     dilation=s["dilation"], groups=s["groups"])
    layer = only_layer(case.text)
    assert layer.output_shape == out.shape
    assert layer.macs == macs
    assert layer.params == closed_form_params(c_in, s["out"], s["groups"], s["kernel"], s["bias"])


@PROPERTY
@given(conv_transpose_cases())
def test_conv_transpose_matches_bruteforce(case: Case) -> None:
    s = case.config
    c_in = case.in_shape[0]
    x, w, b = random_arrays(case.in_shape, (c_in, s["out"] // s["groups"], *s["kernel"]), (s["out"],))
    out, macs = conv_transpose(x, w, b if s["bias"] else None, stride=s["stride"], padding=s["padding"],
                               output_padding=s["output_padding"], dilation=s["dilation"],
                               groups=s["groups"])
    layer = only_layer(case.text)
    assert layer.output_shape == out.shape
    assert layer.macs == macs
    assert layer.params == closed_form_params(c_in, s["out"], s["groups"], s["kernel"], s["bias"])


@PROPERTY
@given(pool_cases())
def test_pool_shape_matches_bruteforce(case: Case) -> None:
    s = case.config
    expected = pool_output_shape(case.in_shape, s["kernel"], s["stride"], s["padding"], s["dilation"],
                                 s["ceil_mode"])
    layer = only_layer(case.text)
    assert layer.output_shape == expected
    assert layer.params == 0


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("op", ["max", "avg"])
def test_pool1d_shapes_exhaustively(op: str, ceil_mode: bool) -> None:
    """Every small 1-D pooling configuration (the ceil_mode corner cases are too sparse to leave to chance)."""
    mismatches = []
    for length in range(1, 10):
        for kernel in range(1, 5):
            for stride in range(1, 5):
                for padding in range(kernel // 2 + 1):
                    for dilation in range(1, 4) if op == "max" else (1,):
                        if dilation * (kernel - 1) + 1 > length + 2 * padding:
                            continue  # no window fits; the invalid tests cover these
                        options = (f"kernel: {kernel}, stride: {stride}, padding: {padding}, "
                                   f"ceil_mode: {str(ceil_mode).lower()}")
                        if op == "max":
                            options += f", dilation: {dilation}"
                        text = f"input: 2x{length}\nlayers:\n  - {op}_pool1d: {{{options}}}\n"
                        expected = pool_output_shape((2, length), kernel, stride, padding, dilation, ceil_mode)
                        got = analyze(loads(text)).layers[0].output_shape
                        if got != expected:
                            mismatches.append(f"L={length} {options}: expected {expected}, got {got}")
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches[:20])


@pytest.mark.parametrize(
    ("kind", "key", "axb", "values"),
    [
        ("conv", "padding", "0x1", [0, 1]),  # YAML 1.1 would read an unquoted 0x1 as hex 1
        ("conv", "padding", "0x2", [0, 2]),
        ("conv", "padding", "1x0", [1, 0]),
        ("conv", "kernel", "1x7", [1, 7]),
        ("conv", "stride", "2x1", [2, 1]),
        ("conv_transpose", "padding", "0x1", [0, 1]),
        ("conv_transpose", "output_padding", "0x1", [0, 1]),
        ("max_pool", "padding", "0x1", [0, 1]),
    ],
)
def test_axb_string_means_the_same_as_a_list(kind: str, key: str, axb: str, values: list[int]) -> None:
    """``padding: 0x1`` is the per-axis spelling the spec documents, not a hexadecimal 1."""
    options = {"conv": {"out": 2, "kernel": 3, "stride": 2},
               "conv_transpose": {"out": 2, "kernel": 3, "stride": 2},
               "max_pool": {"kernel": 3, "stride": 2}}[kind]

    def spell(value: str) -> str:
        body = ", ".join(f"{k}: {v}" for k, v in {**options, key: value}.items())
        return f"input: 2x9x9\nlayers:\n  - {kind}: {{{body}}}\n"

    as_list = analyze(loads(spell(yaml_value(values)))).layers[0]
    for text in (spell(axb), spell(f'"{axb}"')):
        layer = analyze(loads(text)).layers[0]
        got = (layer.output_shape, layer.macs, layer.params)
        assert got == (as_list.output_shape, as_list.macs, as_list.params), text


# --------------------------------------------------------------------------- invalid layers


@st.composite
def conv_empty_output(draw: st.DrawFn) -> str:
    """A conv whose window does not fit the padded input on one axis."""
    rank = draw(st.sampled_from([1, 2, 3]))
    bad = draw(st.integers(0, rank - 1))
    kernel = list(draw(axes(rank, 1, 4)))
    dilation = list(draw(axes(rank, 1, 3)))
    padding = list(draw(axes(rank, 0, 2)))
    kernel[bad] = draw(st.integers(2, 6))
    lengths = []
    for axis, (k, d, p) in enumerate(zip(kernel, dilation, padding)):
        span = d * (k - 1) + 1
        if axis == bad:
            if span - 2 * p < 2:  # make room for an input that is too short
                padding[axis] = p = 0
            lengths.append(draw(st.integers(1, span - 2 * p - 1)))
        else:
            lengths.append(max(1, span - 2 * p) + draw(st.integers(0, 3)))
    options = {"out": draw(st.integers(1, 4)), "kernel": list(kernel), "stride": draw(st.integers(1, 3)),
               "padding": list(padding), "dilation": list(dilation)}
    if all(p == 0 for p in padding) and draw(st.booleans()):
        options["padding"] = draw(st.sampled_from(["valid", 0]))
    shape = (draw(st.integers(1, 4)), *lengths)
    return spec_text("x".join(map(str, shape)), layer_kind(draw, "conv", rank), options, False)


@st.composite
def groups_not_dividing(draw: st.DrawFn) -> str:
    """groups that do not divide the input or the output channels (or exceed them)."""
    kind = draw(st.sampled_from(["conv", "conv_transpose"]))
    groups = draw(st.integers(2, 5))
    c_in = draw(st.integers(1, 8))
    c_out = draw(st.integers(1, 8))
    if c_in % groups == 0 and c_out % groups == 0:
        if draw(st.booleans()):
            c_in += 1
        else:
            c_out += 1
    options = {"out": c_out, "kernel": draw(st.integers(1, 3)), "groups": groups}
    return spec_text(f"{c_in}x{draw(st.integers(3, 8))}x{draw(st.integers(3, 8))}", kind, options, False)


@st.composite
def bad_output_padding(draw: st.DrawFn) -> str:
    """output_padding >= max(stride, dilation) on one axis (PyTorch rejects it)."""
    rank = draw(st.sampled_from([1, 2, 3]))
    bad = draw(st.integers(0, rank - 1))
    stride = draw(axes(rank, 1, 3))
    dilation = draw(axes(rank, 1, 3))
    output_padding = [draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation)]
    output_padding[bad] = max(stride[bad], dilation[bad]) + draw(st.integers(0, 2))
    options = {"out": draw(st.integers(1, 4)), "kernel": draw(st.integers(1, 3)), "stride": list(stride),
               "dilation": list(dilation), "output_padding": output_padding}
    shape = (draw(st.integers(1, 4)), *draw(axes(rank, 1, 6)))
    return spec_text("x".join(map(str, shape)), layer_kind(draw, "conv_transpose", rank), options, False)


@st.composite
def same_with_stride(draw: st.DrawFn) -> str:
    """padding: same with a stride > 1 on some axis (PyTorch rejects it)."""
    rank = draw(st.sampled_from([1, 2, 3]))
    stride = list(draw(axes(rank, 1, 3)))
    stride[draw(st.integers(0, rank - 1))] = draw(st.integers(2, 3))
    options = {"out": draw(st.integers(1, 4)), "kernel": draw(st.integers(1, 3)),
               "stride": draw(per_axis(tuple(stride))), "padding": "same",
               "dilation": draw(st.integers(1, 2))}
    shape = (draw(st.integers(1, 4)), *draw(axes(rank, 3, 8)))
    return spec_text("x".join(map(str, shape)), layer_kind(draw, "conv", rank), options, False)


@st.composite
def conv_transpose_empty_output(draw: st.DrawFn) -> str:
    """A transposed conv whose padding crops away the whole output on one axis."""
    rank = draw(st.sampled_from([1, 2, 3]))
    bad = draw(st.integers(0, rank - 1))
    kernel = draw(axes(rank, 1, 3))
    stride = draw(axes(rank, 1, 2))
    lengths = draw(axes(rank, 1, 4))
    padding = [0] * rank
    uncropped = (lengths[bad] - 1) * stride[bad] + (kernel[bad] - 1) + 1  # dilation 1, output_padding 0
    padding[bad] = (uncropped + 1) // 2 + draw(st.integers(0, 2))  # 2p >= uncropped
    options = {"out": draw(st.integers(1, 4)), "kernel": list(kernel), "stride": list(stride),
               "padding": padding}
    shape = (draw(st.integers(1, 4)), *lengths)
    return spec_text("x".join(map(str, shape)), layer_kind(draw, "conv_transpose", rank), options, False)


@st.composite
def conv_transpose_same(draw: st.DrawFn) -> str:
    """``same``/``valid`` are conv-only paddings."""
    rank = draw(st.sampled_from([1, 2, 3]))
    options = {"out": 2, "kernel": draw(st.integers(1, 3)), "padding": draw(st.sampled_from(["same", "valid"]))}
    shape = (2, *draw(axes(rank, 2, 6)))
    return spec_text("x".join(map(str, shape)), layer_kind(draw, "conv_transpose", rank), options, False)


@st.composite
def pool_empty_output(draw: st.DrawFn) -> str:
    """A pooling window larger than the padded input (ceil_mode off)."""
    rank = draw(st.sampled_from([1, 2, 3]))
    op = draw(st.sampled_from(["max", "avg"]))
    bad = draw(st.integers(0, rank - 1))
    kernel = list(draw(axes(rank, 1, 3)))
    kernel[bad] = draw(st.integers(2, 5))
    lengths = [k + draw(st.integers(0, 3)) for k in kernel]
    lengths[bad] = draw(st.integers(1, kernel[bad] - 1))
    options = {"kernel": kernel, "stride": 1}
    shape = (2, *lengths)
    return spec_text("x".join(map(str, shape)), layer_kind(draw, f"{op}_pool", rank), options, False)


@st.composite
def non_positive_option(draw: st.DrawFn) -> str:
    """A zero or negative count where PyTorch needs a positive one (or negative padding)."""
    kind = draw(st.sampled_from(["conv", "conv_transpose"]))
    options: dict[str, Any] = {"out": 2, "kernel": 3, "stride": 1, "padding": 1, "dilation": 1, "groups": 1}
    key = draw(st.sampled_from(["out", "kernel", "stride", "dilation", "groups", "padding"]))
    options[key] = draw(st.integers(-2, -1)) if key == "padding" else draw(st.integers(-2, 0))
    return spec_text("2x6x6", kind, options, False)


@INVALID
@given(conv_empty_output())
def test_conv_with_empty_output_is_a_spec_error(text: str) -> None:
    assert_spec_error(text)


@INVALID
@given(groups_not_dividing())
def test_groups_not_dividing_channels_is_a_spec_error(text: str) -> None:
    assert_spec_error(text)


@INVALID
@given(bad_output_padding())
def test_output_padding_not_below_stride_or_dilation_is_a_spec_error(text: str) -> None:
    assert_spec_error(text)


@INVALID
@given(same_with_stride())
def test_same_padding_with_stride_is_a_spec_error(text: str) -> None:
    assert_spec_error(text)


@INVALID
@given(conv_transpose_empty_output())
def test_conv_transpose_with_empty_output_is_a_spec_error(text: str) -> None:
    assert_spec_error(text)


@INVALID
@given(conv_transpose_same())
def test_conv_transpose_rejects_same_and_valid(text: str) -> None:
    assert_spec_error(text)


@INVALID
@given(pool_empty_output())
def test_pool_with_empty_output_is_a_spec_error(text: str) -> None:
    assert_spec_error(text)


@INVALID
@given(non_positive_option())
def test_non_positive_options_are_spec_errors(text: str) -> None:
    assert_spec_error(text)
