"""Correctness at scale (no timings): generated 10,000-layer specs against closed forms.

The specs come from benchmarks/gen_specs.py (the scale benchmark's generator);
every expected total below is worked out by hand from the layer formulas in
docs/conventions.md, per period of the stack and per level of the branched unit.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from convcost import analyze, loads
from convcost.grouping import block_groups, hierarchy
from convcost.render.analysis import report_dict
from convcost.render.common import json_text

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("gen_specs", ROOT / "benchmarks" / "gen_specs.py")
gen_specs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen_specs)

C, H, W = 16, 8, 8
HW = H * W
ELEMENTS = C * HW  # one 16x8x8 activation


def test_stack_10000_totals_match_closed_forms():
    layers = 10_000
    network = loads(gen_specs.stack_spec(layers))
    assert len(network.nodes) == layers
    names = [node.name for node in network.nodes]
    assert len(set(names)) == layers
    assert names[:4] == ["conv_1", "batch_norm_1", "relu_1", "pointwise_1"]
    assert names[-1] == f"pointwise_{layers // 4}"

    periods = layers // 4  # conv 3x3 (no bias) -> batch_norm -> relu -> pointwise (bias), 16 channels throughout
    conv_macs = HW * C * C * 9
    pointwise_macs = HW * C * C
    totals = analyze(network).totals
    assert totals.macs == periods * (conv_macs + pointwise_macs)
    assert totals.params == periods * (C * C * 9 + 2 * C + C * C + C)
    assert totals.buffers == periods * 2 * C
    expected_flops = {"mac": 2 * totals.macs, "bias": periods * ELEMENTS, "batch_norm": periods * 2 * ELEMENTS,
                      "activation": periods * ELEMENTS}
    assert {k: v for k, v in totals.flops_by_category if v} == expected_flops
    assert totals.flops == sum(expected_flops.values())
    assert totals.activation_bytes == layers * ELEMENTS * 4
    # A chain: at most one layer's input and output are alive at once.
    assert totals.peak_activation_bytes == 2 * ELEMENTS * 4
    assert network.output_shape == (C, H, W)


@pytest.mark.parametrize("depth", [1, gen_specs.BRANCH_DEPTH])
def test_branched_totals_match_closed_forms(depth):
    layers = 10_000
    network = loads(gen_specs.branched_spec(layers, depth=depth))
    per_unit = 10 * depth
    units, padding = divmod(layers, per_unit)
    assert len(network.nodes) == layers
    names = [node.name for node in network.nodes]
    assert len(set(names)) == layers, "generated names must be unique paths"
    assert sum(1 for name in names if name.endswith(".concat")) == units * depth
    assert sum(1 for name in names if name.endswith(".add")) == units * depth

    # One level: conv 3x3 16->16 (no bias), bn, relu; concat of [1x1 16->8], [3x3 16->8, relu] and the
    # input itself (8 + 8 + 16 = 32 channels); 1x1 32->16; (deeper levels); add; relu.
    level_macs = HW * C * C * 9 + HW * 8 * C + HW * 8 * C * 9 + HW * C * 32
    level_params = C * C * 9 + 2 * C + (8 * C + 8) + (8 * C * 9 + 8) + (C * 32 + C)
    level_bias = 8 * HW + 8 * HW + ELEMENTS
    level_activation = ELEMENTS + 8 * HW + ELEMENTS  # relu, branch relu, relu after the add
    totals = analyze(network).totals
    levels = units * depth
    assert totals.macs == levels * level_macs
    assert totals.params == levels * level_params
    assert totals.buffers == levels * 2 * C
    expected_flops = {"mac": 2 * totals.macs, "bias": levels * level_bias, "batch_norm": levels * 2 * ELEMENTS,
                      "activation": levels * level_activation + padding * ELEMENTS, "add": levels * ELEMENTS}
    assert {k: v for k, v in totals.flops_by_category if v} == expected_flops
    assert totals.flops == sum(expected_flops.values())
    assert network.output_shape == (C, H, W)


def test_json_text_is_the_same_document_one_layer_per_line():
    network = loads(gen_specs.branched_spec(600, depth=3))
    data = report_dict(analyze(network))
    text = json_text(data)
    assert json.loads(text) == data
    lines = text.splitlines()
    layer_lines = [line for line in lines if line.startswith('    {"name": ')]
    assert len(layer_lines) == sum(len(data[key]) for key in ("inputs", "outputs", "layers", "blocks"))


def test_block_groups_are_the_hierarchy_groups_in_order():
    report = analyze(loads(gen_specs.branched_spec(300, depth=3)))
    groups = block_groups(report)
    assert groups == tuple(row.group for row in hierarchy(report) if row.group is not None)
    assert len(groups) > 100
    # brute force: a group is every row named under it, summed; every prefix is a group, once
    prefixes = {row.name.rsplit(".", k)[0] for row in report.layers for k in range(1, row.name.count(".") + 1)}
    assert sorted(g.name for g in groups) == sorted(prefixes)
    for group in groups:
        members = [row for row in report.layers if row.name.startswith(group.name + ".")]
        assert group.layers == len(members)
        assert group.macs == sum(row.macs for row in members)
        assert group.activation_bytes == sum(row.activation_bytes for row in members)
        assert group.output_shape == members[-1].output_shape
