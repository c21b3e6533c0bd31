"""Issue 13: readable at 60-120 columns, honest comparisons, and the sharp edges a new user hit.

One section per numbered defect; each test failed on the commit before the fix (f2c51c5) unless its
docstring says otherwise. Expected values are computed here from the layer shapes (closed forms), or
are the figures the issue itself reports.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convcost import analyze, load, loads
from convcost.cli import app
from convcost.render.analysis import report_renderable
from convcost.render.common import View

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
runner = CliRunner()
CLASSIC = ["--input", "192x28x28", "--out", "32", "--kernel", "5", "--padding", "same"]


def run(*args: str, columns: int | None = None, **env: str):
    environment = {"COLUMNS": str(columns)} if columns else {}
    environment.update(env)
    return runner.invoke(app, list(args), env=environment)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# --------------------------------------------------------------------------- 1. sweep's progress bar

def test_1_sweep_with_the_progress_bar_on_does_not_crash() -> None:
    """More than 4 resolutions turn the bar on; its label formatted a total of None (TypeError, exit 1)."""
    result = run("sweep", str(EXAMPLES / "one_by_one.yaml"), "--resolutions", "7:30", "--json")
    assert result.exit_code == 0, result.exception
    document = json.loads(result.stdout)
    assert document["count"] == 19 * 24  # the default 19 fractions x 24 resolutions
    assert sorted({point["resolution"] for point in document["points"]}) == list(range(7, 31))


# --------------------------------------------------------------------------- 2. layouts that fit

@pytest.mark.parametrize("width", [60, 80, 120])
@pytest.mark.parametrize("command", [
    ["analyze", "examples/googlenet.yaml"], ["analyze", "examples/resnet50.yaml"],
    ["analyze", "examples/mobilenet_v2.yaml", "--exact"], ["compare", "examples/googlenet.yaml"],
    ["compare", "examples/resnet18.yaml", "--reduce", "0.25", "--expand"],
    ["compare", "examples/googlenet.yaml", "--by-block"],
    ["sweep", *CLASSIC, "--widths", "4:64:4", "--kernels", "3,5"],
    ["sweep", "examples/resnet18.yaml", "--fractions", "0.25,0.5", "--resolutions", "160,224"],
], ids=lambda value: "-".join(value) if isinstance(value, list) else str(value))
def test_2_tables_fit_the_width_without_cutting_anything(command: list[str], width: int,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """At 80 columns analyze cut names to 'co…', compare to 'stage2.res…', sweep numbers to '12… M'; at 60
    values were split from their units. Now every line fits and every token is whole."""
    monkeypatch.chdir(ROOT)
    result = run(*command, columns=width)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= width
    assert "…" not in result.stdout
    # no number is split from its unit at a line end: a line never ends in a bare number before a unit line
    assert not any(re.search(r"\d$", line) and re.match(r"\s*(K|M|G|T|KiB|MiB|GiB|MACs|FLOPs)\b", after)
                   for line, after in zip(lines, lines[1:]))


def test_2_every_name_in_the_narrowest_table_is_whole() -> None:
    report = analyze(load(str(EXAMPLES / "resnet50.yaml")))
    text = report_renderable(report, View(width=60, ascii=True)).text()
    words = set(text.split())
    for row in report.layers:
        assert row.name.rsplit(".", 1)[-1] in words and row.kind not in ("",)
    assert max(map(len, text.splitlines())) <= 60


def test_2_off_a_terminal_the_table_takes_its_natural_width_with_no_trailing_spaces(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Piped output kept a 100-130-column width with trailing spaces on every line."""
    monkeypatch.delenv("COLUMNS", raising=False)
    result = runner.invoke(app, ["analyze", str(EXAMPLES / "one_by_one.yaml")])
    lines = result.stdout.splitlines()
    assert all(line == line.rstrip() for line in lines)
    header = next(line for line in lines if line.startswith("Layer"))
    # natural width: every column of the default set, side by side, whatever the default terminal is
    assert header.split() == ["Layer", "Kind", "Input", "Output", "(CxHxW)", "Kernel", "Stride", "Pad", "Groups",
                              "MACs", "Params", "Activations", "%", "MACs"]
    assert result.stdout.isascii()  # plain ASCII off a terminal: no box, arrow or bar characters


def test_2_title_names_no_file_a_pip_user_lacks_and_the_totals_line_is_bold() -> None:
    report = analyze(load(str(EXAMPLES / "googlenet.yaml")))
    lines = report_renderable(report, View(width=80))
    text = lines.text()
    assert "docs/conventions.md" not in text and "see convcost --help" in text
    # the totals sentence is the last thing on screen, in bold (it was a dim italic caption)
    total = [index for index, (line, _) in enumerate(lines.lines) if line.startswith("Total:")]
    assert total and all(style == "bold" for _, style in lines.styles(total[0]))
    assert [style for _, style in lines.styles(len(lines.lines) - 1)] == ["bold"]
    help_text = run("--help", columns=100).stdout
    assert "Conventions: MACs are multiply-accumulates" in help_text


# --------------------------------------------------------------------------- 3. structural matching

NAIVE_BRANCH = """name: draft_a
input: 192x28x28
layers:
  - concat:
      branches:
        - [conv: {out: 64, kernel: 1}, relu]
        - [conv: {out: 128, kernel: 3, padding: 1}, relu]
"""
REDUCED_BRANCH = """name: draft_b
input: 192x28x28
layers:
  - concat:
      branches:
        - [conv: {out: 64, kernel: 1}, relu]
        - [conv: {out: 96, kernel: 1}, relu, conv: {out: 128, kernel: 3, padding: 1}, relu]
"""


def test_3_compare_pairs_a_3x3_with_the_3x3_not_with_a_1x1_of_the_same_generated_name(tmp_path: Path) -> None:
    """The issue's pair: 'branch2.conv_1 changed 14.2 M -> 786.4 K' matched A's 3x3 with B's 1x1 reduction."""
    a, b = write(tmp_path, "a.yaml", NAIVE_BRANCH), write(tmp_path, "b.yaml", REDUCED_BRANCH)
    document = json.loads(run("compare", a, b, "--json").stdout)
    rows = {row["name"]: row for row in document["layers"]}
    conv3 = rows["concat_1.branch2.conv_2"]
    assert conv3["baseline"]["name"] == "concat_1.branch2.conv_1"  # A's 3x3, by kind and kernel
    assert conv3["matched_by"] == "position" and conv3["status"] == "changed"  # it reads 96 channels, not 192
    assert conv3["baseline"]["macs"] == 28 * 28 * 128 * 192 * 9
    assert conv3["candidate"]["macs"] == 28 * 28 * 128 * 96 * 9
    assert rows["concat_1.branch2.conv_1"]["status"] == "added"  # B's 1x1 reduction: 28*28*96*192
    assert rows["concat_1.branch2.conv_1"]["candidate"]["macs"] == 28 * 28 * 96 * 192
    assert rows["concat_1.concat"]["matched_by"] == "name"
    assert "by name" in document["matching"]["rule"]
    table = run("compare", a, b, columns=100).stdout
    assert "Matched 1 layer by name and 4 by kind and position within their block" in table
    assert "conv_1 -> conv_2" in table  # baseline conv_1 paired with candidate conv_2, shown as such


def test_3_different_kernels_under_one_name_are_replaced_not_changed(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "input: 64x8x8\nlayers:\n  - conv: {name: head, out: 8, kernel: 5, padding: 2}\n")
    b = write(tmp_path, "b.yaml", "input: 64x8x8\nlayers:\n  - conv: {name: head, out: 8, kernel: 3, padding: 1}\n")
    document = json.loads(run("compare", a, b, "--json").stdout)
    [row] = document["layers"]
    assert (row["status"], row["matched_by"]) == ("replaced", "name")
    assert row["delta"]["macs"] == 8 * 8 * 8 * 64 * (9 - 25)
    assert document["counts"]["replaced"] == 1


# --------------------------------------------------------------------------- 4. the RGB stem

def test_4_the_readme_rewrite_leaves_the_rgb_stem_alone_and_says_so() -> None:
    """conv1 was bottlenecked 3 -> 1 channel (118,013,952 -> 614,656 MACs), inflating 5.41x to 8.30x."""
    result = run("compare", str(EXAMPLES / "resnet18.yaml"), "--reduce", "0.25", "--expand", "--json")
    document = json.loads(result.stdout)
    conv1 = next(row for row in document["layers"] if row["name"] == "conv1")
    assert conv1["status"] == "same" and conv1["candidate"]["macs"] == 112 * 112 * 64 * 3 * 49 == 118_013_952
    assert round(document["ratio"]["macs"], 2) == 5.41  # the honest headline
    first = [skip for skip in document["skipped"] if skip["category"] == "first"]
    assert first == [{"name": "conv1", "category": "first",
                      "reason": "the network's first conv, reading the raw 3-channel input (--include-first "
                                "rewrites it)"}]
    table = run("compare", str(EXAMPLES / "resnet18.yaml"), "--reduce", "0.25", "--expand", columns=100).stdout
    assert "Left alone: 1 conv, the network's first conv" in table and "conv1." in table
    included = json.loads(run("compare", str(EXAMPLES / "resnet18.yaml"), "--reduce", "0.25", "--expand",
                              "--include-first", "--json").stdout)
    assert round(included["ratio"]["macs"], 2) == 8.30
    conv1 = next(row for row in included["layers"] if row["name"] == "conv1")
    assert conv1["candidate"]["macs"] == 112 * 112 * 1 * 1 * 49 == 614_656  # a 7x7 from 1 channel to 1


def test_4_convs_reading_no_more_channels_than_the_width_are_skipped_with_the_reason(tmp_path: Path) -> None:
    spec = write(tmp_path, "s.yaml", "input: 3x16x16\nlayers:\n  - conv: {name: stem, out: 16, kernel: 3}\n"
                                     "  - conv: {name: narrow, out: 32, kernel: 3}\n"
                                     "  - conv: {name: wide, out: 64, kernel: 3}\n")
    document = json.loads(run("compare", spec, "--bottleneck", "16", "--json").stdout)
    assert [(s["name"], s["category"]) for s in document["skipped"]] == [("stem", "first"), ("narrow", "narrow")]
    assert {row["name"]: row["status"] for row in document["layers"]} == {
        "stem": "same", "narrow": "same", "wide_reduce": "added", "wide": "changed"}


# --------------------------------------------------------------------------- 5. the compare header

def test_5_the_header_names_both_specs_and_both_inputs(tmp_path: Path) -> None:
    """'draft_a (baseline) vs draft_a (candidate): input 3x128x128' hid the candidate's 224 input."""
    text = "name: draft_a\ninput: 3x{0}x{0}\nlayers:\n  - conv: {{out: 8, kernel: 3}}\n"
    a = write(tmp_path, "draft_a.yaml", text.format(128))
    b = write(tmp_path, "draft_a224.yaml", text.format(224))
    table = run("compare", a, b, columns=200).stdout.splitlines()
    assert table[0].startswith("Baseline:  draft_a;") and a in table[0] and "input 3x128x128" in table[0]
    assert table[1].startswith("Candidate: draft_a;") and b in table[1] and "input 3x224x224" in table[1]
    flags = run("compare", *CLASSIC, "--bottleneck", "16", columns=200).stdout
    assert "layer (baseline) vs layer (candidate)" not in flags
    assert "Candidate: layer with 1x1 bottlenecks (--bottleneck 16); flags, input 192x28x28" in flags


# --------------------------------------------------------------------------- 6. the sweep bar, Pareto, JSON types

def test_6_the_bar_is_full_for_the_largest_point_shown() -> None:
    """The bar said 'full = largest shown' but was scaled to the unshown no-bottleneck baseline."""
    result = run("sweep", *CLASSIC, "--widths", "4,8", "--format", "markdown")
    rows = [line for line in result.stdout.splitlines() if line.startswith("| 8 ")]
    assert rows and "`" + "█" * 24 + "`" in rows[0]  # 8 is the larger of the two shown
    table = run("sweep", *CLASSIC, "--widths", "4,8").stdout
    assert "Bar: MACs, full = the largest shown." in table
    assert "#" * 24 in table  # ASCII off a terminal; the full bar is 24 wide at natural width


def test_6_pareto_is_per_kernel_so_the_5x5_points_survive_the_limit() -> None:
    document = json.loads(run("sweep", *CLASSIC, "--widths", "4:64:4", "--kernels", "3,5", "--json").stdout)
    by_kernel = {k: [p for p in document["points"] if p["kernel"] == k] for k in (3, 5)}
    # within one kernel, MACs grow with width: every point is on its kernel's front
    for points in by_kernel.values():
        macs = [p["macs"] for p in sorted(points, key=lambda p: p["width"])]
        assert macs == sorted(macs) and all(p["pareto"] for p in points)
    table = run("sweep", *CLASSIC, "--widths", "4:64:4", "--kernels", "3,5", "--limit", "8", columns=100).stdout
    kernels_shown = {line.split()[1] for line in table.splitlines() if re.match(r"\s+\d+\s+[35]\s", line)}
    assert kernels_shown == {"3", "5"}


def test_6_sweep_json_and_csv_give_the_real_resolution_and_an_integer_kernel() -> None:
    """'resolution': 0 when not swept and 'kernel': '5' as a string."""
    document = json.loads(run("sweep", *CLASSIC, "--widths", "4,8", "--json").stdout)
    assert {(p["kernel"], p["resolution"]) for p in document["points"]} == {(5, 28)}
    rows = list(csv.DictReader(io.StringIO(run("sweep", *CLASSIC, "--widths", "4,8", "--format", "csv").stdout)))
    assert {(row["kernel"], row["resolution"]) for row in rows} == {("5", "28")}
    per_axis = json.loads(run("sweep", "--input", "64x17x17", "--out", "32", "--kernel", "1x7", "--padding", "0x3",
                              "--widths", "8", "--json").stdout)
    assert per_axis["points"][0]["kernel"] == [1, 7]
    network = json.loads(run("sweep", str(EXAMPLES / "resnet18.yaml"), "--fractions", "0.5", "--json").stdout)
    assert network["points"][0]["kernel"] is None and network["points"][0]["resolution"] == 224


# --------------------------------------------------------------------------- 7. silent non-answers

def test_7_a_rewrite_that_changes_nothing_says_so_and_exits_0() -> None:
    result = run("compare", str(EXAMPLES / "resnet18.yaml"), "--bottleneck", "1000")
    assert result.exit_code == 0
    assert "convcost: note: the rewrite changes nothing: it inserted no bottleneck" in result.stderr
    assert "16 no more input channels than the bottleneck width" in result.stderr  # resnet18's 3x3 convs but conv1


def test_7_by_block_applies_to_csv() -> None:
    text = run("compare", str(EXAMPLES / "googlenet.yaml"), "--by-block", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["scope"] for row in rows[:-1]] == ["block"] * (len(rows) - 1)
    names = [row["name"] for row in rows[:-1]]
    assert "inception_3a" in names and not any("." in name for name in names)
    per_layer = list(csv.DictReader(io.StringIO(run("compare", str(EXAMPLES / "googlenet.yaml"),
                                                    "--format", "csv").stdout)))
    assert sum(int(row["delta_macs"]) for row in rows[:-1]) == int(rows[-1]["delta_macs"]) == sum(
        int(row["delta_macs"]) for row in per_layer[:-1])


@pytest.mark.parametrize("suffix, check", [
    (".csv", lambda text: next(csv.reader(io.StringIO(text)))[:2] == ["index", "name"]),
    (".json", lambda text: json.loads(text)["totals"]["macs"] == 12_443_648),
    (".md", lambda text: text.startswith("### convcost: `one_by_one`")),
])
def test_7_output_takes_its_format_from_the_extension(tmp_path: Path, suffix: str, check) -> None:
    """--output out.csv wrote a Rich table."""
    out = tmp_path / f"out{suffix}"
    result = run("analyze", str(EXAMPLES / "one_by_one.yaml"), "--output", str(out))
    assert result.exit_code == 0, result.stderr
    assert check(out.read_text())


def test_7_a_format_that_disagrees_with_the_extension_is_an_error(tmp_path: Path) -> None:
    for flags in (["--format", "markdown"], ["--json"]):
        result = run("analyze", str(EXAMPLES / "one_by_one.yaml"), "--output", str(tmp_path / "out.csv"), *flags)
        assert result.exit_code == 2 and "is csv by its extension" in result.stderr
        assert not (tmp_path / "out.csv").exists()
    agreed = run("analyze", str(EXAMPLES / "one_by_one.yaml"), "--output", str(tmp_path / "o.json"), "--json")
    assert agreed.exit_code == 0


def test_7_analyze_mentions_an_exceeded_or_invalid_budget_without_failing(tmp_path: Path) -> None:
    macs = 28 * 28 * 16 * 192 + 28 * 28 * 32 * 16 * 25  # one_by_one: 12,443,648
    text = (EXAMPLES / "one_by_one.yaml").read_text()
    over = write(tmp_path, "over.yaml", text + "budget: {max_macs: 10M, max_params: 1M}\n")
    result = run("analyze", over, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["totals"]["macs"] == macs
    assert result.stderr.startswith(f"convcost: note: over the spec's budget: MACs {macs:,} > 10,000,000")
    assert result.stderr.count("\n") == 1  # params 15,920 are within 1M
    assert run("check", over).exit_code == 1
    invalid = write(tmp_path, "invalid.yaml", text + "budget: {max_macs: lots}\n")
    result = run("analyze", invalid)
    assert result.exit_code == 0 and "convcost: note: budget: " in result.stderr and "'lots'" in result.stderr
    assert run("check", invalid).exit_code == 2


# --------------------------------------------------------------------------- 9. conventions

def test_9_version() -> None:
    from convcost import __version__

    result = run("--version")
    assert result.exit_code == 0 and result.stdout == f"convcost {__version__}\n"


def test_9_shell_completion_is_offered() -> None:
    result = run("--help", columns=120)
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout


def test_9_check_searches_a_directory(tmp_path: Path) -> None:
    """'convcost check drafts/' said 'Is a directory'."""
    drafts = tmp_path / "drafts"
    (drafts / "nested").mkdir(parents=True)
    (drafts / ".hidden").mkdir()
    (drafts / "a.yaml").write_text((EXAMPLES / "one_by_one.yaml").read_text())
    (drafts / "nested" / "b.yml").write_text((EXAMPLES / "one_filter.yaml").read_text())
    (drafts / ".hidden" / "c.yaml").write_text("not: a spec\n")
    (drafts / "notes.txt").write_text("not a spec\n")
    result = run("check", str(drafts))
    assert result.exit_code == 0, result.stderr
    assert [line.split(":")[0] for line in result.stdout.splitlines()[:2]] == [
        str(drafts / "a.yaml"), str(drafts / "nested" / "b.yml")]
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = run("check", str(empty))
    assert refused.exit_code == 2 and "no *.yaml or *.yml spec in the directory" in refused.stderr


def test_9_input_and_resolution_override_a_specs_input() -> None:
    """'analyze spec --input 3x224x224' was refused: 'what does this draft cost at 320x320?' had no answer."""
    spec = str(EXAMPLES / "one_by_one.yaml")
    for flags in (["--resolution", "56"], ["--resolution", "56x56"], ["--input", "192x56x56"]):
        document = json.loads(run("analyze", spec, *flags, "--json").stdout)
        assert document["input"]["shape"] == [192, 56, 56]
        assert document["totals"]["macs"] == 56 * 56 * (16 * 192 + 32 * 16 * 25)
    odd = json.loads(run("analyze", spec, "--resolution", "20x30", "--json").stdout)
    assert odd["totals"]["macs"] == 20 * 30 * (16 * 192 + 32 * 16 * 25)
    assert run("analyze", spec, "--resolution", "2x2x2").exit_code == 2
    flags = json.loads(run("analyze", *CLASSIC, "--resolution", "14", "--json").stdout)
    assert flags["totals"]["macs"] == 14 * 14 * 32 * 192 * 25
    both = run("compare", str(EXAMPLES / "one_by_one_naive.yaml"), spec, "--resolution", "14", "--json")
    assert json.loads(both.stdout)["candidate"]["totals"]["macs"] == 14 * 14 * (16 * 192 + 32 * 16 * 25)
    swept = json.loads(run("sweep", spec, "--resolution", "14", "--fractions", "0.5", "--json").stdout)
    assert swept["input"]["shape"] == [192, 14, 14]


def test_9_schema_takes_format_json_only_as_the_readme_now_says() -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "Every command takes `--format" not in readme and "`schema` always writes JSON" in readme
    assert run("schema", "--format", "csv").exit_code == 2
    assert json.loads(run("schema", "--format", "json").stdout)["title"] == "convcost spec"


# --------------------------------------------------------------------------- 10. errors that help

@pytest.mark.parametrize("key, hint", [
    ("out_channels", "(PyTorch's out_channels is 'out' here)"),
    ("kernel_size", "(PyTorch's kernel_size is 'kernel' here)"),
    ("in_channels", "(in_channels is not written: it is read from the input's shape)"),
])
def test_10_pytorch_names_get_a_did_you_mean(key: str, hint: str) -> None:
    value = "3" if key != "in_channels" else "3, out: 8, kernel: 3"
    text = f"input: 3x8x8\nlayers:\n  - conv: {{{key}: {value}}}\n"
    result = runner.invoke(app, ["analyze", "-"], input=text)
    assert result.exit_code == 2 and hint in result.stderr, result.stderr


def test_10_an_unquoted_expression_in_a_flow_mapping_says_to_quote_it() -> None:
    text = ("input: 3x8x8\nblocks:\n  unit:\n    params: {width: 4}\n    layers:\n"
            "      - conv: {out: ${width * 2}, kernel: 3}\nlayers:\n  - unit\n")
    result = runner.invoke(app, ["analyze", "-"], input=text)
    assert result.exit_code == 2
    assert 'must be quoted: "${width * 2}"' in result.stderr and "did not find expected" in result.stderr


def test_10_a_slash_suggests_floor_division() -> None:
    """Passed before the fix too: '/' already said to write '//' (the issue's report did not reproduce)."""
    text = ("input: 3x8x8\nblocks:\n  unit:\n    params: {width: 4}\n    layers:\n"
            "      - conv: {out: \"${width / 2}\", kernel: 3}\nlayers:\n  - unit\n")
    result = runner.invoke(app, ["analyze", "-"], input=text)
    assert result.exit_code == 2 and "write '//'" in result.stderr


# --------------------------------------------------------------------------- 11. the header's layout, param defaults

@pytest.mark.parametrize("spec, layout", [
    ("input: 4x100\nlayers:\n  - conv: {out: 8, kernel: 3}\n", "Output (CxL)"),
    ("input: 4x8x8\nlayers:\n  - conv: {out: 8, kernel: 3}\n", "Output (CxHxW)"),
    ("input: 4x6x8x8\nlayers:\n  - conv: {out: 8, kernel: 3}\n", "Output (CxDxHxW)"),
])
def test_11_the_output_header_follows_the_networks_dims(spec: str, layout: str) -> None:
    result = runner.invoke(app, ["analyze", "-"], input=spec, env={"COLUMNS": "120"})
    assert layout in result.stdout
    assert "Output (CxHxW)" not in result.stdout or layout == "Output (CxHxW)"


def test_11_docs_mention_template_parameter_defaults_and_the_example_runs() -> None:
    text = (ROOT / "docs" / "spec.md").read_text()
    block = re.search(r"<!-- spec-example -->\n```yaml\n(.*?)```", text, re.S)
    assert block and "default" in text[block.start() - 300:block.start()]
    report = analyze(loads(block.group(1)))
    # unit (defaults: 64 wide, stride 1) on 32x16x16, then unit (128 wide, stride 2) on 64x16x16
    assert report.totals.macs == 16 * 16 * 64 * 32 * 9 + 8 * 8 * 128 * 64 * 9


# --------------------------------------------------------------------------- 12. a row can be checked without the YAML

def test_12_the_json_row_carries_the_layers_options_and_input() -> None:
    document = json.loads(run("analyze", *CLASSIC, "--json").stdout)
    [row] = document["layers"]
    assert row["input_shape"] == [192, 28, 28]
    assert row["options"] == {"kernel": [5, 5], "stride": [1, 1], "padding": "same", "dilation": [1, 1],
                              "groups": 1, "bias": True}
    pools = json.loads(run("analyze", str(EXAMPLES / "googlenet.yaml"), "--json").stdout)["layers"]
    pool = next(row for row in pools if row["kind"] == "max_pool2d")
    assert pool["options"] == {"kernel": [3, 3], "stride": [2, 2], "padding": [0, 0], "dilation": [1, 1],
                               "ceil_mode": True}
    assert next(row for row in pools if row["kind"] == "relu")["options"] == {}


def test_12_the_table_shows_input_kernel_stride_padding_and_groups() -> None:
    table = run("analyze", str(EXAMPLES / "mobilenet_v2.yaml"), columns=160).stdout
    header = next(line for line in table.splitlines() if line.startswith("Layer"))
    for column in ("Input", "Kernel", "Stride", "Pad", "Groups"):
        assert column in header
    depthwise = next(line for line in table.splitlines() if " depthwise " in line)
    assert re.search(r"\b3x3\s+1\s+1\s+\d+\s", depthwise)  # kernel 3x3, stride 1, padding 1, groups = channels


def test_12_columns_choose_what_the_table_shows() -> None:
    result = run("analyze", *CLASSIC, "--columns", "input,output,kernel,stride,padding,groups,macs,params")
    header, rule, row = result.stdout.splitlines()[1:4]
    assert header.split() == ["Layer", "Input", "Output", "(CxHxW)", "Kernel", "Stride", "Pad", "Groups", "MACs",
                              "Params"]
    assert row.split() == ["conv_1", "192x28x28", "32x28x28", "5x5", "1", "same", "1", "120.4", "M", "153.6", "K"]
    wrong = run("analyze", *CLASSIC, "--columns", "input,kernal")
    assert wrong.exit_code == 2 and wrong.stderr.count("\n") == 1
    assert "unknown column 'kernal' (did you mean 'kernel'?)" in wrong.stderr


# --------------------------------------------------------------------------- README

def readme_usage() -> list[str]:
    block = re.search(r"<!-- readme-usage -->\n```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("line", readme_usage())
def test_readme_examples_run_as_written_and_exit_as_documented(line: str, tmp_path: Path) -> None:
    """Each command of the README's usage block, in a shell, as a user types it (cwd: a copy of the
    repository's examples); the exit code is the one its comment gives (0 unless it says 'exit 1')."""
    (tmp_path / "examples").symlink_to(EXAMPLES)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "convcost"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m convcost "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(["bash", "-c", f"set -o pipefail; {line}"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    expected = 1 if "exit 1" in line else 0
    assert done.returncode == expected, (line, done.stderr)
    assert "Traceback" not in done.stderr
    assert done.stdout.strip() or "--output" in line


def test_3_the_builders_generated_names_are_the_ones_compare_treats_as_positional() -> None:
    """compare.is_generated_name mirrors the builder's kind_N naming: every unnamed layer, structure and
    template use is recognised, and no name the spec gave is."""
    from convcost.compare import is_generated_name

    text = """input: 16x8x8
blocks:
  unit:
    params: [width]
    layers:
      - conv: {out: $width, kernel: 3, padding: 1}
      - relu
layers:
  - conv: {name: stem, out: 16, kernel: 3, padding: 1}
  - unit: {width: 16}
  - residual: {body: [conv: {out: 16, kernel: 1}, max_pool: {kernel: 3, stride: 1, padding: 1}]}
  - sequence: {name: stage, layers: [relu, global_avg_pool]}
"""
    report = analyze(loads(text))
    templates = {kind for _, kind in report.blocks}
    parts = {part for row in report.layers for part in row.name.split(".")}
    named = {"stem", "stage", "body", "add"}
    assert named <= parts
    for part in parts:
        assert is_generated_name(part, templates) == (part not in named), part
