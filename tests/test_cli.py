"""The foundation's acceptance cases through the real CLI (typer's CliRunner)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from convcost.cli import app

from .conftest import EXAMPLES

runner = CliRunner()

CLASSIC = ["analyze", "--input", "192x28x28", "--out", "32", "--kernel", "5", "--padding", "same"]


def run_json(args):
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)  # stdout is one JSON document and nothing else


def test_classic_5x5_from_flags():
    doc = run_json(CLASSIC)
    # 28*28 outputs x 32 filters x 192 channels x 5*5 taps
    assert doc["totals"]["macs"] == 28 * 28 * 32 * 192 * 5 * 5 == 120_422_400
    assert doc["totals"]["params"] == 32 * 192 * 25 + 32 == 153_632
    assert doc["layers"][0]["output_shape"] == [32, 28, 28]
    assert doc["totals"]["flops"] == 2 * 120_422_400 + 32 * 28 * 28
    doc = run_json([*CLASSIC, "--no-bias"])
    assert doc["totals"]["params"] == 153_600


def test_classic_table_names_units():
    result = runner.invoke(app, CLASSIC, env={"COLUMNS": "160"})
    assert result.exit_code == 0
    assert "120.4 M MACs" in result.stdout
    assert "32x28x28" in result.stdout
    exact = runner.invoke(app, [*CLASSIC, "--exact"], env={"COLUMNS": "160"})
    assert "120,422,400" in exact.stdout


def test_one_by_one_example_reduction():
    doc = run_json(["analyze", str(EXAMPLES / "one_by_one.yaml")])
    rows = {row["name"]: row for row in doc["layers"]}
    assert rows["reduce"]["macs"] == 28 * 28 * 16 * 192 == 2_408_448
    assert rows["conv5x5"]["macs"] == 28 * 28 * 32 * 16 * 25 == 10_035_200
    assert doc["totals"]["macs"] == 12_443_648


def test_kernel_per_axis_and_stride_flags():
    doc = run_json(["analyze", "--input", "64x17x17", "--out", "96", "--kernel", "1x7", "--padding", "0x3",
                    "--stride", "2", "--no-bias"])
    # H: (17 - 1)//2 + 1 = 9; W: (17 + 6 - 7)//2 + 1 = 9
    assert doc["layers"][0]["output_shape"] == [96, 9, 9]
    assert doc["totals"]["macs"] == 96 * 9 * 9 * 64 * 7


def test_batch_and_dtype_options():
    doc = run_json([*CLASSIC, "--batch", "8", "--dtype", "float16"])
    assert doc["totals"]["macs"] == 8 * 120_422_400
    assert doc["totals"]["weight_bytes"] == 153_632 * 2
    assert doc["layers"][0]["activation_bytes"] == 8 * 32 * 28 * 28 * 2
    assert doc["input"] == {"shape": [192, 28, 28], "batch": 8, "dtype": "float16"}


def test_json_document_shape():
    doc = run_json(["analyze", str(EXAMPLES / "resnet18.yaml")])
    assert doc["schema_version"] == 1
    for key in ("name", "kind", "input_shape", "output_shape", "macs", "flops", "params", "weight_bytes",
                "activation_bytes"):
        assert key in doc["layers"][0]
    for key in ("macs", "flops", "params", "buffers", "weight_bytes", "activation_bytes", "peak_activation_bytes"):
        assert isinstance(doc["totals"][key], int)


def test_spec_from_stdin():
    text = (EXAMPLES / "one_by_one.yaml").read_text()
    result = runner.invoke(app, ["analyze", "-", "--json"], input=text)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["totals"]["macs"] == 12_443_648


@pytest.mark.parametrize("args,message", [
    (["analyze"], "give a SPEC file"),
    (["analyze", "x.yaml", "--out", "8"], "either SPEC or layer flags"),
    ([*CLASSIC, "--dtype", "float64"], "--dtype must be one of"),
    ([*CLASSIC, "--batch", "0"], "--batch must be >= 1"),
])
def test_usage_errors_exit_2_with_one_line(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_python_dash_m_and_help():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "convcost", "analyze", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "--kernel" in proc.stdout and "--json" in proc.stdout
