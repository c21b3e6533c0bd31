"""Output formats of analyze (table, json, markdown, csv), --output written atomically, plain text off a terminal."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convcost.cli import app
from convcost.cli import output
from convcost.costs import FLOP_CATEGORIES

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ONE_BY_ONE = str(EXAMPLES / "one_by_one.yaml")
# 192x28x28 -> 1x1 to 16 -> 5x5 'same' to 32
REDUCE_MACS = 28 * 28 * 16 * 192
CONV5_MACS = 28 * 28 * 32 * 16 * 25
ANSI = re.compile(r"\x1b\[")
BOX = re.compile("[\u2500-\u257f]")  # box-drawing characters


def analyze(*args: str, **kwargs: object) -> object:
    return runner.invoke(app, ["analyze", *args], **kwargs)


def test_json_shorthand_equals_format_json() -> None:
    assert analyze(ONE_BY_ONE, "--json").stdout == analyze(ONE_BY_ONE, "--format", "json").stdout


def test_csv_one_row_per_layer_with_raw_integers() -> None:
    result = analyze(ONE_BY_ONE, "--format", "csv")
    assert result.exit_code == 0 and result.stderr == ""
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["name"] for row in rows] == ["reduce", "conv5x5"]
    assert [int(row["macs"]) for row in rows] == [REDUCE_MACS, CONV5_MACS]
    assert rows[1]["input_shape"] == "16x28x28" and rows[1]["output_shape"] == "32x28x28"
    for row in rows:
        assert int(row["flops"]) == sum(int(row[f"flops_{c}"]) for c in FLOP_CATEGORIES)
        assert int(row["flops_mac"]) == 2 * int(row["macs"])
        for key in ("macs", "flops", "params", "weight_bytes", "activation_bytes"):
            assert re.fullmatch(r"\d+", row[key])  # no separators, no units


def test_csv_of_every_example_sums_to_the_json_totals() -> None:
    for path in sorted(EXAMPLES.glob("*.yaml")):
        rows = list(csv.DictReader(io.StringIO(analyze(str(path), "--format", "csv").stdout)))
        totals = json.loads(analyze(str(path), "--json").stdout)["totals"]
        for key in ("macs", "flops", "params"):
            assert sum(int(row[key]) for row in rows) == totals[key], (path.name, key)


def test_markdown_is_a_pasteable_table() -> None:
    result = analyze(ONE_BY_ONE, "--format", "markdown")
    assert result.exit_code == 0
    text = result.stdout
    assert text.startswith("### convcost: `one_by_one`")
    assert f"| MACs | 12.4 M MACs | {REDUCE_MACS + CONV5_MACS:,} MACs |" in text
    # the layer's input and options beside its counts (16x28x28 in, 5x5 'same' padding: issue 13 item 12)
    assert (f"| 1 | `conv5x5` | conv2d | 16x28x28 | 32x28x28 | 5x5 | 1 | same | 1 | {CONV5_MACS:,} | "
            f"{32 * 16 * 25 + 32:,} | {32 * 28 * 28 * 4:,} | 80.6% |") in text
    assert "<details>" in text and "</details>" in text
    # every table row has as many cells as its header
    for block in re.findall(r"((?:^\|.*\|\n)+)", text, re.M):
        widths = {line.count("|") - line.count("\\|") for line in block.splitlines()}
        assert len(widths) == 1, block
    assert not ANSI.search(text) and not BOX.search(text)


def test_markdown_escapes_names() -> None:
    from convcost.render.common import escape

    assert escape("a|b*c_d") == "a\\|b\\*c\\_d"
    assert "\n" not in escape("two\nlines")


def test_table_off_a_terminal_has_no_colour_or_box_art() -> None:
    result = analyze(ONE_BY_ONE)
    assert result.exit_code == 0
    assert "conv5x5" in result.stdout
    assert not ANSI.search(result.stdout) and not BOX.search(result.stdout)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_console_is_plain_with_no_color_and_follows_the_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("COLUMNS", "97")
    assert not output._plain_wanted(FakeTerminal())
    assert output.console(FakeTerminal()).width == 97  # Rich reads the terminal's size (COLUMNS here)
    assert output._plain_wanted(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert output._plain_wanted(FakeTerminal())
    monkeypatch.setenv("COLUMNS", "132")
    assert output.console(io.StringIO()).width == 132


def test_bad_format_and_conflicts_exit_2_in_one_line() -> None:
    result = analyze(ONE_BY_ONE, "--format", "markdwon")
    assert result.exit_code == 2 and result.stderr.splitlines() == [
        "convcost: error: --format must be one of table, json, markdown, csv, got 'markdwon' "
        "(did you mean 'markdown'?)"
    ]
    conflict = analyze(ONE_BY_ONE, "--json", "--format", "csv")
    assert conflict.exit_code == 2 and len(conflict.stderr.splitlines()) == 1


@pytest.mark.parametrize("fmt", ["table", "json", "markdown", "csv"])
def test_output_file_holds_what_stdout_would(tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"report.{fmt}"
    result = analyze(ONE_BY_ONE, "--format", fmt, "--output", str(target))
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == ""
    assert target.read_text(encoding="utf-8") == analyze(ONE_BY_ONE, "--format", fmt).stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no temporary file left behind


def test_output_replaces_an_existing_file_and_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    os.chmod(target, 0o640)
    assert analyze(ONE_BY_ONE, "--json", "--output", str(target)).exit_code == 0
    assert json.loads(target.read_text())["totals"]["macs"] == REDUCE_MACS + CONV5_MACS
    assert os.stat(target).st_mode & 0o777 == 0o640


def test_output_is_atomic_when_the_rename_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")

    def broken(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    result = analyze(ONE_BY_ONE, "--json", "--output", str(target))
    assert result.exit_code == 74  # EX_IOERR: the result could not be written
    assert result.stderr.splitlines() == [f"convcost: error: cannot write {target}: No space left on device"]
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_output_never_overwrites_a_spec(tmp_path: Path) -> None:
    spec = tmp_path / "draft.yaml"
    spec.write_text(Path(ONE_BY_ONE).read_text())
    before = spec.read_bytes()
    link = tmp_path / "report.txt"
    link.symlink_to(spec)
    other = tmp_path / "other.yml"
    for target, words in ((spec, "writes no YAML"), (link, "over the spec"), (other, "writes no YAML")):
        result = analyze(str(spec), "--output", str(target))
        assert result.exit_code == 2, target
        assert len(result.stderr.splitlines()) == 1 and words in result.stderr
    assert spec.read_bytes() == before and not other.exists()
    # a spec with another extension is protected by being on the command line
    plain = tmp_path / "draft.txt"
    plain.write_bytes(before)
    refused = analyze(str(plain), "--output", str(plain))
    assert refused.exit_code == 2 and "over the spec" in refused.stderr and plain.read_bytes() == before


def test_output_into_a_missing_directory_fails_in_one_line(tmp_path: Path) -> None:
    result = analyze(ONE_BY_ONE, "--output", str(tmp_path / "no" / "such" / "report.txt"))
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1


def test_every_command_offers_every_format() -> None:
    from convcost.render.common import FORMATS

    for command in ("analyze", "check"):
        help_text = runner.invoke(app, [command, "--help"]).stdout
        assert "--format" in help_text and "--output" in help_text, command
        assert all(fmt in help_text for fmt in FORMATS)


@pytest.mark.parametrize("command", [
    ["compare", str(EXAMPLES / "one_by_one_naive.yaml"), ONE_BY_ONE],
    ["sweep", "--input", "192x28x28", "--out", "32", "--kernel", "5", "--padding", "same", "--widths", "4:16:4"],
])
def test_compare_and_sweep_write_output_files_and_protect_specs(command, tmp_path):
    target = tmp_path / "report.json"
    result = runner.invoke(app, [*command, "--format", "json", "--output", str(target)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    document = json.loads(target.read_text())
    assert document["schema_version"] == 1
    spec = tmp_path / "draft.yaml"
    spec.write_text((EXAMPLES / "one_by_one.yaml").read_text())
    before = spec.read_text()
    result = runner.invoke(app, [*command, "--json", "--output", str(spec)])
    assert result.exit_code == 2 and spec.read_text() == before
