"""Whole networks: branches, residuals, dense joins, templates, repeat, names, hierarchy and peak memory."""

from __future__ import annotations

import math
import textwrap
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convcost import analyze, loads
from convcost.costs import peak_activation_elements
from convcost.layers import aliases_input
from convcost.network import INPUT
from convcost.grouping import hierarchy, kind_summary


def build(text: str):
    return loads(textwrap.dedent(text), "net.yaml")


BRANCHED = """\
    input: 4x8x8                      # 256 elements
    layers:
      - concat:
          name: m
          branches:
            - [pointwise: {out: 2}]                          # a : 128
            - [pointwise: {out: 16}, pointwise: {out: 2}]    # b1: 1024, b2: 128
            - [max_pool: {kernel: 3, stride: 1, padding: 1}] # c : 256
      - pointwise: {out: 1}                                  # d : 64 (after the 512-element concat)
    """


def test_peak_of_branched_net_matches_hand_schedule():
    # Hand-worked schedule (elements alive while each node runs):
    #   a : input 256 + a 128                          = 384
    #   b1: input 256 + a 128 + b1 1024                = 1408
    #   b2: input 256 + a 128 + b1 1024 + b2 128       = 1536  <- peak; b1 freed after
    #   c : input 256 + a 128 + b2 128 + c 256         = 768   ; input freed after its last branch
    #   concat: a 128 + b2 128 + c 256 + concat 512    = 1024
    #   d : concat 512 + d 64                          = 576
    net = build(BRANCHED)
    assert peak_activation_elements(net) == 1536
    report = analyze(net, batch=2, dtype="float16")
    assert report.totals.peak_activation_bytes == 1536 * 2 * 2
    assert [row.name for row in report.layers] == [
        "m.branch1.pointwise_1", "m.branch2.pointwise_1", "m.branch2.pointwise_2", "m.branch3.max_pool_1",
        "m.concat", "pointwise_1"]
    assert report.layers[4].output_shape == (2 + 2 + 4, 8, 8)


def test_residual_shortcut_stays_alive_across_the_block():
    # body: pw (256) -> relu (256) ; add (256). The input (256) lives until the add.
    #   pw: 256 + 256 = 512 ; relu: 256 + 256 + 256 = 768 ; add: 256 + 256 + 256 = 768
    net = build("""\
        input: 4x8x8
        layers:
          - residual: {name: r, body: [pointwise: {out: 4}, relu]}
        """)
    assert peak_activation_elements(net) == 768
    plain = build("""\
        input: 4x8x8
        layers: [pointwise: {out: 4}, relu]
        """)
    assert peak_activation_elements(plain) == 512


def test_views_share_storage():
    # linear 64 -> 1000, dropout (a view), linear 1000 -> 10:
    #   fc1: 64 + 1000 = 1064 (peak) ; dropout: 1000 ; fc2: 1000 + 10 = 1010
    net = build("""\
        input: 64
        layers: [linear: {out: 1000}, dropout, linear: {out: 10}]
        """)
    assert peak_activation_elements(net) == 1064
    inplace = build("""\
        input: 4x8x8
        layers: [pointwise: {out: 8}, relu: {inplace: true}, pointwise: {out: 2}]
        """)
    # pw1: 256 + 512 ; relu in place: 512 ; pw2: 512 + 128
    assert peak_activation_elements(inplace) == 768


def test_dense_concatenates_input_with_body():
    report = analyze(build("""\
        input: 16x8x8
        layers:
          - dense: {name: d1, body: [batch_norm, relu, conv: {out: 12, kernel: 3, padding: 1, bias: false}]}
          - dense: {name: d2, body: [conv: {out: 12, kernel: 3, padding: 1, bias: false}]}
        """))
    rows = {row.name: row for row in report.layers}
    assert rows["d1.concat"].output_shape == (28, 8, 8)
    assert rows["d2.concat"].output_shape == (40, 8, 8)
    assert rows["d2.body.conv_1"].macs == 12 * 64 * 28 * 9


def test_templates_repeat_and_unique_names():
    report = analyze(build("""\
        input: 8x16x16
        blocks:
          unit:
            params: {width: 8, k: 3}
            layers:
              - conv: {out: $width, kernel: $k, padding: "${k // 2}"}
              - relu
        layers:
          - unit: {name: a}
          - unit: {name: b, width: 16, repeat: 3}
          - unit: {k: 5}
          - sequence: {name: stage, layers: [unit, unit]}
        """))
    names = [row.name for row in report.layers]
    assert len(names) == len(set(names))
    assert names[:2] == ["a.conv_1", "a.relu_1"]
    assert "b.2.conv_1" in names and "unit_1.conv_1" in names and "stage.unit_2.relu_1" in names
    rows = {row.name: row for row in report.layers}
    assert rows["b.0.conv_1"].macs == 16 * 256 * 8 * 9
    assert rows["b.1.conv_1"].macs == 16 * 256 * 16 * 9
    assert rows["unit_1.conv_1"].macs == 8 * 256 * 16 * 25
    assert rows["stage.unit_1.conv_1"].output_shape == (8, 16, 16)


def test_template_sees_in_channels():
    report = analyze(build("""\
        input: 24x8x8
        blocks:
          expand:
            params: [t]
            layers: [pointwise: {out: "${in_channels * t}"}]
        layers:
          - expand: {t: 6}
        """))
    assert report.layers[0].output_shape == (144, 8, 8)


def test_hierarchy_subtotals_and_depth():
    report = analyze(build("""\
        input: 3x32x32
        layers:
          - conv: {name: stem, out: 16, kernel: 3, padding: 1}
          - sequence:
              name: stage1
              layers:
                - residual: {name: block1, body: [conv: {out: 16, kernel: 3, padding: 1}]}
                - residual: {name: block2, body: [conv: {out: 16, kernel: 3, padding: 1}]}
          - global_avg_pool
        """))
    full = hierarchy(report)
    groups = {row.group.name: row.group for row in full if row.group}
    assert set(groups) == {"stage1", "stage1.block1", "stage1.block1.body", "stage1.block2", "stage1.block2.body"}
    stage_rows = [row for row in report.layers if row.name.startswith("stage1.")]
    assert groups["stage1"].macs == sum(row.macs for row in stage_rows) == 2 * 16 * 1024 * 16 * 9
    assert groups["stage1"].params == sum(row.params for row in stage_rows)
    assert groups["stage1.block1"].layers == 2  # conv + add
    # depth 1: top-level rows only, the stage collapsed to one row carrying its subtotal
    top = hierarchy(report, depth=1)
    assert [row.label for row in top] == ["stem", "stage1", "global_avg_pool_1"]
    assert sum((row.group or row.layer).macs for row in top) == report.totals.macs
    # depth 2: the two blocks appear, not their contents
    assert [row.label for row in hierarchy(report, depth=2)] == ["stem", "stage1", "block1", "block2",
                                                                  "global_avg_pool_1"]


def test_kind_summary_partitions_the_totals():
    report = analyze(build("""\
        input: 32x16x16
        layers:
          - pointwise: {out: 64}
          - depthwise: {kernel: 3, padding: 1}
          - conv: {out: 64, kernel: 3, padding: 1, groups: 4}
          - conv: {out: 8, kernel: 3, padding: 1}
          - global_avg_pool
          - flatten
          - linear: {out: 10}
        """))
    kinds = {k.category: k for k in kind_summary(report)}
    assert kinds["conv 1x1"].macs == 64 * 256 * 32
    assert kinds["conv depthwise"].macs == 64 * 256 * 9
    assert kinds["conv grouped"].macs == 64 * 256 * 16 * 9
    assert kinds["conv kxk"].macs == 8 * 256 * 64 * 9
    assert kinds["linear"].macs == 80
    assert sum(k.macs for k in kinds.values()) == report.totals.macs
    assert sum(k.params for k in kinds.values()) == report.totals.params
    assert sum(k.layers for k in kinds.values()) == len(report.layers)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_cli_depth_option(depth):
    from typer.testing import CliRunner

    from convcost.cli import app

    from .conftest import EXAMPLES

    result = CliRunner().invoke(app, ["analyze", str(EXAMPLES / "resnet18.yaml"), "--depth", str(depth)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "By kind" in result.stdout


def test_identical_layers_share_work_but_not_errors_or_shapes():
    """The builder reuses a built layer for identical (kind, options, input shape); check that reuse is exact."""
    from convcost.errors import SpecError

    report = analyze(build("""\
        input: 8x16x16
        layers:
          - conv: {out: 8, kernel: 3, padding: 1}
          - conv: {out: 8, kernel: 3, padding: 1}
          - conv: {out: 8, kernel: 3, stride: 2}
          - conv: {out: 8, kernel: 3, stride: 2}
        """))
    assert [row.output_shape for row in report.layers] == [(8, 16, 16), (8, 16, 16), (8, 7, 7), (8, 3, 3)]
    assert [row.macs for row in report.layers] == [8 * 256 * 72, 8 * 256 * 72, 8 * 49 * 72, 8 * 9 * 72]
    with pytest.raises(SpecError) as info:  # 1 == True in Python, but `bias: 1` is still an error
        build("""\
            input: 8x16x16
            layers:
              - conv: {out: 8, kernel: 3, bias: true}
              - conv: {out: 8, kernel: 3, bias: 1}
            """)
    assert info.value.where.line == 4 and info.value.layer == "conv_2"


# --------------------------------------------------------------------------- peak memory, brute force


def _random_entry(rnd: Any, channels: int, depth: int) -> tuple[Any, int]:
    """A random layer or structure that works on ``channels`` input channels, and its output channels."""
    choice = rnd.randrange(11 if depth < 3 else 8)
    if choice == 0:
        out = rnd.randint(1, 4)
        return {"pointwise": {"out": out}}, out
    if choice < 8:
        return [
            "relu", {"relu": {"inplace": True}}, "dropout", "identity", "batch_norm", "sigmoid",
            {"max_pool": {"kernel": 3, "stride": 1, "padding": 1}},
        ][choice - 1], channels
    if choice == 8:
        branches, total = [], 0
        for _ in range(rnd.randint(1, 3)):
            body, out = _random_body(rnd, channels, depth + 1)
            branches.append(body)
            total += out
        return {"concat": {"branches": branches}}, total
    if choice == 9:
        body, out = _random_body(rnd, channels, depth + 1)
        shortcut = [{"pointwise": {"out": channels}}] if rnd.random() < 0.3 else []
        return {"residual": {"body": [*body, {"pointwise": {"out": channels}}], "shortcut": shortcut}}, channels
    body, out = _random_body(rnd, channels, depth + 1)
    return {"dense": {"body": body}}, channels + out


def _random_body(rnd: Any, channels: int, depth: int) -> tuple[list[Any], int]:
    entries = []
    for _ in range(rnd.randint(0, 4)):
        entry, channels = _random_entry(rnd, channels, depth)
        entries.append(entry)
    return entries, channels


def _brute_force_peak(net: Any) -> int:
    """Alive while node i runs: every allocation made at or before i (the input first) whose last
    reader, a view of it included, is i or later; the network's result is never freed."""
    nodes = net.nodes

    def owner(ref: int) -> int:  # the allocation a tensor lives in, through views
        while ref != INPUT and aliases_input(nodes[ref].layer):
            ref = nodes[ref].inputs[0]
        return ref

    size = {INPUT: math.prod(net.input_shape)}
    size.update({i: math.prod(node.output_shape) for i, node in enumerate(nodes) if owner(i) == i})
    last = {a: max([i for i, node in enumerate(nodes) if owner(i) == a or any(owner(r) == a for r in node.inputs)],
                   default=-1) for a in size}
    last[owner(len(nodes) - 1)] = math.inf
    steps = [sum(n for a, n in size.items() if a <= i and last[a] >= i) for i in range(len(nodes))]
    return max([size[INPUT], *steps])


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(rnd=st.randoms(use_true_random=False))
def test_peak_matches_a_brute_force_schedule_on_random_networks(rnd: Any) -> None:
    channels = rnd.randint(1, 4)
    body, _ = _random_body(rnd, channels, 0)
    text = yaml.safe_dump({"input": f"{channels}x{rnd.randint(1, 3)}x{rnd.randint(1, 3)}", "layers": body or ["relu"]})
    net = loads(text, "net.yaml")
    assert peak_activation_elements(net) == _brute_force_peak(net)
