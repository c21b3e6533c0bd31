"""The figures beyond MACs as the CLI shows them: analyze's rows and totals, compare's deltas, check's budgets,
sweep's measured columns, and their options.

Every expected value is worked out here by hand from the layer shapes, the dtype size and the T4's published
figures (65 TFLOP/s float16, 320 GB/s; convcost/hardware.yaml), not read back from convcost.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convcost.cli import app
from convcost.units import format_seconds, parse_seconds

ROOT = Path(__file__).resolve().parent.parent
NAIVE = str(ROOT / "examples" / "one_by_one_naive.yaml")
REDUCED = str(ROOT / "examples" / "one_by_one.yaml")
runner = CliRunner()

T4_FP16_PEAK, T4_BANDWIDTH = 65 * 10**12, 320 * 10**9
PIXELS = 28 * 28


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def layer_seconds(flops: int, bytes_moved: int) -> Fraction:
    """The roofline bound of one layer: the slower of compute and memory."""
    return max(Fraction(flops, T4_FP16_PEAK), Fraction(bytes_moved, T4_BANDWIDTH))


# The classic 5x5 layer and its 1x1-reduced form at float16 (2 bytes), by hand:
# naive conv: 192 -> 32, 5x5, same, bias; FLOPs = 2 MACs + one bias add per output element.
NAIVE_MACS = 32 * 192 * 25 * PIXELS
NAIVE_PARAMS = 32 * 192 * 25 + 32
NAIVE_SECONDS = layer_seconds(2 * NAIVE_MACS + 32 * PIXELS, 2 * (192 * PIXELS + NAIVE_PARAMS + 32 * PIXELS))
REDUCE_MACS, CONV_MACS = 16 * 192 * PIXELS, 32 * 16 * 25 * PIXELS
REDUCE_PARAMS, CONV_PARAMS = 16 * 192 + 16, 32 * 16 * 25 + 32
REDUCED_SECONDS = (layer_seconds(2 * REDUCE_MACS + 16 * PIXELS, 2 * (192 * PIXELS + REDUCE_PARAMS + 16 * PIXELS))
                   + layer_seconds(2 * CONV_MACS + 32 * PIXELS, 2 * (16 * PIXELS + CONV_PARAMS + 32 * PIXELS)))
# Training at float16 with Adam: each conv saves its input for the weight gradient; parameters, gradients and
# Adam's two moments are four parameter-sized tensors. The first layer's input needs no gradient.
NAIVE_TRAIN_BYTES = 2 * 192 * PIXELS + 4 * 2 * NAIVE_PARAMS
REDUCED_TRAIN_BYTES = 2 * (192 * PIXELS + 16 * PIXELS) + 4 * 2 * (REDUCE_PARAMS + CONV_PARAMS)
NAIVE_TRAIN_MACS = 2 * NAIVE_MACS
REDUCED_TRAIN_MACS = 2 * REDUCE_MACS + 3 * CONV_MACS


def test_the_hand_worked_figures_are_the_readme_story() -> None:
    assert NAIVE_MACS == 120_422_400 and REDUCE_MACS + CONV_MACS == 12_443_648
    assert NAIVE_SECONDS == Fraction(2 * NAIVE_MACS + 32 * PIXELS, T4_FP16_PEAK)  # compute-bound
    assert REDUCED_SECONDS < NAIVE_SECONDS and NAIVE_MACS / (REDUCE_MACS + CONV_MACS) > 9.6
    assert 2.7 < NAIVE_SECONDS / REDUCED_SECONDS < 2.8  # the time saved is far less than the MACs


def test_compare_shows_macs_training_memory_and_roofline_side_by_side() -> None:
    code, out, err = run("compare", NAIVE, REDUCED, "--hardware", "t4", "--dtype", "float16", "--json")
    assert code == 0, err
    document = json.loads(out)
    delta = document["delta"]
    assert delta["macs"] == REDUCE_MACS + CONV_MACS - NAIVE_MACS
    assert delta["training_memory_bytes"] == REDUCED_TRAIN_BYTES - NAIVE_TRAIN_BYTES
    assert delta["training_macs"] == REDUCED_TRAIN_MACS - NAIVE_TRAIN_MACS
    assert delta["roofline_seconds"] == pytest.approx(float(REDUCED_SECONDS - NAIVE_SECONDS), rel=1e-12)
    assert document["ratio"]["roofline_seconds"] == pytest.approx(float(NAIVE_SECONDS / REDUCED_SECONDS))
    totals = document["baseline"]["totals"]
    assert totals["training_memory_bytes"] == NAIVE_TRAIN_BYTES and totals["training_macs"] == NAIVE_TRAIN_MACS
    assert totals["roofline"]["hardware"] == "t4" and totals["roofline"]["precision"] == "float16"

    code, table, err = run("compare", NAIVE, REDUCED, "--hardware", "t4", "--dtype", "float16")
    assert code == 0, err
    rows = {line.split("  ")[0]: line for line in table.splitlines()}
    assert "9.68x fewer" in rows["MACs"]
    assert format_seconds(NAIVE_SECONDS) == "3.71 us" and format_seconds(REDUCED_SECONDS) == "1.35 us"
    assert "3.71 us" in rows["Roofline time"] and "1.35 us" in rows["Roofline time"]
    assert "2.74x fewer" in rows["Roofline time"]
    assert "Training memory" in rows and "3.37x fewer" in rows["Training memory"]


def test_analyze_rows_and_totals_carry_the_figures() -> None:
    code, out, err = run("analyze", REDUCED, "--hardware", "t4", "--dtype", "float16", "--json")
    assert code == 0, err
    report = json.loads(out)
    reduce, conv = report["layers"]
    assert reduce["training_macs"] == 2 * REDUCE_MACS and conv["training_macs"] == 3 * CONV_MACS
    assert reduce["saved_activation_bytes"] == 2 * 192 * PIXELS
    assert [axis["size"] for axis in conv["receptive_field"]] == [5, 5]
    assert reduce["roofline"]["bound"] == "memory"
    assert reduce["roofline"]["bytes_read"] == 2 * (192 * PIXELS + REDUCE_PARAMS)
    assert report["totals"]["roofline_seconds"] == pytest.approx(float(REDUCED_SECONDS), rel=1e-12)
    assert report["totals"]["training_memory_bytes"] == REDUCED_TRAIN_BYTES
    assert "roofline" in report["conventions"] and "LOWER BOUND" in report["conventions"]["roofline"]

    code, out, err = run("analyze", REDUCED, "--hardware", "t4", "--dtype", "float16", "--columns",
                         "rf,jump,latency,bound,train_macs,saved")
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith("conv5x5"))
    assert line.split()[:5] == ["conv5x5", "5", "1", "315", "ns"]  # 100,928 B / 320 GB/s = 315.4 ns
    assert "memory" in line
    assert any(line.startswith("Training step") and "roofline on t4 float16 >= 1.35 us" in line
               for line in " ".join(out.split("\n")).split("  "))


def test_the_optimizer_and_mixed_precision_options() -> None:
    def train_bytes(*args: str) -> int:
        code, out, err = run("analyze", NAIVE, "--json", *args)
        assert code == 0, err
        return json.loads(out)["totals"]["training_memory_bytes"]

    saved = 4 * 192 * PIXELS  # float32
    assert train_bytes() == saved + 4 * 4 * NAIVE_PARAMS  # Adam: weights, gradients, two moments
    assert train_bytes("--optimizer", "sgd") == saved + 2 * 4 * NAIVE_PARAMS
    assert train_bytes("--optimizer", "momentum") == saved + 3 * 4 * NAIVE_PARAMS
    # Mixed precision: the conv saves half-precision copies of its input and of its weight (autocast's cast).
    assert train_bytes("--mixed-precision") == 2 * 192 * PIXELS + 2 * 32 * 192 * 25 + 4 * 4 * NAIVE_PARAMS
    for args, message in [
        (["--mixed-precision", "--dtype", "float16"], "use it with --dtype float32"),
        (["--precision", "tf32"], "give --hardware too"),
        (["--hardware", "rtx4080"], "did you mean 'rtx4090'"),
        (["--optimizer", "adan"], "did you mean 'adam'"),
        (["--hardware", "t4", "--dtype", "bfloat16"], "publishes no bfloat16 peak"),
    ]:
        code, out, err = run("analyze", NAIVE, *args)
        assert code == 2 and out == "" and message in err and len(err.splitlines()) == 1, (args, err)


def test_check_holds_the_new_budgets(tmp_path: Path) -> None:
    t4 = ["--hardware", "t4", "--dtype", "float16"]
    assert run("check", NAIVE, *t4, "--max-train-memory", str(NAIVE_TRAIN_BYTES))[0] == 0
    code, out, _ = run("check", NAIVE, *t4, "--max-train-memory", str(NAIVE_TRAIN_BYTES - 1))
    assert code == 1 and f"training memory bytes {NAIVE_TRAIN_BYTES:,} > {NAIVE_TRAIN_BYTES - 1:,}" in out
    assert float(NAIVE_SECONDS) * 1e9 == pytest.approx(3705.69, abs=0.01)
    assert run("check", NAIVE, *t4, "--max-latency", "3706ns")[0] == 0
    code, out, _ = run("check", NAIVE, *t4, "--max-latency", "3.705us")
    assert code == 1 and "roofline time 3.70569058 us > 3.705 us" in out
    assert run("check", NAIVE, *t4, "--max-training-macs", str(NAIVE_TRAIN_MACS))[0] == 0
    assert run("check", NAIVE, *t4, "--max-training-macs", str(NAIVE_TRAIN_MACS - 1))[0] == 1
    # A floor: one_by_one's output sees 5x5 input pixels (a 1x1 then a 5x5).
    assert run("check", REDUCED, "--min-receptive-field", "5")[0] == 0
    code, out, _ = run("check", REDUCED, "--min-receptive-field", "6")
    assert code == 1 and "receptive field 5 < 6" in out

    code, out, err = run("check", NAIVE, "--max-latency", "5ms")
    assert code == 2 and "give --hardware NAME too" in err
    spec = tmp_path / "draft.yaml"
    spec.write_text("input: 3x32x32\nbudget:\n  max_latency: 1ms\nlayers:\n  - conv: {out: 8, kernel: 3}\n")
    code, out, err = run("check", str(spec))
    assert code == 2 and f"{spec}:3:3: budget 'max_latency' needs a hardware profile" in err
    assert run("check", str(spec), "--hardware", "t4")[0] == 0
    spec.write_text("input: 3x32x32\nbudget:\n  max_latency: 1\nlayers:\n  - conv: {out: 8, kernel: 3}\n")
    code, out, err = run("check", str(spec), "--hardware", "t4")
    assert code == 2 and "expected a time with its unit" in err


def test_sweep_measures_training_memory_and_latency_design_by_design() -> None:
    layer = ["--input", "192x28x28", "--out", "32", "--kernel", "5", "--padding", "same", "--widths", "4:64:4"]
    code, out, err = run("sweep", *layer, "--pareto", "macs,train_memory", "--json")
    assert code == 0, err
    points = json.loads(out)["points"]
    assert len(points) == 16
    for point in points:  # float32, Adam: the reduce saves the input, the 5x5 saves the reduced tensor
        w = point["width"]
        params = 192 * w + w + 25 * 32 * w + 32
        assert point["training_memory_bytes"] == 4 * (192 + w) * PIXELS + 16 * params
        assert point["baseline_training_memory_bytes"] == 4 * 192 * PIXELS + 16 * NAIVE_PARAMS
    code, out, err = run("sweep", *layer, "--pareto", "latency", "--hardware", "t4", "--dtype", "float16",
                         "--json")
    assert code == 0, err
    by_width = {point["width"]: point for point in json.loads(out)["points"]}
    assert by_width[16]["roofline_seconds"] == pytest.approx(float(REDUCED_SECONDS), rel=1e-12)
    assert by_width[16]["baseline_roofline_seconds"] == pytest.approx(float(NAIVE_SECONDS), rel=1e-12)
    assert run("sweep", *layer, "--pareto", "latency")[0] == 2  # no hardware
    code, out, err = run("sweep", "--input", "192x28x28", "--out", "32", "--kernel", "5", "--widths", "1:192",
                         "--resolutions", "8:200", "--pareto", "train_memory")
    assert code == 2 and "at most 20,000 points" in err


def test_time_units() -> None:
    assert parse_seconds("5ms") == Fraction(1, 200) and parse_seconds("250us") == Fraction(1, 4000)
    assert parse_seconds("1.5s") == Fraction(3, 2) and parse_seconds("80ns") == Fraction(80, 10**9)
    for bad in ("5", "-1ms", "1e3ms", "5 m", "٣ms"):
        with pytest.raises(ValueError):
            parse_seconds(bad)
    cases = {Fraction(1, 1000): "1.00 ms", Fraction(123456, 10**9): "123 us", Fraction(5, 10**9): "5.00 ns",
             Fraction(99999, 10**8): "1.00 ms", Fraction(1005, 10**6): "1.01 ms", 1234: "1,234 s", 0: "0 s",
             Fraction(15, 10**6): "15.0 us"}
    for value, text in cases.items():
        assert format_seconds(value) == text, value
