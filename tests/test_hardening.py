"""Hostile input is refused quickly, in one line; arithmetic stays exact far beyond int64 and floats."""

from __future__ import annotations

import csv
import io

import json
import math
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convcost import analyze, loads
from convcost.cli import app
from convcost.costs import adaptive_window_total
from convcost.errors import SpecError
from convcost.reader import MAX_DEPTH, MAX_INT_DIGITS
from convcost.spec import MAX_FILE_BYTES, loads_spec

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    """Each anchor is a list of ``width`` aliases of the one before: width**levels leaves."""
    lines = ["input: 3x8x8", "lol0: &lol0 [relu, relu, relu, relu, relu, relu, relu, relu, relu]"]
    for level in range(1, levels + 1):
        lines.append(f"lol{level}: &lol{level} [" + ", ".join([f"*lol{level - 1}"] * width) + "]")
    lines.append(f"layers: *lol{levels}")
    return "\n".join(lines) + "\n"


def one_line_refusal(text: str, *words: str) -> None:
    result = runner.invoke(app, ["analyze", "-"], input=text)
    assert result.exit_code == 2, result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("convcost: error: "), result.stderr
    for word in words:
        assert word in lines[0]


def test_billion_laughs_is_refused_in_under_a_second_and_100_mb() -> None:
    # Measured in a fresh interpreter: wall time of the CLI call, peak Python allocations
    # (tracemalloc) during it, and the whole process's peak resident size.
    script = textwrap.dedent(
        """
        import json, resource, sys, time, tracemalloc
        from typer.testing import CliRunner
        from convcost.cli import app
        text = sys.stdin.read()
        runner = CliRunner()
        # Warm up (imports, typer's command tree) so the numbers are the refusal's own.
        assert runner.invoke(app, ["analyze", "-"], input="input: 3x8x8\\nlayers: [relu]\\n").exit_code == 0
        tracemalloc.start()
        start = time.perf_counter()
        result = runner.invoke(app, ["analyze", "-"], input=text)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        try:  # this process's own peak (ru_maxrss would include the parent's, inherited at fork)
            with open("/proc/self/status") as status:
                rss = next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmHWM:"))
        except OSError:
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(json.dumps({"code": result.exit_code, "stderr": result.stderr, "seconds": seconds,
                          "traced": peak, "rss": rss}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], input=billion_laughs(), capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout)
    assert measured["code"] == 2
    assert "alias bomb" in measured["stderr"] and len(measured["stderr"].splitlines()) == 1
    assert measured["seconds"] < 1.0
    assert measured["traced"] < 100 * 2**20
    assert measured["rss"] < 100 * 2**20  # the whole interpreter, libraries included


def test_deep_nesting_is_refused_without_crashing_the_parser() -> None:
    # libyaml's own composer recurses in C and segfaults on this; convcost streams events instead.
    depth = 200_000
    text = "input: 3x8x8\nlayers: " + "[" * depth + "]" * depth + "\n"
    done = subprocess.run([sys.executable, "-m", "convcost", "analyze", "-"], input=text, capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2
    # Refused by convcost's depth check, or, with libyaml 0.2.6+ (PyYAML 6.0.2+ wheels), by libyaml's own
    # nesting limit, which its scanner reaches first: either way one located line, never a crash.
    [line] = done.stderr.splitlines()
    assert line.startswith("convcost: error: <stdin>:2:")
    assert (f"YAML nested deeper than {MAX_DEPTH} levels" in line) or ("maximum nesting depth" in line), line


def test_block_style_nesting_is_refused() -> None:
    one_line_refusal("input: 3x8x8\nlayers:\n" + "".join("  " * i + "- \n" for i in range(MAX_DEPTH + 5)),
                     "nested deeper")


def test_aliases_cannot_nest_past_the_depth_limit() -> None:
    # Each alias is shallow, but every level inlines the previous one: depth adds up.
    lines = ["input: 3x8x8", "a0: &a0 " + "[" * 40 + "]" * 40]
    for level in range(1, 4):
        lines.append(f"a{level}: &a{level} " + "[" * 30 + f"*a{level - 1}" + "]" * 30)
    one_line_refusal("\n".join(lines + ["layers: [relu]"]) + "\n", "nested deeper")


def test_file_size_limit() -> None:
    text = "input: 3x8x8\nlayers: [relu]\n" + "#" * MAX_FILE_BYTES
    with pytest.raises(SpecError, match="larger than"):
        loads_spec(text)


def test_file_size_limit_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"input: 3x8x8\nlayers: [relu]\n" + b" " * MAX_FILE_BYTES)
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 2 and "larger than" in result.stderr and len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (f"input: 3x8x8\nlayers: [{{conv: {{out: 1{'0' * MAX_INT_DIGITS}, kernel: 1}}}}]", "more than 30 digits"),
        (f"input: 3x{'9' * 40}\nlayers: [relu]", "at most 30 digits"),
        (f"input: 3x8x8\nlayers: [{{conv: {{out: 4, kernel: '1{'0' * 5000}'}}}}]", "at most 30 digits"),
        ("input: 3x8x8\nlayers: [{upsample: {scale: 1.0e+300}}]", "limit"),
        ("input: 3x8x8\nlayers: !!python/object/apply:os.system [echo hi]", "unsupported YAML tag"),
        ("input: 3x8x8\nlayers: [relu]\nx: !!binary aGk=\nx2: !!set {a}", "unsupported YAML tag"),
        ("input: 3x8x8\nlayers: &a [*a]", "refers to a node that contains it"),
        ("input: 3x8x8\nlayers: [relu]\n---\ninput: 1", "one YAML document"),
        ("input: 3x8x8\n<<: {layers: [relu]}", "merge keys"),
        ("input: 3x8x8\nlayers: [relu]\n? [a]\n: 1", "plain value"),
        ('input: 3x8x8\nlayers: [relu]\n"a\\nb": 1', "unknown top-level key"),
    ],
)
def test_hostile_values_are_refused_in_one_line(text: str, words: str) -> None:
    one_line_refusal(text + "\n", words)


def test_block_recursion_and_deep_block_chains_are_refused() -> None:
    chain = ["input: 3x8x8", "blocks:"]
    for index in range(300):
        chain += [f"  b{index}:", "    layers:", f"      - b{index + 1}"]
    chain += ["  b300:", "    layers: [relu]", "layers: [b0]"]
    one_line_refusal("\n".join(chain) + "\n", "nested more than")
    one_line_refusal("input: 3x8x8\nblocks:\n  a: {layers: [b]}\n  b: {layers: [a]}\nlayers: [a]\n", "uses itself")


def test_repeat_bombs_are_refused_quickly() -> None:
    text = """input: 3x8x8
blocks:
  a: {layers: [{relu: {repeat: 1000}}]}
layers:
  - a: {repeat: 100000}
"""
    start = time.perf_counter()
    one_line_refusal(text, "more than")
    assert time.perf_counter() - start < 5


def test_huge_adaptive_pool_is_counted_in_closed_form() -> None:
    # The window sum has a closed form, so an absurd output size costs nothing to count.
    length, out = 8, 10**12
    network = loads(f"input: 3x{length}x{length}\nlayers: [{{adaptive_avg_pool: {{output_size: {out}}}}}]")
    start = time.perf_counter()
    report = analyze(network)
    assert time.perf_counter() - start < 1
    assert report.totals.flops == 3 * adaptive_window_total(length, out) ** 2


@pytest.mark.parametrize("length", range(1, 30))
def test_adaptive_window_closed_form_matches_brute_force(length: int) -> None:
    for out in range(1, 40):
        brute = sum(math.ceil((i + 1) * length / out) - math.floor(i * length / out) for i in range(out))
        assert adaptive_window_total(length, out) == brute


def test_exact_arithmetic_at_10_to_the_15_macs_and_beyond() -> None:
    # Odd sizes so that no float could carry the product: C_in x H x W, C_out, k x k, 'same' padding.
    c_in, height, width, c_out, k, batch = 12_345, 67_891, 54_321, 9_876, 3, 1_000
    text = f"input: {c_in}x{height}x{width}\nlayers:\n  - conv: {{out: {c_out}, kernel: {k}, padding: 1}}\n"
    macs = height * width * c_out * c_in * k * k * batch  # closed form
    assert macs > 10**21 > 2**63
    assert float(macs) != macs or int(float(macs)) != macs  # beyond float precision
    report = analyze(loads(text), batch=batch)
    assert report.totals.macs == macs
    assert report.totals.flops == 2 * macs + height * width * c_out * batch
    result = runner.invoke(app, ["analyze", "-", "--json", "--batch", str(batch)], input=text)
    assert json.loads(result.stdout)["totals"]["macs"] == macs
    csv_out = runner.invoke(app, ["analyze", "-", "--format", "csv", "--batch", str(batch)], input=text).stdout
    assert next(csv.DictReader(io.StringIO(csv_out)))["macs"] == str(macs)
    check = runner.invoke(app, ["check", "-", "--max-macs", str(macs), "--batch", str(batch)], input=text)
    assert check.exit_code == 0
    check = runner.invoke(app, ["check", "-", "--max-macs", str(macs - 1), "--batch", str(batch)], input=text)
    assert check.exit_code == 1 and f"{macs:,}" in check.stdout


def test_a_layer_of_exactly_10_to_the_15_macs() -> None:
    # 1x1 conv, 10^3 channels in and out, 10^9 output positions (3-D: 10^3 x 10^3 x 10^3).
    network = loads("input: 1000x1000x1000x1000\nlayers: [{conv3d: {out: 1000, kernel: 1, bias: false}}]")
    assert analyze(network).totals.macs == 10**15
    assert analyze(network, batch=10**6).totals.macs == 10**21


def _tree(value):
    """A located tree as plain data with every location, for comparing two loaders."""
    from convcost.located import LocatedDict, LocatedList

    if isinstance(value, LocatedDict):
        return ("map", str(value.where), [(key, str(value.at(key)), _tree(item)) for key, item in value.items()])
    if isinstance(value, LocatedList):
        return ("seq", str(value.where), [(str(value.at(i)), _tree(item)) for i, item in enumerate(value)])
    return value


@pytest.mark.parametrize("path", sorted((Path(__file__).parent.parent / "examples").glob("*.yaml")),
                         ids=lambda path: path.stem)
def test_pure_python_yaml_gives_the_same_tree_and_locations(path, monkeypatch):
    # libyaml is used when present; without it PyYAML's own parser feeds the same loop.
    import yaml

    import convcost.reader

    text = path.read_text()
    with_libyaml = loads_spec(text, str(path))
    monkeypatch.setattr(convcost.reader, "_LOADER", yaml.SafeLoader)
    pure = loads_spec(text, str(path))
    assert _tree(pure.layers) == _tree(with_libyaml.layers)
    assert _tree(pure.blocks) == _tree(with_libyaml.blocks)
    assert (pure.name, pure.input_shape) == (with_libyaml.name, with_libyaml.input_shape)
