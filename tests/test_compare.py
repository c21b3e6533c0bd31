"""`convcost compare`: the single-layer acceptance numbers, JSON shape, deltas and
ratios (self-comparison is zero, A vs B inverts B vs A), the memory cost shown
next to the saving, the text formats, and errors."""

from __future__ import annotations

import csv
import io
import json
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from convcost import analyze, load
from convcost.cli import app
from convcost.render.common import FORMATS
from convcost.compare import LAYER_FIELDS, TOTAL_FIELDS, compare
from convcost.render.common import format_percent, format_ratio
from convcost.render.comparison import COMPARISON_RENDERERS, compare_csv

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
runner = CliRunner()
SINGLE = ["--input", "192x28x28", "--out", "32", "--kernel", "5", "--padding", "same", "--bottleneck", "16"]
HW = 28 * 28
NAIVE_MACS = HW * 32 * 192 * 5 * 5
REDUCED_MACS = HW * 16 * 192 + HW * 32 * 16 * 5 * 5


def invoke(*args, columns=200):
    return runner.invoke(app, list(args), env={"COLUMNS": str(columns)})


# --------------------------------------------------------------------------- acceptance: single layer

def test_single_layer_json_numbers():
    result = invoke("compare", *SINGLE, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    document = json.loads(result.stdout)
    assert NAIVE_MACS == 120_422_400 and REDUCED_MACS == 12_443_648
    assert document["baseline"]["totals"]["macs"] == NAIVE_MACS
    assert document["candidate"]["totals"]["macs"] == REDUCED_MACS
    assert document["delta"]["macs"] == REDUCED_MACS - NAIVE_MACS
    assert document["ratio"]["macs"] == pytest.approx(NAIVE_MACS / REDUCED_MACS)
    assert document["ratio"]["buffers"] is None  # 0 buffers on both sides
    assert document["schema_version"] == 1
    # Both sides are shaped like analyze's JSON.
    analyzed = json.loads(invoke("analyze", *SINGLE[:-2], "--json").stdout)
    assert document["baseline"].keys() == analyzed.keys()
    assert document["baseline"]["totals"] == analyzed["totals"]
    statuses = {row["name"]: row["status"] for row in document["layers"]}
    assert statuses == {"conv_1_reduce": "added", "conv_1": "changed"}


def test_single_layer_table_numbers():
    exact = invoke("compare", *SINGLE, "--exact")
    assert exact.exit_code == 0, exact.stderr
    assert "120,422,400" in exact.stdout and "12,443,648" in exact.stdout
    assert "9.68x fewer" in exact.stdout  # 120,422,400 / 12,443,648 = 9.677...
    short = invoke("compare", *SINGLE)
    assert "120.4 M" in short.stdout and "12.4 M" in short.stdout and "9.68x fewer" in short.stdout
    assert "-89.7%" in short.stdout  # 1 - 12,443,648 / 120,422,400 = 0.8967


def test_memory_cost_of_the_intermediate_tensor_is_shown():
    """The 16x28x28 intermediate adds activation bytes; peak memory falls (the 192-channel input is
    freed after the 1x1). Both are in the totals table, and the worse one in a 'Worse' line."""
    document = json.loads(invoke("compare", *SINGLE, "--json").stdout)
    intermediate = 16 * HW * 4
    assert document["delta"]["activation_bytes"] == intermediate
    # peak: baseline input + output alive together; candidate max(input + mid, mid + output)
    base_peak = (192 + 32) * HW * 4
    cand_peak = max(192 + 16, 16 + 32) * HW * 4
    assert document["baseline"]["totals"]["peak_activation_bytes"] == base_peak
    assert document["candidate"]["totals"]["peak_activation_bytes"] == cand_peak
    table = invoke("compare", *SINGLE, "--exact").stdout
    assert f"+{intermediate:,} B" in table
    assert "Peak activations" in table and "Activations (sum)" in table
    assert "Worse" in table and "1.50x more" in table  # 98 KiB -> 147 KiB


def test_worse_values_are_coloured_red():
    from rich.console import Console

    from convcost.render.comparison import compare_table

    baseline = analyze(load(str(EXAMPLES / "one_by_one_naive.yaml")))
    candidate = analyze(load(str(EXAMPLES / "one_by_one.yaml")))
    console = Console(record=True, width=200, color_system="truecolor", force_terminal=True, file=io.StringIO())
    console.print(compare_table(compare(baseline, candidate)))
    html = console.export_html(inline_styles=True)
    assert "+49.0 KiB" in html
    red_segment = html.split("+49.0 KiB")[0].rsplit("<span", 1)[1]
    green_segment = html.split("9.68x fewer")[0].rsplit("<span", 1)[1]
    assert "color: #800000" in red_segment  # Rich's "red"
    assert "color: #008000" in green_segment  # Rich's "green"
    worse_line = html.split("Worse (1 added layer with new tensors)")[0].rsplit("<span", 1)[1]
    assert "color: #800000" in worse_line


# --------------------------------------------------------------------------- deltas and ratios

PAIRS = [("one_by_one_naive", "one_by_one"), ("resnet18", "resnet50"), ("vgg16", "resnet18"),
         ("googlenet", "resnet18"), ("mobilenet_v2", "resnet18")]


def report(stem):
    return analyze(load(str(EXAMPLES / f"{stem}.yaml")))


@pytest.mark.parametrize("stem", ["one_by_one", "resnet50", "googlenet", "mobilenet_v2"])
def test_self_comparison_is_zero(stem):
    result = invoke("compare", str(EXAMPLES / f"{stem}.yaml"), str(EXAMPLES / f"{stem}.yaml"), "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert all(value == 0 for key, value in document["delta"].items() if key != "flops_by_category")
    assert all(value == 0 for value in document["delta"]["flops_by_category"].values())
    totals = document["baseline"]["totals"]
    for field, value in document["ratio"].items():
        assert value == (1.0 if totals[field] else None)
    assert {row["status"] for row in document["layers"]} == {"same"}
    assert all(value == 0 for row in document["layers"] for value in row["delta"].values())


@pytest.mark.parametrize("a, b", PAIRS)
def test_a_vs_b_is_the_inverse_of_b_vs_a(a, b):
    forward, backward = compare(report(a), report(b)), compare(report(b), report(a))
    for field in TOTAL_FIELDS:
        assert forward.delta(field) == -backward.delta(field)
        ratio, inverse = forward.ratio(field), backward.ratio(field)
        if ratio is None or inverse is None:
            assert forward.total("baseline", field) == 0 or forward.total("candidate", field) == 0
        else:
            assert ratio * inverse == 1 and isinstance(ratio, Fraction)
    swap = {"added": "removed", "removed": "added", "changed": "changed", "replaced": "replaced", "same": "same"}

    def side(row, which):
        layer = getattr(row, which)
        return None if layer is None else layer.name

    # the same pairs either way round (the matching is symmetric), each with the inverse status and deltas
    back = {(side(row, "candidate"), side(row, "baseline")): row for row in backward.layers}
    assert len(back) == len(backward.layers) == len(forward.layers)
    for row in forward.layers:
        other = back[(side(row, "baseline"), side(row, "candidate"))]
        assert other.status == swap[row.status]
        for field in LAYER_FIELDS:
            assert row.delta(field) == -other.delta(field)


def test_delta_is_candidate_minus_baseline_by_name():
    a, b = report("one_by_one_naive"), report("one_by_one")
    comparison = compare(a, b)
    rows = {row.name: row for row in comparison.layers}
    assert rows["reduce"].status == "added"
    assert rows["conv5x5"].status == "changed"
    assert rows["conv5x5"].delta("macs") == HW * 32 * 16 * 25 - NAIVE_MACS
    assert [row.name for row in comparison.layers] == ["reduce", "conv5x5"]
    assert comparison.delta("macs") == REDUCED_MACS - NAIVE_MACS


@st.composite
def chains(draw):
    names = draw(st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=6, unique=True))
    layers = [f"  - conv: {{name: {name}, out: {draw(st.integers(1, 16))}, kernel: {draw(st.sampled_from([1, 3]))}, "
              f"padding: same}}" for name in names]
    return f"input: {draw(st.integers(1, 16))}x6x6\nlayers:\n" + "\n".join(layers) + "\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=chains(), second=chains(), batch=st.integers(1, 3))
def test_random_pairs_are_exact_inverses_and_sum_up(first, second, batch):
    from convcost import loads

    a, b = analyze(loads(first), batch=batch), analyze(loads(second), batch=batch)
    forward, backward = compare(a, b), compare(b, a)
    assert forward.deltas() == {field: -value for field, value in backward.deltas().items()}
    # every layer of both sides appears exactly once, and the layer deltas add up to the total deltas
    for which, report in (("baseline", a), ("candidate", b)):
        shown = [getattr(row, which) for row in forward.layers if getattr(row, which) is not None]
        assert sorted(shown, key=lambda layer: layer.name) == sorted(report.layers, key=lambda layer: layer.name)
    for field in LAYER_FIELDS:
        assert sum(row.delta(field) for row in forward.layers) == forward.delta(field)
    assert compare(a, a).deltas() == dict.fromkeys(TOTAL_FIELDS, 0)


# --------------------------------------------------------------------------- formats

@pytest.mark.parametrize("ratio_args, text", [((120_422_400, 12_443_648), "9.68x fewer"), ((100, 150), "1.50x more"),
                                              ((5, 5), "same"), ((0, 5), "new"), ((5, 0), "all saved")])
def test_format_ratio(ratio_args, text):
    assert format_ratio(*ratio_args) == text


@pytest.mark.parametrize("args, text", [((200, 100), "-50.0%"), ((100, 150), "+50.0%"), ((7, 7), "0.0%"),
                                        ((3, 2), "-33.3%"), ((0, 0), "-")])
def test_format_percent(args, text):
    assert format_percent(*args) == text


def test_every_format_has_a_renderer():
    assert set(COMPARISON_RENDERERS) == set(FORMATS)


def test_csv_rows_add_up_and_match_json():
    result = invoke("compare", str(EXAMPLES / "one_by_one_naive.yaml"), str(EXAMPLES / "one_by_one.yaml"),
                    "--format", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    total = rows[-1]
    assert total["scope"] == "total"
    assert int(total["baseline_macs"]) == NAIVE_MACS and int(total["candidate_macs"]) == REDUCED_MACS
    assert sum(int(row["delta_macs"]) for row in rows[:-1]) == int(total["delta_macs"])
    assert {row["name"]: row["status"] for row in rows[:-1]} == {"reduce": "added", "conv5x5": "changed"}
    assert rows[0]["baseline_macs"] == ""  # absent on the baseline side


def test_markdown_has_totals_and_layers():
    result = invoke("compare", *SINGLE, "--format", "markdown", "--exact")
    assert result.exit_code == 0, result.stderr
    assert "| MACs | 120,422,400 | 12,443,648 |" in result.stdout
    assert "9.68x fewer" in result.stdout and "| conv_1_reduce | added |" in result.stdout


def test_json_flag_and_format_agree():
    assert invoke("compare", *SINGLE, "--json").stdout == invoke("compare", *SINGLE, "--format", "json").stdout


def test_compare_csv_is_pure():
    comparison = compare(report("one_by_one_naive"), report("one_by_one"))
    assert compare_csv(comparison) == compare_csv(comparison)


# --------------------------------------------------------------------------- other forms and errors

def test_reduce_fraction_and_expand_on_a_spec():
    # The spec's only conv is its first: --include-first rewrites it (see test_first_conv_is_left_alone...).
    result = invoke("compare", str(EXAMPLES / "one_by_one_naive.yaml"), "--reduce", "0.25", "--expand",
                    "--include-first", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    w = 48  # 0.25 x 192
    # out 32 <= 48: with --expand the layer is not eligible, so nothing changes
    assert document["candidate"]["totals"]["macs"] == NAIVE_MACS
    narrow = json.loads(invoke("compare", str(EXAMPLES / "one_by_one_naive.yaml"), "--reduce", "0.1", "--expand",
                               "--include-first", "--json").stdout)
    w = 19  # floor(0.1 x 192)
    assert narrow["candidate"]["totals"]["macs"] == HW * (192 * w + w * w * 25 + w * 32)


@pytest.mark.parametrize("args, message", [
    ([], "give a SPEC"),
    (["a.yaml", "b.yaml", "c.yaml"], "at most two"),
    ([str(EXAMPLES / "one_by_one.yaml"), str(EXAMPLES / "one_by_one.yaml"), "--bottleneck", "8"], "two specs"),
    ([str(EXAMPLES / "one_by_one.yaml")], "nothing to compare"),
    (["--input", "192x28x28", "--out", "32", "--kernel", "5", "--bottleneck", "16", "--reduce", "0.5"], "not both"),
    (["--input", "192x28x28", "--out", "32", "--kernel", "5", "--reduce", "1.5"], "between 0 and 1"),
    ([*SINGLE, "--json", "--format", "csv"], "conflicts"),
    ([*SINGLE, "--format", "xml"], "--format must be one of"),
    ([str(EXAMPLES / "nope.yaml"), "--bottleneck", "8"], "nope.yaml"),
])
def test_errors_are_one_line_and_exit_2(args, message):
    result = invoke("compare", *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
