"""Byte-for-byte goldens of the CLI's outputs: every example in every format, and compare,
sweep and check. Regenerate after an intended change with ``pytest --update-goldens`` and
review the diff. Each case also fixes the exit code and stderr."""

from __future__ import annotations

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


def test_no_stray_goldens() -> None:
    """Every file in tests/golden/cli belongs to a case (a renamed case leaves no stale golden)."""
    expected = {f"{case}.{FORMATS[args[args.index('--format') + 1]]}" for case, args, _ in CASES}
    for path in GOLDEN.iterdir():
        assert path.name.removesuffix(".stderr") in expected, path.name
