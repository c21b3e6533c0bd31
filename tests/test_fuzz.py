"""Fuzzing the command line with hypothesis: random specs, and random mutations of every example.

Whatever the input, ``convcost analyze`` either succeeds (exit 0, one JSON or
CSV document on stdout) or exits 2 with exactly one line on stderr; ``convcost
check`` exits 0, 1 or 2 and every stderr line is ``file:line[:col]: ...``.
Never a traceback, never a hang (each run has a 10 s alarm). About 3,000
cases in all; the example budget is kept small enough for ~a minute.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import typer
import typer.testing
import yaml
from hypothesis import HealthCheck, given, settings
from typer.testing import CliRunner
from hypothesis import strategies as st

from convcost.cli import app
from convcost.builder import STRUCTURE_KINDS
from convcost.kinds import LAYER_KINDS
from convcost.schema import kind_options

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.yaml"))
# Built once: typer's CliRunner rebuilds the click command on every call otherwise (10x slower here).
COMMAND = typer.main.get_command(app)
RUNNER = CliRunner()
PROBLEM_LINE = re.compile(r"^<stdin>(:\d+(:\d+)?)?: (layer '[^']*': )?\S")

def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@contextmanager
def alarm(seconds: int):
    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"a run took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def invoke(args: list[str], text: str) -> Any:
    with alarm(10), mock.patch.object(typer.testing, "_get_command", lambda _app: COMMAND):
        result = RUNNER.invoke(app, args, input=text)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        trace = "".join(traceback.format_exception(result.exception))
        pytest.fail(f"{' '.join(args)} raised on input:\n{text[:2000]}\n{trace}")
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    return result


def assert_analyze_contract(text: str, fmt: str = "json") -> None:
    result = invoke(["analyze", "-", "--format", fmt], text)
    assert result.exit_code in (0, 2), (result.exit_code, result.stderr, text)
    if result.exit_code == 0:  # at most notes (a spec's budget: exceeded or invalid)
        assert all(line.startswith("convcost: note: ") for line in result.stderr.splitlines()), result.stderr
        if fmt == "json":
            assert isinstance(json.loads(result.stdout)["totals"]["macs"], int)
        else:
            rows = list(csv.reader(io.StringIO(result.stdout)))
            assert rows[0][0] == "index" and all(len(row) == len(rows[0]) for row in rows)
    else:  # every problem at once, like check: one line each
        lines = result.stderr.splitlines()
        assert lines, (result.stderr, text)
        assert all(line.startswith("convcost: error: ") for line in lines), (result.stderr, text)
        assert result.stdout == ""


def assert_check_contract(text: str) -> None:
    result = invoke(["check", "-", "--max-macs", "1G"], text)
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.stderr)
    summary = result.stdout.splitlines()
    assert len(summary) == 1 and summary[0].startswith("<stdin>: ")
    if result.exit_code == 2:
        problems = result.stderr.splitlines()
        assert problems and all(PROBLEM_LINE.match(line) for line in problems), result.stderr
        assert summary[0] == f"<stdin>: invalid: {len(problems)} problem{'s' if len(problems) != 1 else ''}"
    else:  # a valid spec: at most warnings (a layer nobody reads), each one located line
        assert all(line.startswith("warning: ") and PROBLEM_LINE.match(line[len("warning: "):])
                   for line in result.stderr.splitlines()), result.stderr


# --------------------------------------------------------------------------- random specs

OPTION_KEYS = ["out", "kernel", "stride", "padding", "dilation", "groups", "bias", "multiplier", "output_padding",
               "output_size", "scale", "mode", "p", "dim", "inplace", "affine", "ceil_mode", "name", "repeat",
               "negative_slope", "track_running_stats", "kernal", "strides", "layers", "body", "branches",
               "from", "if", "axis", "crop", "size", "like", "over", "factor", "parts", "sizes", "names", "reduce",
               "ratio", "gate", "activation", "parameters", "alpha", "shortcut"]
NAMES = ["a", "b", "input", "rgb", "a.b", "unit_1", "conv_1", "nope", ["a", "b"], ["input", "a"], ["a"], []]
WEIRD = [0, -1, -7, 10**29, 10**40, 2**63, "same", "valid", "3x3", "1x7", "0x0", "", "x", None, True, False, 1.5,
         -0.5, 1e308, float("nan"), float("inf"), [], [1, 2], [3, 3, 3], [0], {}, "$w", "${w * 2}", "${1//0}",
         "bilinear", "nearest", "relu", "9" * 40, "1" + "0" * 5000, "${w > 2}", "${w and 1}", "${not true}",
         "channels", "last", "center", "a", ["a", "b"], "input"]
values = st.one_of(st.integers(-3, 70), st.sampled_from(WEIRD))  # for the mutation tests
KINDS = [*LAYER_KINDS, *STRUCTURE_KINDS, "cnov", "unit"]
SHAPES = ["3x32x32", "16x8x8", "8x64", "4x4x8x8", "256", "0x3x3", "3x", "3x224x224", [3, 16, 16], [], 7, -1, None]

# Random specs are built by a hypothesis-controlled random.Random: drawing deep
# trees through strategies costs ~40 ms a case, this costs well under 1 ms.


def random_value(rnd: Any) -> Any:
    return rnd.randint(-3, 70) if rnd.random() < 0.5 else rnd.choice(WEIRD)


def random_option(rnd: Any, key: str) -> Any:
    """Tensor names for the keys that take them (so references resolve often enough), else any value."""
    if key in ("from", "like") and rnd.random() < 0.7:
        return rnd.choice(NAMES)
    if key == "name" and rnd.random() < 0.7:
        return rnd.choice(["a", "b", "c1"])
    return random_value(rnd)


def random_layer(rnd: Any, depth: int) -> Any:
    kind = rnd.choice(KINDS)
    if kind in STRUCTURE_KINDS and depth < 3:
        def body() -> list[Any]:
            return [random_layer(rnd, depth + 1) for _ in range(rnd.randint(0, 3))]

        options: dict[str, Any] = {
            "sequence": lambda: {"layers": body()},
            "concat": lambda: {"branches": [body() for _ in range(rnd.randint(0, 3))]},
            "residual": lambda: {"body": body(), "shortcut": body()},
            "dense": lambda: {"body": body()},
        }.get(kind, dict)()
        if rnd.random() < 0.3:
            options["from"] = rnd.choice(NAMES)
    else:
        # Mostly keys the kind accepts (as the schema reads them), so values get exercised.
        allowed = list(kind_options(kind)[0]) if kind in LAYER_KINDS or kind in STRUCTURE_KINDS else []
        options = {}
        for _ in range(rnd.randint(0, 4)):
            key = rnd.choice(allowed if allowed and rnd.random() < 0.8 else OPTION_KEYS)
            options[key] = random_option(rnd, key)
    form = rnd.randint(0, 2)
    if form == 0 and not options:
        return kind
    if form == 1:
        return {kind: options or None}
    return {"kind": kind, **options}


def random_spec(rnd: Any) -> str:
    spec: dict[str, Any] = {"input": rnd.choice(SHAPES),
                            "layers": [random_layer(rnd, 0) for _ in range(rnd.randint(0, 8))]}
    if rnd.random() < 0.2:
        spec["inputs"] = {"rgb": rnd.choice(SHAPES), "a": rnd.choice(SHAPES)}
        if rnd.random() < 0.8:
            del spec["input"]
    if rnd.random() < 0.2:
        spec["outputs"] = rnd.choice(NAMES)
    if rnd.random() < 0.5:
        spec["blocks"] = {"unit": {"params": {"w": rnd.choice([8, 0, -1, "x"])},
                                   "layers": [random_layer(rnd, 1) for _ in range(rnd.randint(1, 3))]}}
    if rnd.random() < 0.5:
        keys = ["max_macs", "max_params", "max_peak_memory", "max_flops", "max_weight_bytes", "max_mac"]
        spec["budget"] = {rnd.choice(keys): rnd.choice(["1.5G", "8MiB", "7M", "1.0001K", "-1", 10**12, 0, None, []])
                          for _ in range(rnd.randint(0, 2))}
    for _ in range(rnd.randint(0, 2)):
        spec[rnd.choice(["name", "description", "layer", "inputs"])] = random_value(rnd)
    return yaml.dump(spec, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False)


@fuzz(1300)
@given(rnd=st.randoms(use_true_random=False), fmt=st.sampled_from(["json", "csv"]))
def test_random_specs_succeed_or_fail_in_one_line(rnd: Any, fmt: str) -> None:
    text = random_spec(rnd)
    assert_analyze_contract(text, fmt)
    assert_check_contract(text)


# --------------------------------------------------------------------------- mutated examples

def _example_texts() -> list[tuple[str, str]]:
    return [(path.name, path.read_text(encoding="utf-8")) for path in EXAMPLES]


@st.composite
def replacement(draw: Any) -> Any:
    # A copy: later mutations must never edit the strategy's own constants ([], {}, [1, 2], ...),
    # or generation would depend on earlier examples (hypothesis' FlakyStrategyDefinition).
    return copy.deepcopy(draw(st.one_of(values, st.sampled_from([{"conv": {"out": -1}}, ["relu"], "relu",
                                                                {"out": 3}]))))


def mutate(node: Any, data: Any, depth: int = 0) -> Any:
    """One random structural change somewhere below ``node``: delete, replace, rename, duplicate."""
    if isinstance(node, dict) and node:
        key = data.draw(st.sampled_from(sorted(node, key=str)))
        op = data.draw(st.sampled_from(["descend", "descend", "delete", "replace", "rename"]))
        if op == "descend" and depth < 30:
            node[key] = mutate(node[key], data, depth + 1)
        elif op == "delete":
            del node[key]
        elif op == "rename":
            value = node.pop(key)
            node[str(key)[:-1] + data.draw(st.sampled_from(["", "s", "_", "x"]))] = value
        else:
            node[key] = data.draw(replacement())
        return node
    if isinstance(node, list) and node:
        index = data.draw(st.integers(0, len(node) - 1))
        op = data.draw(st.sampled_from(["descend", "descend", "delete", "replace", "duplicate"]))
        if op == "descend" and depth < 30:
            node[index] = mutate(node[index], data, depth + 1)
        elif op == "delete":
            del node[index]
        elif op == "duplicate":
            node.insert(index, copy.deepcopy(node[index]))
        else:
            node[index] = data.draw(replacement())
        return node
    return data.draw(replacement())


@fuzz(500)
@given(data=st.data())
def test_structural_mutations_of_every_example(data: Any) -> None:
    assert EXAMPLES, "examples/ is empty"
    name, text = data.draw(st.sampled_from(_example_texts()), label="example")
    tree = yaml.safe_load(text)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        tree = mutate(tree, data)
    mutated = yaml.safe_dump(tree, sort_keys=False)
    assert_analyze_contract(mutated, "csv")
    assert_check_contract(mutated)


NOISE = list(":[]{}-&*!|>#'\"\t,?%@`") + ["  ", "\n", "- ", ": ", "*a", "&a ", "!!python/object:os.system ", "<<: "]


@st.composite
def text_mutation(draw: Any) -> str:
    name, text = draw(st.sampled_from(_example_texts()))
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        if not lines:
            break
        index = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["indent", "dedent", "delete", "insert", "duplicate", "truncate", "number"]))
        line = lines[index]
        if op == "indent":
            lines[index] = " " * draw(st.integers(1, 5)) + line
        elif op == "dedent":
            lines[index] = line[draw(st.integers(1, 4)):]
        elif op == "delete":
            del lines[index]
        elif op == "duplicate":
            lines.insert(index, line)
        elif op == "truncate":
            lines = lines[: index + 1]
            lines[index] = line[: draw(st.integers(0, max(len(line) - 1, 0)))]
        elif op == "number":
            digits = [m.span() for m in re.finditer(r"\d+", line)]
            if digits:
                start, end = draw(st.sampled_from(digits))
                new = draw(st.sampled_from(["0", "-1", "-64", "9" * 31, "9" * 29, "1e9", "0.5", "3.0", "x"]))
                lines[index] = line[:start] + new + line[end:]
        else:
            position = draw(st.integers(0, len(line)))
            lines[index] = line[:position] + draw(st.sampled_from(NOISE)) + line[position:]
    return "\n".join(lines) + "\n"


@fuzz(700)
@given(text=text_mutation())
def test_text_mutations_of_every_example(text: str) -> None:
    assert_analyze_contract(text, "csv")
    assert_check_contract(text)
