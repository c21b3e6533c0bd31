"""The 1x1 bottleneck rewrite: shapes kept, MACs equal to the closed-form saving,
marked bottlenecks and reductions, and GoogLeNet against its naive form.

Expected values are computed here from the formulas (MACs = output positions x
C_out x C_in/groups x kernel volume), never copied from convcost's output.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from convcost import SpecError, analyze, load, loads
from convcost.bottleneck import (
    BottleneckRule, apply_marked_bottlenecks, insert_bottlenecks, remove_reductions, with_input_shape,
)
from convcost.cli import app
from convcost.layers import Conv

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
runner = CliRunner()


def conv_out(length: int, k: int, s: int, p: int, d: int = 1) -> int:
    return (length + 2 * p - d * (k - 1) - 1) // s + 1


# --------------------------------------------------------------------------- the classic example

def test_classic_5x5_after_1x1():
    network = loads("input: 192x28x28\nlayers:\n  - conv: {name: c, out: 32, kernel: 5, padding: same}\n")
    rewritten = insert_bottlenecks(network, BottleneckRule(width=16, include_first=True))
    assert [node.name for node in rewritten.nodes] == ["c_reduce", "c"]
    assert rewritten.output_shape == network.output_shape == (32, 28, 28)
    hw = 28 * 28
    assert analyze(network).totals.macs == hw * 32 * 192 * 25 == 120_422_400
    assert analyze(rewritten).totals.macs == hw * 16 * 192 + hw * 32 * 16 * 25 == 12_443_648
    # params: 1x1 192->16 with bias, 5x5 16->32 with bias
    assert analyze(rewritten).totals.params == 192 * 16 + 16 + 16 * 25 * 32 + 32
    # The intermediate tensor costs activation memory: 16 x 28 x 28 float32.
    delta = analyze(rewritten).totals.activation_bytes - analyze(network).totals.activation_bytes
    assert delta == 16 * hw * 4


def test_expand_is_resnet_style():
    network = loads("input: 256x14x14\nlayers:\n  - conv: {name: c, out: 256, kernel: 3, padding: 1, bias: false}\n")
    rewritten = insert_bottlenecks(network, BottleneckRule(width=64, expand=True, include_first=True))
    assert [node.name for node in rewritten.nodes] == ["c_reduce", "c", "c_expand"]
    assert [node.output_shape for node in rewritten.nodes] == [(64, 14, 14), (64, 14, 14), (256, 14, 14)]
    hw = 14 * 14
    assert analyze(rewritten).totals.macs == hw * (256 * 64 + 64 * 64 * 9 + 64 * 256)
    assert analyze(rewritten).totals.params == 256 * 64 + 64 * 64 * 9 + 64 * 256


def test_fraction_is_floored_per_layer():
    network = loads("input: 100x8x8\nlayers:\n  - conv: {name: a, out: 30, kernel: 3}\n"
                    "  - conv: {name: b, out: 10, kernel: 3}\n")
    rewritten = insert_bottlenecks(network, BottleneckRule(fraction=Fraction(1, 3), include_first=True))
    widths = {node.name: node.layer.out_channels for node in rewritten.nodes if node.name.endswith("_reduce")}
    assert widths == {"a_reduce": 33, "b_reduce": 10}


@pytest.mark.parametrize("spec, width, eligible", [
    ("conv: {out: 8, kernel: 1}", 4, False),  # 1x1 is never reduced
    ("conv: {out: 8, kernel: 3, groups: 2}", 4, False),  # grouped
    ("depthwise: {kernel: 3}", 4, False),
    ("conv: {out: 8, kernel: 3}", 64, False),  # not narrower than the 64 input channels
    ("conv: {out: 8, kernel: 3}", 63, True),
    ("conv: {out: 8, kernel: [1, 3]}", 4, True),  # 1x3 counts as kernel > 1
])
def test_eligibility(spec, width, eligible):
    network = loads(f"input: 64x9x9\nlayers:\n  - {spec}\n")
    rewritten = insert_bottlenecks(network, BottleneckRule(width=width, include_first=True))
    assert (len(rewritten.nodes) == 2) is eligible


def test_thresholds():
    network = loads("input: 64x9x9\nlayers:\n  - conv: {out: 32, kernel: 3}\n  - conv: {out: 32, kernel: 5}\n")
    assert len(insert_bottlenecks(network, BottleneckRule(width=8, min_kernel=5, include_first=True)).nodes) == 3
    assert len(insert_bottlenecks(network, BottleneckRule(width=8, min_in_channels=40,
                                                          include_first=True)).nodes) == 3
    assert len(insert_bottlenecks(network, BottleneckRule(width=16, expand=True, include_first=True)).nodes) == 6
    # width 32: the first conv writes 32 (not > 32, nothing to expand), the second reads 32
    assert len(insert_bottlenecks(network, BottleneckRule(width=32, expand=True, include_first=True)).nodes) == 2
    assert len(insert_bottlenecks(network, BottleneckRule(width=32, include_first=True)).nodes) == 3


def test_rewrite_is_pure():
    network = load(str(EXAMPLES / "resnet18.yaml"))
    before = analyze(network)
    insert_bottlenecks(network, BottleneckRule(fraction=Fraction(1, 4), expand=True))
    assert analyze(network) == before


# --------------------------------------------------------------------------- random specs

@st.composite
def conv_stacks(draw):
    """A random chain of 2-D layers, plus the list of conv layer options used."""
    channels = draw(st.integers(1, 48))
    size = draw(st.integers(4, 20))
    layers = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["conv", "conv", "conv", "relu", "batch_norm", "max_pool", "pointwise"]))
        if kind == "conv":
            k = draw(st.integers(1, 5))
            options = {"out": draw(st.integers(1, 48)), "kernel": k, "stride": draw(st.integers(1, 2)),
                       "padding": draw(st.integers(0, k // 2)), "bias": draw(st.booleans())}
            if draw(st.booleans()):
                options["groups"] = draw(st.sampled_from([1, 2]))
            layers.append({"conv": options})
        elif kind == "pointwise":
            layers.append({"pointwise": {"out": draw(st.integers(1, 48))}})
        elif kind == "max_pool":
            layers.append({"max_pool": {"kernel": 2}})
        else:
            layers.append(kind)
    return {"input": f"{channels}x{size}x{size}", "layers": layers}


def build(spec_dict):
    try:
        return loads(json.dumps(spec_dict))  # JSON is YAML
    except SpecError:
        assume(False)


def closed_form_macs_delta(network, width_of, expand):
    """Sum over eligible convs of (bottleneck MACs - original MACs), from the shapes alone."""
    delta = 0
    for node in network.nodes:
        layer = node.layer
        if not isinstance(layer, Conv):
            continue
        c_in, c_out = layer.in_channels, layer.out_channels
        w = width_of(c_in)
        if layer.groups != 1 or max(layer.kernel) < 2 or c_in <= w or (expand and c_out <= w):
            continue
        s_in = math.prod(node.input_shape[1:])
        s_out = math.prod(node.output_shape[1:])
        kvol = math.prod(layer.kernel)
        original = s_out * c_out * c_in * kvol
        if expand:
            new = s_in * c_in * w + s_out * w * w * kvol + s_out * w * c_out
        else:
            new = s_in * c_in * w + s_out * c_out * w * kvol
        delta += new - original
    return delta


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(spec=conv_stacks(), width=st.integers(1, 40), fraction=st.fractions(Fraction(1, 100), Fraction(99, 100)),
       use_fraction=st.booleans(), expand=st.booleans())
def test_random_rewrite_keeps_shapes_and_saves_the_closed_form(spec, width, fraction, use_fraction, expand):
    network = build(spec)
    rule = (BottleneckRule(fraction=fraction, expand=expand, include_first=True) if use_fraction
            else BottleneckRule(width=width, expand=expand, include_first=True))
    rewritten = insert_bottlenecks(network, rule)
    shapes = {node.name: node.output_shape for node in rewritten.nodes}
    for node in network.nodes:
        # With expand, the kxk keeps its name and x_expand's output takes the place of x's.
        assert shapes.get(f"{node.name}_expand", shapes[node.name]) == node.output_shape
    assert rewritten.output_shape == network.output_shape
    width_of = (lambda c: max(1, math.floor(fraction * c))) if use_fraction else (lambda c: width)
    expected = analyze(network).totals.macs + closed_form_macs_delta(network, width_of, expand)
    assert analyze(rewritten).totals.macs == expected


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(spec=conv_stacks(), width=st.integers(1, 40))
def test_random_rewrite_then_remove_reductions_is_the_original(spec, width):
    network = build(spec)
    rewritten = insert_bottlenecks(network, BottleneckRule(width=width))
    naive = remove_reductions(rewritten)
    assert [(n.name, n.layer.in_channels if isinstance(n.layer, Conv) else None, n.output_shape)
            for n in naive.nodes] == [(n.name, n.layer.in_channels if isinstance(n.layer, Conv) else None,
                                       n.output_shape) for n in network.nodes]
    assert analyze(naive).totals == analyze(network).totals


# --------------------------------------------------------------------------- marks in the spec

MARKED = """
input: 192x28x28
layers:
  - conv: {name: a, out: 32, kernel: 5, padding: same, bottleneck: 16}
  - conv: {name: b, out: 64, kernel: 3, padding: 1, bottleneck: 0.25}
"""


def test_marked_bottlenecks_apply_width_and_fraction():
    network = loads(MARKED)
    rewritten = apply_marked_bottlenecks(network)
    assert [(n.name, n.layer.out_channels) for n in rewritten.nodes] == [("a_reduce", 16), ("a", 32),
                                                                          ("b_reduce", 8), ("b", 64)]
    hw = 28 * 28
    assert analyze(network).totals.macs == hw * 32 * 192 * 25 + hw * 64 * 32 * 9  # marks cost nothing by themselves
    assert analyze(rewritten).totals.macs == hw * (192 * 16 + 16 * 25 * 32 + 32 * 8 + 8 * 9 * 64)


def test_marked_bottleneck_cli_matches_flag_form():
    one = runner.invoke(app, ["compare", "--json", "-"], input=MARKED.replace(", bottleneck: 0.25", ""))
    flags = runner.invoke(app, ["compare", "--json", "--input", "192x28x28", "--out", "32", "--kernel", "5",
                                "--padding", "same", "--bottleneck", "16"])
    assert one.exit_code == 0 and flags.exit_code == 0, one.stderr + flags.stderr
    first, second = json.loads(one.stdout), json.loads(flags.stdout)
    for side in ("baseline", "candidate"):
        assert first[side]["totals"]["macs"] > 0
    # The spec has one more layer (b) that is untouched; the deltas are the same.
    assert first["delta"]["macs"] == second["delta"]["macs"] == 12_443_648 - 120_422_400


@pytest.mark.parametrize("options, message", [
    ("bottleneck: 1.5", "fraction between 0 and 1"),
    ("bottleneck: 0", "width >= 1"),
    ("bottleneck: yes", "'bottleneck' must be"),
])
def test_bad_bottleneck_key(options, message):
    with pytest.raises(SpecError, match=message):
        loads(f"input: 8x8x8\nlayers:\n  - conv: {{out: 4, kernel: 3, {options}}}\n")


def test_mark_that_cannot_apply_points_at_the_line():
    network = loads("input: 8x8x8\nlayers:\n  - relu\n  - conv: {name: c, out: 4, kernel: 3, bottleneck: 8}\n",
                    source="draft.yaml")
    with pytest.raises(SpecError, match=r"draft.yaml:4.*layer 'c'.*not narrower than the 8 input channels"):
        apply_marked_bottlenecks(network)


def test_reduction_key_only_on_1x1():
    with pytest.raises(SpecError, match="marks a 1x1"):
        loads("input: 8x8x8\nlayers:\n  - conv: {out: 4, kernel: 3, reduction: true}\n")


def test_remove_reductions_takes_the_activation_along():
    network = loads("""
input: 64x10x10
layers:
  - pointwise: {name: r, out: 16, reduction: true}
  - batch_norm
  - relu
  - conv: {name: c, out: 32, kernel: 3}
""")
    naive = remove_reductions(network)
    assert [(n.name, n.input_shape, n.output_shape) for n in naive.nodes] == [("c", (64, 10, 10), (32, 8, 8))]
    assert analyze(naive).totals.macs == 8 * 8 * 32 * 64 * 9


@pytest.mark.parametrize("layers, message", [
    ("  - pointwise: {out: 16, reduction: true}\n", "feeds 0 layers"),
    ("  - pointwise: {out: 16, reduction: true}\n  - max_pool: {kernel: 2}\n", "must feed a convolution"),
    ("  - pointwise: {out: 16, stride: 2, reduction: true}\n  - conv: {out: 4, kernel: 3}\n", "stride 1"),
])
def test_remove_reductions_refuses_what_it_cannot_undo(layers, message):
    network = loads("input: 64x10x10\nlayers:\n" + layers)
    with pytest.raises(SpecError, match=message):
        remove_reductions(network)


def test_with_input_shape_rebuilds_every_shape():
    network = load(str(EXAMPLES / "one_by_one.yaml"))
    bigger = with_input_shape(network, (192, 56, 56))
    assert bigger.output_shape == (32, 56, 56)
    assert analyze(bigger).totals.macs == 4 * analyze(network).totals.macs


# --------------------------------------------------------------------------- GoogLeNet vs its naive form

#: Table 1 of Szegedy et al. 2014: (name, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj, H=W).
INCEPTION = [
    ("inception_3a", 64, 96, 128, 16, 32, 32, 28),
    ("inception_3b", 128, 128, 192, 32, 96, 64, 28),
    ("inception_4a", 192, 96, 208, 16, 48, 64, 14),
    ("inception_4b", 160, 112, 224, 24, 64, 64, 14),
    ("inception_4c", 128, 128, 256, 24, 64, 64, 14),
    ("inception_4d", 112, 144, 288, 32, 64, 64, 14),
    ("inception_4e", 256, 160, 320, 32, 128, 128, 14),
    ("inception_5a", 256, 160, 320, 32, 128, 128, 7),
    ("inception_5b", 384, 192, 384, 48, 128, 128, 7),
]


def inception_counts():
    """(name, reduced MACs, naive MACs, reduced params, naive params) per module, from Table 1 alone.

    Naive form: the 3x3 and 5x5 convs read the module's full input (Figure 2a);
    the 1x1 branch and the pool projection are as in the full module, so every
    module still outputs c1 + c3 + c5 + pp channels and the next module's input
    is unchanged."""
    rows = []
    c_in = 192  # conv2's output
    for name, c1, c3r, c3, c5r, c5, pp, hw in INCEPTION:
        positions = hw * hw
        reduced_w = c_in * c1 + c_in * c3r + c3r * 9 * c3 + c_in * c5r + c5r * 25 * c5 + c_in * pp
        naive_w = c_in * c1 + c_in * 9 * c3 + c_in * 25 * c5 + c_in * pp
        reduced_b = c1 + c3r + c3 + c5r + c5 + pp
        naive_b = c1 + c3 + c5 + pp
        rows.append((name, positions * reduced_w, positions * naive_w, reduced_w + reduced_b, naive_w + naive_b))
        c_in = c1 + c3 + c5 + pp
    return rows


def test_googlenet_against_its_naive_form_module_by_module():
    result = runner.invoke(app, ["compare", str(EXAMPLES / "googlenet.yaml"), "--json"])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    groups = {group["name"]: group for group in document["groups"]}
    saved_total = 0
    for name, reduced_macs, naive_macs, reduced_params, naive_params in inception_counts():
        group = groups[name]
        assert group["baseline"]["macs"] == naive_macs, name
        assert group["candidate"]["macs"] == reduced_macs, name
        assert group["baseline"]["params"] == naive_params, name
        assert group["candidate"]["params"] == reduced_params, name
        saved_total += naive_macs - reduced_macs
    # 3a: the paper's own example of the saving (128M with reductions)
    assert groups["inception_3a"]["candidate"]["macs"] == 128_049_152
    # Everything outside the modules is untouched, so the modules account for the whole saving.
    for name, group in groups.items():
        if not name.startswith("inception_"):
            assert group["baseline"] == group["candidate"], name
    assert document["delta"]["macs"] == -saved_total
    statuses = {row["status"] for row in document["layers"] if ".branch2.conv_1" in row["name"]}
    assert statuses == {"added"}  # the 3x3 reductions exist only in the candidate (GoogLeNet as written)


def test_googlenet_by_block_table_shows_each_module():
    result = runner.invoke(app, ["compare", str(EXAMPLES / "googlenet.yaml"), "--by-block", "--exact"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    for name, reduced_macs, naive_macs, _, _ in inception_counts():
        assert name in result.stdout
        assert f"{reduced_macs:,}" in result.stdout and f"{naive_macs:,}" in result.stdout
