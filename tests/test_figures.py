"""The figures beyond MACs put together for a report: per-layer values add up to the totals, and each
comes from its own module's convention (each module has its own tests against brute force or PyTorch)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from convcost import analyze, load, loads
from convcost.figures import Settings, figures
from convcost.hardware import get_profile

from .conftest import EXAMPLES

CLASSIC = "input: 192x28x28\nlayers:\n  - conv: {out: 32, kernel: 5, padding: same}\n"


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_b0", "fpn_resnet50", "two_stream_fusion"])
def test_rows_add_up_to_the_totals(name: str) -> None:
    network = load(str(EXAMPLES / f"{name}.yaml"))
    report = analyze(network, batch=2)
    result = figures(network, report, Settings(hardware=get_profile("t4")))
    assert len(result.layers) == len(report.layers)
    assert result.macs_nonpadding == sum(row.macs_nonpadding for row in result.layers) <= report.totals.macs
    assert result.forward_macs == report.totals.macs
    assert result.training_macs == result.forward_macs + result.weight_grad_macs + result.input_grad_macs
    assert result.training_macs == sum(row.training_macs for row in result.layers)
    assert result.memory is not None
    assert result.memory.saved_activation_bytes == sum(row.saved_activation_bytes or 0 for row in result.layers)
    assert result.roofline is not None
    assert result.roofline.seconds == sum((row.roofline.seconds for row in result.layers if row.roofline),
                                          Fraction(0))
    assert result.receptive_outputs is not None
    assert [name for name, _ in result.receptive_outputs] == [name for name, _ in report.outputs]


def test_the_classic_layer() -> None:
    network = loads(CLASSIC)
    result = figures(network, analyze(network))
    (row,) = result.layers
    assert row.macs_nonpadding == 32 * 192 * 134 * 134 == 110_321_664  # 28 * 5 - 2 * (2 + 1) taps per axis
    assert row.weight_grad_macs == 120_422_400 and row.input_grad_macs == 0  # the input needs no gradient
    assert row.receptive_field is not None
    assert [(axis.size, axis.jump) for axis in row.receptive_field] == [(5, 1), (5, 1)]
    assert result.memory is not None and result.memory.saved_activation_bytes == 192 * 28 * 28 * 4
    # Adam: params, gradients and two state copies, all float32
    assert result.memory.total_bytes == 192 * 28 * 28 * 4 + 4 * 153_632 * 4
    assert result.roofline is None and result.notes == ()


def test_an_int8_report_has_no_training_memory_and_says_why() -> None:
    network = loads(CLASSIC)
    result = figures(network, analyze(network, dtype="int8"))
    assert result.memory is None and all(row.saved_activation_bytes is None for row in result.layers)
    assert result.notes and "int8" in result.notes[0]
    assert result.training_macs == 3 * 120_422_400 - 120_422_400


def test_settings_refuse_an_unknown_optimizer() -> None:
    with pytest.raises(ValueError, match="optimizer must be one of"):
        Settings(optimizer="lion")
