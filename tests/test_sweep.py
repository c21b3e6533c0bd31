"""`convcost sweep`: vectorised numbers equal the scalar engine (rewrite + analyze)
on random grid points, the Pareto mark equals a brute-force definition, overflow
falls back to exact Python ints, and the command's formats and errors."""

from __future__ import annotations

import csv
import io
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from convcost import analyze, load, loads
from convcost.bottleneck import BottleneckRule, insert_bottlenecks, with_input_shape
from convcost.cli import app
from convcost.render.common import FORMATS
from convcost.render.common import bar
from convcost.render.sweep import SWEEP_RENDERERS
from convcost.sweep import METRICS, grouped_pareto_mask, pareto_mask, sweep_layer, sweep_network

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
runner = CliRunner()


def scalar_layer_point(c_in, size, out, kernel, stride, padding, bias, width, expand, batch, dtype):
    """The scalar engine on one grid point: a one-layer spec, rewritten, analysed."""
    text = (f"input: {c_in}x{size}x{size}\nlayers:\n  - conv: {{name: c, out: {out}, kernel: {kernel}, "
            f"stride: {stride}, padding: {padding}, bias: {str(bias).lower()}}}\n")
    network = loads(text)
    rewritten = insert_bottlenecks(network, BottleneckRule(width=width, expand=expand, include_first=True))
    return analyze(rewritten, batch=batch, dtype=dtype).totals, analyze(network, batch=batch, dtype=dtype).totals


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c_in=st.integers(1, 300), out=st.integers(1, 300), stride=st.integers(1, 2), same=st.booleans(),
       bias=st.booleans(), expand=st.booleans(), batch=st.integers(1, 4),
       dtype=st.sampled_from(["float32", "float16", "int8"]), data=st.data())
def test_layer_sweep_equals_scalar_engine_on_random_points(c_in, out, stride, same, bias, expand, batch, dtype, data):
    widths = sorted(set(data.draw(st.lists(st.integers(1, 320), min_size=1, max_size=20))))
    kernels = sorted(set(data.draw(st.lists(st.integers(1, 7), min_size=1, max_size=4))))
    resolutions = sorted(set(data.draw(st.lists(st.integers(7, 40), min_size=1, max_size=4))))
    padding = "same" if same and stride == 1 else data.draw(st.integers(0, 1))
    spec = (f"input: {c_in}x8x8\nlayers:\n  - conv: {{name: c, out: {out}, kernel: 3, stride: {stride}, "
            f"padding: {padding}, bias: {str(bias).lower()}}}\n")
    node = loads(spec).nodes[0]
    result = sweep_layer(node.layer, node.input_shape, widths, kernels=kernels, resolutions=resolutions,
                         expand=expand, batch=batch, dtype=dtype)
    for index in data.draw(st.lists(st.integers(0, len(result) - 1), min_size=1, max_size=5)):
        point = result.point(index)
        totals, baseline = scalar_layer_point(c_in, point["resolution"], out, point["kernel"], stride, padding,
                                              bias, point["width"], expand, batch, dtype)
        for metric in METRICS:
            assert point[metric] == getattr(totals, metric), metric
            assert point[f"baseline_{metric}"] == getattr(baseline, metric), metric
        assert point["applied"] == (point["kernel"] != 1 and point["width"] < c_in
                                    and (not expand or point["width"] < out))


def test_layer_sweep_drops_empty_outputs_and_keeps_the_grid_order():
    node = loads("input: 16x8x8\nlayers:\n  - conv: {out: 8, kernel: 3}\n").nodes[0]
    result = sweep_layer(node.layer, node.input_shape, [2, 4], kernels=[3, 9], resolutions=[4, 8])
    kept = [(p["kernel"], p["resolution"], p["width"]) for p in map(result.point, range(len(result)))]
    assert kept == [(3, 4, 2), (3, 4, 4), (3, 8, 2), (3, 8, 4)]  # a 9x9 kernel does not fit 4 or 8


def test_huge_counts_fall_back_to_exact_python_ints():
    node = loads("input: 100000x4096x4096\nlayers:\n  - conv: {out: 100000, kernel: 3, padding: same}\n").nodes[0]
    result = sweep_layer(node.layer, node.input_shape, [10, 50_000], batch=1000)
    assert result.columns["macs"].dtype == object
    hw = 4096 * 4096
    w = 50_000
    expected = 1000 * (hw * 100_000 * w + hw * 100_000 * w * 9)
    assert expected > 2**63 and result.point(1)["macs"] == expected


@pytest.mark.parametrize("stem, resolutions", [("googlenet", None), ("resnet50", [160, 224]),
                                               ("mobilenet_v2", [96, 224]), ("resnet18", None)])
@pytest.mark.parametrize("expand", [False, True])
def test_network_sweep_equals_scalar_engine(stem, resolutions, expand):
    network = load(str(EXAMPLES / f"{stem}.yaml"))
    fractions = [Fraction(1, 8), Fraction(3, 10), Fraction(1, 2), Fraction(9, 10)]
    result = sweep_network(network, fractions=fractions, resolutions=resolutions, expand=expand)
    assert len(result) == len(fractions) * len(resolutions or [0])
    for index in range(len(result)):
        point = result.point(index)
        net = network if resolutions is None else with_input_shape(network, (3, point["resolution"],
                                                                             point["resolution"]))
        totals = analyze(insert_bottlenecks(net, BottleneckRule(fraction=fractions[index % len(fractions)],
                                                                expand=expand))).totals
        for metric in METRICS:
            assert point[metric] == getattr(totals, metric), (metric, point)
        assert point["baseline_macs"] == analyze(net).totals.macs


def test_network_sweep_leaves_the_first_conv_alone_as_the_rewrite_does():
    """Issue 13 item 4: the sweep and the scalar rewrite agree on the stem, with and without --include-first."""
    network = load(str(EXAMPLES / "resnet18.yaml"))
    for include_first in (False, True):
        result = sweep_network(network, fractions=[Fraction(1, 4)], expand=True, include_first=include_first)
        rule = BottleneckRule(fraction=Fraction(1, 4), expand=True, include_first=include_first)
        totals = analyze(insert_bottlenecks(network, rule)).totals
        assert all(result.point(0)[m] == getattr(totals, m) for m in METRICS)
    skipped = sweep_network(network, fractions=[Fraction(1, 4)], expand=True).point(0)["macs"]
    included = sweep_network(network, fractions=[Fraction(1, 4)], expand=True, include_first=True).point(0)["macs"]
    # conv1 (3 -> 64, 7x7, 112x112 out) vs its rewrite 3 -> 1 (224x224) -> 1 (7x7) -> 64
    assert skipped - included == 112 * 112 * 64 * 3 * 49 - (224 * 224 * 3 + 112 * 112 * 49 + 112 * 112 * 64)


def test_network_sweep_with_widths_and_batch():
    network = load(str(EXAMPLES / "resnet18.yaml"))
    result = sweep_network(network, widths=[16, 64, 1000], batch=3, dtype="float16")
    for index, width in enumerate([16, 64, 1000]):
        totals = analyze(insert_bottlenecks(network, BottleneckRule(width=width)), batch=3, dtype="float16").totals
        assert all(result.point(index)[m] == getattr(totals, m) for m in METRICS)
    assert result.point(2)["applied"] is False  # no conv reads more than 1000 channels


def brute_pareto(width, costs):
    n = len(width)
    return np.array([not any(width[j] >= width[i] and all(c[j] <= c[i] for c in costs)
                             and (width[j] > width[i] or any(c[j] < c[i] for c in costs)) for j in range(n))
                     for i in range(n)])


@settings(max_examples=200, deadline=None)
@given(data=st.data(), objectives=st.integers(1, 3), as_object=st.booleans())
def test_pareto_mask_equals_the_definition(data, objectives, as_object):
    n = data.draw(st.integers(1, 25))
    width = np.array(data.draw(st.lists(st.integers(1, 5), min_size=n, max_size=n)))
    costs = [np.array(data.draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)),
                      dtype=object if as_object else np.int64) for _ in range(objectives)]
    assert (pareto_mask(width, costs) == brute_pareto(width, costs)).all()


@settings(max_examples=100, deadline=None)
@given(data=st.data(), objectives=st.integers(1, 2))
def test_grouped_pareto_is_the_definition_within_each_kernel_and_resolution(data, objectives):
    """Issue 13 item 6: a point is only compared with points of its own kernel and resolution."""
    n = data.draw(st.integers(1, 30))
    draw = lambda low, high: np.array(data.draw(st.lists(st.integers(low, high), min_size=n, max_size=n)))  # noqa: E731
    columns = {"width": draw(1, 5), "kernel": draw(0, 2), "resolution": draw(7, 8),
               **{f"c{i}": draw(0, 6) for i in range(objectives)}}
    metrics = [f"c{i}" for i in range(objectives)]
    expected = np.zeros(n, dtype=bool)
    for key in {(k, r) for k, r in zip(columns["kernel"], columns["resolution"])}:
        members = np.flatnonzero((columns["kernel"] == key[0]) & (columns["resolution"] == key[1]))
        expected[members] = brute_pareto(columns["width"][members], [columns[m][members] for m in metrics])
    assert (grouped_pareto_mask(columns, metrics) == expected).all()


def test_bar():
    assert bar(0, 10) == "" and bar(10, 10, width=4) == "████" and bar(5, 10, width=4) == "██"
    assert bar(1, 80, width=1) == "▏"  # a non-zero value always shows
    assert bar(10, 10, width=4, ascii=True) == "####" and bar(1, 80, width=4, ascii=True) == "#"


# --------------------------------------------------------------------------- command

SINGLE = ["--input", "192x28x28", "--out", "32", "--kernel", "5", "--padding", "same"]


def invoke(*args):
    return runner.invoke(app, ["sweep", *args], env={"COLUMNS": "160"})


def test_cli_json_points_match_closed_form():
    result = invoke(*SINGLE, "--widths", "8:32:8", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    hw = 28 * 28
    assert [p["width"] for p in document["points"]] == [8, 16, 24, 32]
    for point in document["points"]:
        w = point["width"]
        assert point["macs"] == hw * 192 * w + hw * 32 * w * 25
        assert point["baseline_macs"] == 120_422_400
    assert document["count"] == 4


def test_cli_table_marks_pareto_and_shows_the_classic_point():
    result = invoke(*SINGLE, "--widths", "16", "--kernels", "3,5", "--exact")
    assert result.exit_code == 0, result.stderr
    assert "12,443,648" in result.stdout and "9.68x fewer" in result.stdout
    assert "#" in result.stdout and "Pareto-optimal" in result.stdout  # the bar, in ASCII off a terminal


def test_cli_csv_and_markdown():
    result = invoke(*SINGLE, "--widths", "4:12:4", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [int(r["width"]) for r in rows] == [4, 8, 12] and all(r["pareto"] in ("0", "1") for r in rows)
    markdown = invoke(*SINGLE, "--widths", "4:12:4", "--format", "markdown")
    assert markdown.exit_code == 0 and "| Width |" in markdown.stdout


def test_cli_whole_spec_and_layer_of_a_spec():
    whole = invoke(str(EXAMPLES / "googlenet.yaml"), "--fractions", "0.25,0.5", "--json")
    assert whole.exit_code == 0, whole.stderr
    assert [p["width"] for p in json.loads(whole.stdout)["points"]] == [0.25, 0.5]
    one = invoke(str(EXAMPLES / "googlenet.yaml"), "--layer", "conv2", "--widths", "16", "--json")
    assert one.exit_code == 0, one.stderr
    point = json.loads(one.stdout)["points"][0]
    assert point["macs"] == 56 * 56 * 64 * 16 + 56 * 56 * 192 * 16 * 9  # conv2: 64 -> 192, 3x3, 56x56


def test_every_format_has_a_sweep_renderer():
    assert set(SWEEP_RENDERERS) == set(FORMATS)


@pytest.mark.parametrize("args, message", [
    ([*SINGLE, "--widths", "8:4"], "start <= stop"),
    ([*SINGLE, "--widths", "a"], "--widths must look like"),
    ([*SINGLE, "--fractions", "0.5:1.5:0.5"], "between 0 and 1"),
    ([*SINGLE, "--widths", "8", "--fractions", "0.5"], "not both"),
    ([str(EXAMPLES / "googlenet.yaml"), "--kernels", "3"], "one layer"),
    ([str(EXAMPLES / "googlenet.yaml"), "--layer", "conv3"], "no layer named 'conv3'"),
    ([str(EXAMPLES / "googlenet.yaml"), "--resolutions", "100"], "avg_pool"),
    (["--input", "32x8x8", "--kind", "depthwise", "--kernel", "3"], "groups 1"),
    ([*SINGLE, "--pareto", "speed"], "--pareto takes"),
])
def test_cli_errors(args, message):
    result = invoke(*args)
    assert result.exit_code == 2, result.stdout
    assert message in result.stderr and result.stdout == "" and "Traceback" not in result.stderr
