"""``convcost check``: budgets parsed exactly, exit codes, every problem of a spec at once.

Expected counts are closed forms written here (a conv's MACs are
H_out x W_out x C_out x C_in x k x k), never copied from the program.
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

from convcost.budget import BUDGET_KEYS, budget_from_options
from convcost.check import check_text
from convcost.cli import app
from convcost.errors import UsageError
from convcost.units import parse_quantity

runner = CliRunner()
LOCATED = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (layer '(?P<layer>[^']+)': )?(?P<message>.+)$")

# one_by_one: 192x28x28 -> 1x1 conv to 16 -> 5x5 'same' conv to 32 (both with bias)
ONE_BY_ONE_MACS = 28 * 28 * 16 * 192 + 28 * 28 * 32 * 16 * 5 * 5
ONE_BY_ONE_PARAMS = (16 * 192 + 16) + (32 * 16 * 25 + 32)
ONE_BY_ONE = """name: one_by_one
input: 192x28x28
layers:
  - conv: {name: reduce, out: 16, kernel: 1}
  - conv: {name: conv5x5, out: 32, kernel: 5, padding: same}
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# --------------------------------------------------------------------------- quantities


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("1.5G", "count", 15 * 10**8),
        ("7M", "count", 7 * 10**6),
        ("7m", "count", 7 * 10**6),
        ("300K", "count", 3 * 10**5),
        ("0.1K", "count", 100),
        ("2T", "count", 2 * 10**12),
        ("1e9", "count", 10**9),
        ("2.5e3", "count", 2500),
        ("250_000", "count", 250000),
        ("9.007199254740993P", "count", 2**53 + 1),  # not a float (2^53 + 1), still exact
        ("8MiB", "bytes", 8 * 2**20),
        ("8Mi", "count", 8 * 2**20),
        ("1.5GiB", "bytes", 3 * 2**29),
        ("512KiB", "bytes", 512 * 1024),
        ("25MB", "bytes", 25 * 10**6),
        ("4096", "bytes", 4096),
        ("4096B", "bytes", 4096),
        (" 3 GB ", "bytes", 3 * 10**9),
        (12345678901234567890123, "count", 12345678901234567890123),
        (1.5e9, "count", 15 * 10**8),
    ],
)
def test_parse_quantity_is_exact(text: object, kind: str, expected: int) -> None:
    assert parse_quantity(text, kind) == expected


@pytest.mark.parametrize(
    ("text", "kind", "words"),
    [
        ("1.5", "count", "not a whole number"),
        ("1.0001K", "count", "not a whole number"),
        ("0.3KiB", "bytes", "not a whole number"),
        ("-1", "count", "negative"),
        ("-1G", "count", "negative"),
        ("1.5Q", "count", "like 1.5G"),
        ("8MiB", "count", "like 1.5G"),  # a byte unit on a count
        ("", "count", "like 1.5G"),
        ("G", "count", "like 1.5G"),
        ("1e99999", "count", "like 1.5G"),
        (True, "count", "expected a number"),
        ([1], "count", "expected a number"),
        (float("inf"), "count", "like 1.5G"),
        (float("nan"), "count", "like 1.5G"),
    ],
)
def test_parse_quantity_refuses_with_a_clear_message(text: object, kind: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        parse_quantity(text, kind)


def test_budget_options_name_the_flag() -> None:
    with pytest.raises(UsageError, match="--max-params"):
        budget_from_options({"max_params": "seven"})
    limits = budget_from_options({key: None for key in BUDGET_KEYS} | {"max_macs": "1.5G"})
    assert [(limit.key, limit.value) for limit in limits] == [("max_macs", 15 * 10**8)]


# --------------------------------------------------------------------------- exit codes


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ([], 0),
        (["--max-macs", str(ONE_BY_ONE_MACS)], 0),  # the limit is inclusive
        (["--max-macs", str(ONE_BY_ONE_MACS - 1)], 1),
        (["--max-macs", "12.4M"], 1),  # 12,400,000 < 12,443,648
        (["--max-macs", "12.5M"], 0),
        (["--max-flops", str(2 * ONE_BY_ONE_MACS)], 1),  # FLOPs add the bias on top of 2 x MACs
        (["--max-params", str(ONE_BY_ONE_PARAMS)], 0),
        (["--max-params", str(ONE_BY_ONE_PARAMS - 1)], 1),
        (["--max-weight-bytes", str(4 * ONE_BY_ONE_PARAMS)], 0),
        (["--max-weight-bytes", str(4 * ONE_BY_ONE_PARAMS - 1)], 1),
        (["--max-weight-bytes", str(2 * ONE_BY_ONE_PARAMS), "--dtype", "float16"], 0),
        (["--max-macs", "1.5Q"], 2),
        (["--max-macs", "-3"], 2),
        (["--format", "yaml"], 2),
    ],
)
def test_budget_exit_codes(tmp_path: Path, options: list[str], code: int) -> None:
    spec = write(tmp_path, "draft.yaml", ONE_BY_ONE)
    result = runner.invoke(app, ["check", spec, *options])
    assert result.exit_code == code, result.stderr
    if code == 2 and options[0] != "--format":
        assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("convcost: error: --max-")
    elif code != 2:
        assert result.stdout.startswith(f"{spec}: {'ok' if code == 0 else 'over budget'}")


def test_peak_memory_budget_matches_the_schedule(tmp_path: Path) -> None:
    # The network input (192x28x28) stays alive until the 1x1 has read it; while the 1x1 runs the input and
    # its output (16x28x28) are alive; while the 5x5 runs, its input (16x28x28) and output (32x28x28).
    peak = 4 * 28 * 28 * max(192 + 16, 16 + 32)
    spec = write(tmp_path, "draft.yaml", ONE_BY_ONE)
    assert runner.invoke(app, ["check", spec, "--max-peak-memory", str(peak)]).exit_code == 0
    assert runner.invoke(app, ["check", spec, "--max-peak-memory", str(peak - 1)]).exit_code == 1


def test_spec_budget_section_and_option_override(tmp_path: Path) -> None:
    spec = write(tmp_path, "draft.yaml", ONE_BY_ONE + "budget:\n  max_macs: 12.4M\n  max_params: 16K\n")
    result = runner.invoke(app, ["check", spec])
    assert result.exit_code == 1
    assert f"MACs {ONE_BY_ONE_MACS:,} > {12_400_000:,}" in result.stdout
    assert f"{spec}:7:3" in result.stdout  # where the limit was set
    # the option replaces the spec's max_macs; max_params (16,000 >= 15,920) still holds
    assert runner.invoke(app, ["check", spec, "--max-macs", "13M"]).exit_code == 0
    assert runner.invoke(app, ["check", spec, "--max-params", "15K", "--max-macs", "13M"]).exit_code == 1


def test_budget_section_keys_are_validated_with_did_you_mean(tmp_path: Path) -> None:
    spec = write(tmp_path, "draft.yaml", ONE_BY_ONE + "budget:\n  max_mac: 1G\n  max_params: 1.5\n  max_peak_memory: 8MiB\n")
    result = runner.invoke(app, ["check", spec])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert lines[0] == (f"{spec}:7:3: unknown budget key 'max_mac' (did you mean 'max_macs'?); "
                        f"allowed: {', '.join(BUDGET_KEYS)}")
    assert lines[1].startswith(f"{spec}:8:3: budget 'max_params':") and "whole number" in lines[1]


def test_invalid_wins_over_budget_and_every_file_gets_a_summary_line(tmp_path: Path) -> None:
    good = write(tmp_path, "good.yaml", ONE_BY_ONE)
    bad = write(tmp_path, "bad.yaml", ONE_BY_ONE.replace("kernel: 1}", "kernal: 1}"))
    big = write(tmp_path, "big.yaml", ONE_BY_ONE.replace("out: 32", "out: 64"))
    result = runner.invoke(app, ["check", good, bad, big, "--max-macs", "13M"])
    assert result.exit_code == 2
    summary = result.stdout.splitlines()
    assert summary[0].startswith(f"{good}: ok")
    assert summary[1] == f"{bad}: invalid: 1 problem"
    assert summary[2].startswith(f"{big}: over budget")
    assert summary[3] == "3 specs: 1 ok, 1 over budget, 1 invalid"
    assert runner.invoke(app, ["check", good, big, "--max-macs", "13M"]).exit_code == 1
    assert runner.invoke(app, ["check", good, good]).exit_code == 0


def test_stdin_is_read_once(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", "-"], input=ONE_BY_ONE)
    assert result.exit_code == 0 and result.stdout.startswith("<stdin>: ok")
    assert runner.invoke(app, ["check", "-", "-"], input=ONE_BY_ONE).exit_code == 2


def test_missing_file_is_invalid_not_a_crash(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    result = runner.invoke(app, ["check", missing])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{missing}: cannot read spec")


# --------------------------------------------------------------------------- every problem at once

MANY_PROBLEMS = """\
name: many
input: 3x32x32
colour: blue
blocks:
  unit:
    params: [width]
    layers:
      - conv: {out: $width, kernal: 3}
layers:
  - conv: {name: c1, out: 16, kernel: 3, padding: 1}
  - conv: {name: c2, out: 16, kernel: 3, strid: 2}
  - batch_norm
  - cnov: {out: 3}
  - unit: {width: 4, repeat: 3}
  - conv: {name: c3, out: 0, kernel: 1}
  - max_pool: {name: p1, kernel: 2, ceil_mode: maybe}
  - linear: {name: fc, out: 10, axis: last}
  - linear: {name: fc, out: 10, axis: last}
"""
PROBLEMS = [  # (line, the text the column must point at, layer, start of message)
    (3, "colour", None, "unknown top-level key 'colour'"),
    (8, "kernal", "unit_1.0.conv_1", "unknown key 'kernal' for conv (did you mean 'kernel'?)"),
    (11, "strid", "c2", "unknown key 'strid' for conv (did you mean 'stride'?)"),
    (13, "cnov", None, "unknown layer kind 'cnov' (did you mean 'conv'?)"),
    (15, "out: 0", "c3", "'out' must be >= 1, got 0"),
    (16, "ceil_mode", "p1", "'ceil_mode' must be true or false, got 'maybe'"),
    (18, "linear", "fc", "duplicate layer name 'fc'"),
]


def column_of(text: str, line: int, token: str) -> int:
    return text.splitlines()[line - 1].index(token) + 1


EXPECTED = [(line, column_of(MANY_PROBLEMS, line, token), layer, message) for line, token, layer, message in PROBLEMS]


def test_check_reports_every_problem_with_its_location(tmp_path: Path) -> None:
    spec = write(tmp_path, "many.yaml", MANY_PROBLEMS)
    result = runner.invoke(app, ["check", spec])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == len(EXPECTED), result.stderr
    for line, (row, column, layer, message) in zip(lines, EXPECTED):
        match = LOCATED.match(line)
        assert match, line
        assert (match["file"], int(match["line"]), int(match["col"]), match["layer"]) == (spec, row, column, layer)
        assert match["message"].startswith(message), line
    assert result.stdout == f"{spec}: invalid: {len(EXPECTED)} problems\n"


def test_analyze_reports_every_problem_like_check(tmp_path: Path) -> None:
    """Issue 13 item 9: analyze stopped at the first problem (one line, 'colour') where check listed all seven."""
    spec = write(tmp_path, "many.yaml", MANY_PROBLEMS)
    result = runner.invoke(app, ["analyze", spec])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    checked = runner.invoke(app, ["check", spec]).stderr.splitlines()
    assert len(lines) == len(PROBLEMS) == len(checked) == 7
    assert lines == [f"convcost: error: {line}" for line in checked]
    assert lines[0].startswith(f"convcost: error: {spec}:3:1: unknown top-level key 'colour'")
    assert result.stdout == ""


def test_consequences_of_an_earlier_problem_are_not_reported() -> None:
    # The bad conv stands in as passing its 3 channels through, so the residual would add 8 channels to 3:
    # that is a consequence of the first problem, not a second one.
    text = """input: 3x16x16
layers:
  - conv: {out: 8, kernel: 3, padding: 1, bogus: 1}
  - residual:
      body: [conv: {out: 8, kernel: 3, padding: 1}]
  - linear: {out: 4}
"""
    result = check_text(text, "s.yaml")
    assert [error.where.line for error in result.problems] == [3]
    # Without the first problem the residual mismatch is a real problem and is reported.
    real = text.replace("out: 8, kernel: 3, padding: 1, bogus: 1", "out: 4, kernel: 3, padding: 1")
    problems = check_text(real, "s.yaml").problems
    assert len(problems) == 1 and "cannot add" in problems[0].message and problems[0].where.line == 4


def test_a_broken_block_is_reported_once_not_at_every_use() -> None:
    text = """input: 3x16x16
blocks:
  unit:
    params: [w]
    layer: [relu]
layers:
  - unit: {w: 1}
  - unit: {w: 2}
  - relu: {inplace: perhaps}
"""
    problems = check_text(text, "s.yaml").problems
    assert [(p.where.line, p.where.column) for p in problems] == [(5, column_of(text, 5, "layer")),
                                                                  (9, column_of(text, 9, "inplace"))]
    assert "unknown key 'layer' in block 'unit' (did you mean 'layers'?)" in problems[0].message


def test_a_bad_template_line_is_reported_once_for_all_its_copies() -> None:
    text = """input: 3x16x16
blocks:
  unit:
    layers: [{conv: {out: 4, kernel: 3, stride: 0}}]
layers:
  - unit: {repeat: 50}
"""
    problems = check_text(text, "s.yaml").problems
    assert len(problems) == 1 and problems[0].message == "'stride' values must be >= 1, got 0"


# --------------------------------------------------------------------------- formats


def test_check_formats(tmp_path: Path) -> None:
    good = write(tmp_path, "good.yaml", ONE_BY_ONE)
    bad = write(tmp_path, "bad.yaml", MANY_PROBLEMS)
    data = json.loads(runner.invoke(app, ["check", good, bad, "--json", "--max-macs", "12M"]).stdout)
    assert data["exit_code"] == 2
    first, second = data["files"]
    assert first["status"] == "over_budget" and first["totals"]["macs"] == ONE_BY_ONE_MACS
    assert first["budget"] == [{"key": "max_macs", "metric": "macs", "actual": ONE_BY_ONE_MACS,
                                "limit": 12 * 10**6, "within": False, "origin": "--max-macs 12M"}]
    assert second["status"] == "invalid" and len(second["problems"]) == len(EXPECTED)
    assert [(p["line"], p["column"], p["layer"]) for p in second["problems"]] == [e[:3] for e in EXPECTED]

    rows = list(csv.DictReader(io.StringIO(runner.invoke(app, ["check", good, bad, "--format", "csv"]).stdout)))
    assert rows[0]["macs"] == str(ONE_BY_ONE_MACS) and rows[0]["status"] == "ok"
    assert rows[1]["status"] == "invalid" and rows[1]["problems"] == str(len(EXPECTED)) and rows[1]["macs"] == ""

    markdown = runner.invoke(app, ["check", good, "--format", "markdown", "--max-macs", "12M"]).stdout
    assert "| Spec | Status |" in markdown and "**over budget**" in markdown
    assert f"{ONE_BY_ONE_MACS:,}" in markdown


def test_check_output_file_and_spec_protection(tmp_path: Path) -> None:
    spec = write(tmp_path, "draft.yaml", ONE_BY_ONE)
    out = tmp_path / "result.json"
    result = runner.invoke(app, ["check", spec, "--json", "--output", str(out), "--max-macs", "1M"])
    assert result.exit_code == 1 and result.stdout == ""
    assert json.loads(out.read_text())["files"][0]["status"] == "over_budget"
    before = Path(spec).read_text()
    refused = runner.invoke(app, ["check", spec, "--output", spec])
    assert refused.exit_code == 2 and "refusing" in refused.stderr
    assert Path(spec).read_text() == before


# --------------------------------------------------------------------------- CI integration

ROOT = Path(__file__).resolve().parent.parent


def ci_examples() -> list[tuple[str, str]]:
    """Shell blocks between <!-- ci-example --> markers in docs/ci.md and the README."""
    found = []
    for name in ("docs/ci.md", "README.md"):
        path = ROOT / name
        if not path.exists():
            continue
        for block in re.findall(r"<!-- ci-example -->(.*?)<!-- /ci-example -->", path.read_text(), re.S):
            code = re.search(r"```(?:bash|sh)\n(.*?)```", block, re.S)
            assert code, f"{name}: a ci-example without a bash block"
            found.append((name, code.group(1)))
    return found


def shell(tmp_path: Path, script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "convcost"  # what `pip install` puts on PATH
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m convcost "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": str(ROOT)}
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_documented_ci_step_fails_a_draft_over_budget(tmp_path: Path) -> None:
    examples = ci_examples()
    assert any(name == "docs/ci.md" for name, _ in examples)
    project = tmp_path / "project"
    drafts = project / "drafts"
    drafts.mkdir(parents=True)
    (drafts / "small.yaml").write_text(ONE_BY_ONE)  # 12.4 M MACs, 15.9 K params
    for name, script in examples:
        passed = shell(tmp_path, script, project)
        assert passed.returncode == 0, (name, passed.stdout, passed.stderr)
    # ResNet-50: 4.09 G MACs and 25.6 M params, over the 1.5G / 7M budget of the example.
    (drafts / "big.yaml").write_text((ROOT / "examples" / "resnet50.yaml").read_text())
    for name, script in examples:
        failed = shell(tmp_path, script, project)
        assert failed.returncode == 1, (name, failed.stdout, failed.stderr)
        assert "drafts/big.yaml: over budget" in failed.stdout
    (drafts / "broken.yaml").write_text(ONE_BY_ONE.replace("out: 16", "out: -16"))
    for name, script in examples:
        broken = shell(tmp_path, script, project)
        assert broken.returncode == 2 and "drafts/broken.yaml:4:" in broken.stderr


def test_pre_commit_hook_runs_convcost_check(tmp_path: Path) -> None:
    import yaml

    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = hooks
    assert hook["id"] == "convcost-check" and hook["language"] == "python" and hook["pass_filenames"]
    assert re.search(hook["files"], "drafts/net.yaml") and re.search(hook["files"], "specs/a/b.yml")
    assert not re.search(hook["files"], ".github/workflows/ci.yaml")
    project = tmp_path / "project"
    (project / "drafts").mkdir(parents=True)
    (project / "drafts" / "net.yaml").write_text(ONE_BY_ONE)
    ok = shell(tmp_path, f"{hook['entry']} drafts/net.yaml", project)
    assert ok.returncode == 0, ok.stderr
    (project / "drafts" / "net.yaml").write_text(ONE_BY_ONE + "budget: {max_params: 10K}\n")
    assert shell(tmp_path, f"{hook['entry']} drafts/net.yaml", project).returncode == 1
