"""Byte-for-byte goldens of the CLI's outputs: every example in every format, and compare,
sweep and check. Regenerate after an intended change with ``pytest --update-goldens`` and
review the diff. Each case also fixes the exit code and stderr."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convcost.cli import app

from .conftest import EXAMPLES, ROOT

GOLDEN = ROOT / "tests" / "golden" / "cli"
EXAMPLE_NAMES = sorted(path.stem for path in EXAMPLES.glob("*.yaml"))
FORMATS = {"json": "json", "markdown": "md", "csv": "csv", "table": "txt"}
CLASSIC = ["--input", "192x28x28", "--out", "32", "--kernel", "5", "--padding", "same"]


def _cases() -> list[tuple[str, list[str], int]]:
    cases: list[tuple[str, list[str], int]] = []
    for name in EXAMPLE_NAMES:
        for fmt in FORMATS:
            cases.append((f"analyze-{name}", ["analyze", f"examples/{name}.yaml", "--format", fmt], 0))
    for fmt in FORMATS:
        cases += [
            ("analyze-classic", ["analyze", *CLASSIC, "--format", fmt], 0),
            ("analyze-googlenet-depth1-exact", ["analyze", "examples/googlenet.yaml", "--depth", "1", "--exact",
                                                "--batch", "8", "--dtype", "float16", "--format", fmt], 0),
            ("compare-classic", ["compare", *CLASSIC, "--bottleneck", "16", "--format", fmt], 0),
            ("compare-googlenet-marked", ["compare", "examples/googlenet.yaml", "--format", fmt], 0),
            ("compare-googlenet-by-block", ["compare", "examples/googlenet.yaml", "--by-block", "--format", fmt], 0),
            ("compare-two-specs", ["compare", "examples/one_by_one_naive.yaml", "examples/one_by_one.yaml",
                                   "--format", fmt], 0),
            ("compare-resnet18-reduce", ["compare", "examples/resnet18.yaml", "--reduce", "0.25", "--expand",
                                         "--format", fmt], 0),
            ("sweep-classic", ["sweep", *CLASSIC, "--widths", "4:64:4", "--kernels", "3,5", "--format", fmt], 0),
            ("sweep-resnet18", ["sweep", "examples/resnet18.yaml", "--fractions", "0.25,0.5",
                                "--resolutions", "160,224", "--format", fmt], 0),
            ("sweep-layer", ["sweep", "examples/googlenet.yaml", "--layer", "inception_3a.branch2.conv_2",
                             "--widths", "8:96:8", "--format", fmt], 0),
            ("check-examples", ["check", *(f"examples/{name}.yaml" for name in EXAMPLE_NAMES),
                                "--max-macs", "5G", "--max-params", "30M", "--format", fmt], 1),
            ("check-invalid", ["check", "tests/data/invalid_draft.yaml", "examples/one_by_one.yaml",
                               "--format", fmt], 2),
        ]
    return cases


CASES = _cases()


@pytest.mark.parametrize("case,args,code", CASES,
                         ids=[f"{case}.{args[args.index('--format') + 1]}" for case, args, _ in CASES])
def test_cli_golden(case: str, args: list[str], code: int, update_goldens: bool,
                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    fmt = args[args.index("--format") + 1]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "120", "NO_COLOR": "1", "TERM": "xterm"})
    assert result.exit_code == code, result.stderr
    outputs = {f"{case}.{FORMATS[fmt]}": result.stdout}
    if result.stderr:
        outputs[f"{case}.{FORMATS[fmt]}.stderr"] = result.stderr
    for name, text in outputs.items():
        golden = GOLDEN / name
        if update_goldens or not golden.exists():
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(text)
            if not update_goldens:
                pytest.fail(f"golden {name} was missing and has been written; review and commit it")
        assert text == golden.read_text(), name
    if not result.stderr:
        assert not (GOLDEN / f"{case}.{FORMATS[fmt]}.stderr").exists()


#: The table of each command on a branched network at the widths of issue 13: 60, 80 and 120 columns.
WIDTH_CASES = {
    "analyze-googlenet": ["analyze", "examples/googlenet.yaml"],
    "compare-googlenet": ["compare", "examples/googlenet.yaml"],
    "sweep-googlenet-layer": ["sweep", "examples/googlenet.yaml", "--layer", "inception_3a.branch2.conv_2",
                              "--widths", "8:96:8", "--kernels", "3,5", "--limit", "12"],
}
WIDTHS = (60, 80, 120)
NUMBER_OR_NAME_CUT = re.compile(r"[\w.]…|…[\w.]")  # an ellipsis touching a name, a kind or a number


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("case", sorted(WIDTH_CASES))
def test_width_golden(case: str, width: int, update_goldens: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every line fits the width, nothing is cut to an ellipsis, no line ends in a space; byte for byte."""
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, WIDTH_CASES[case], env={"COLUMNS": str(width), "TERM": "xterm"})
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert all(len(line) <= width for line in text.splitlines()), max(text.splitlines(), key=len)
    assert "…" not in text and not NUMBER_OR_NAME_CUT.search(text)
    assert not any(line != line.rstrip() for line in text.splitlines())
    golden = GOLDEN / f"{case}-w{width}.txt"
    if update_goldens or not golden.exists():
        golden.write_text(text)
        if not update_goldens:
            pytest.fail(f"golden {golden.name} was missing and has been written; review and commit it")
    assert text == golden.read_text(), golden.name


def test_width_goldens_show_every_layer_name_whole() -> None:
    """The 60-column analyze golden holds every layer's local name, as a whole word (the tree's indentation
    carries the block): nothing was cut or dropped to fit."""
    from convcost import analyze, load

    text = (GOLDEN / "analyze-googlenet-w60.txt").read_text()
    words = set(text.split())
    for row in analyze(load(str(ROOT / "examples" / "googlenet.yaml"))).layers:
        assert row.name.rsplit(".", 1)[-1] in words, row.name


def test_no_stray_goldens() -> None:
    """Every file in tests/golden/cli belongs to a case (a renamed case leaves no stale golden)."""
    expected = {f"{case}.{FORMATS[args[args.index('--format') + 1]]}" for case, args, _ in CASES}
    expected |= {f"{case}-w{width}.txt" for case in WIDTH_CASES for width in WIDTHS}
    for path in GOLDEN.iterdir():
        assert path.name.removesuffix(".stderr") in expected, path.name
