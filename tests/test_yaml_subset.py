"""The line reader for plain YAML (convcost.yaml_subset) against libyaml's events.

For every text, loading with the line reader allowed must give what loading
through libyaml alone gives: the same values and the same location of every
key, item and collection, or the same error. The texts: every example, the
scale benchmark's generated specs, and random documents written in several
styles (indented or not, block or flow, comments, odd spacing), then mutated a
character at a time, so that texts near the edge of the subset are covered.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convcost.yaml_subset as yaml_subset
from convcost.errors import SpecError
from convcost.spec import MAX_NODES, LocatedDict, LocatedList, _compose, _TreeBuilder

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
_spec = importlib.util.spec_from_file_location("gen_specs", ROOT / "benchmarks" / "gen_specs.py")
gen_specs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen_specs)


def located(value: Any) -> Any:
    """Values with every location spelled out, and the container types."""
    if isinstance(value, LocatedDict):
        return ("map", str(value.where),
                [(type(key).__name__, key, str(value.at(key)), located(item)) for key, item in value.items()])
    if isinstance(value, LocatedList):
        return ("seq", str(value.where), [(str(value.at(i)), located(item)) for i, item in enumerate(value)])
    return (type(value).__name__, value)


def outcome(text: str, subset: bool = True) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise yaml_subset.Unsupported

    with pytest.MonkeyPatch.context() as patch:
        if not subset:
            patch.setattr(yaml_subset, "read", refuse)
        try:
            return located(_compose(text, "t.yaml"))
        except SpecError as error:
            return ("error", str(error))


def accepted(text: str) -> bool:
    try:
        yaml_subset.read(text, "t.yaml", _TreeBuilder("t.yaml").scalar, MAX_NODES)
    except yaml_subset.Unsupported:
        return False
    return True


def test_generated_specs_are_read_by_lines_and_agree():
    for text in (gen_specs.stack_spec(403), gen_specs.branched_spec(503, depth=3), gen_specs.branched_spec(120, depth=6)):
        assert accepted(text)
        assert outcome(text) == outcome(text, subset=False)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_every_example_agrees(path):
    text = path.read_text()
    assert outcome(text) == outcome(text, subset=False)


def test_the_subset_covers_the_usual_spellings():
    text = (
        "# a comment\n"
        "name: net  # trailing comment\n"
        "input: 3x224x224\n"
        "layers:\n"
        "- conv: {out: 64, kernel: 7, stride: 2, padding: 3, bias: false}\n"
        "- {kind: max_pool, kernel: 3}\n"
        "- relu\n"
        "-   dropout: {p: 0.5}\n"
        "- concat:\n"
        "    branches:\n"
        "    - []\n"
        "    - [pointwise: {out: 8}, relu]\n"
        "    - - conv: {out: 8, kernel: 3}\n"
        "      - relu\n"
        "budget: {macs: 1e9, params: 25M}\n"
        "blocks: {}\n"
    )
    assert accepted(text)
    assert outcome(text) == outcome(text, subset=False)


@pytest.mark.parametrize("text", [
    "a: 'quoted'\n", 'a: "quoted"\n', "a: &x 1\nb: *x\n", "a: !!str 1\n", "a: |\n  text\n", "a: >\n  text\n",
    "a:\n  - b\n    c\n", "a: [1,\n  2]\n", "? a\n: b\n", "a:\n", "a: b: c\n", "a:\tb\n", "--- \na: 1\n",
    "a: 1\na: 2\n", "a: caf\u00e9\n", "a: 1\r\nb: 2\r\n", "- a\n- b\n", "a: b#c\n", "a: 0x1F\n", "a: 1 2\n",
    "a: {b}\n", "a: {b: 1, b: 2}\n", "a: [b: 1: 2]\n", "<<: {a: 1}\n", "a:\n- b\nc: d\n- e\n",
])
def test_texts_outside_the_subset_go_to_libyaml_and_agree(text):
    assert outcome(text) == outcome(text, subset=False)


# --------------------------------------------------------------------------- random documents

WORDS = ["conv", "relu", "out", "kernel", "16", "3", "0", "-1", "1.5", ".5", "1e3", "true", "false", "null",
         "yes", "off", "3x3", "0x1", "1x7", "08", "0o7", "+1", "1_000", "$c", "$in_channels", "a-b", "x.y", "-",
         "-.inf", "2023-01-01", "1:30", "NaN", "~", "_"]

scalars = st.sampled_from(WORDS)
keys = st.sampled_from(["a", "b", "out", "kernel", "layers", "1", "true", "x-y", "$p"])


def trees(depth: int = 3) -> Any:
    if depth == 0:
        return scalars
    inner = trees(depth - 1)
    return st.one_of(
        scalars,
        st.lists(inner, max_size=3),
        st.dictionaries(keys, inner, max_size=3),
    )


def render(value: Any, indent: int, step: int, style: Any, column: int = 0) -> list[str]:
    """Block YAML lines for ``value`` (a mapping or a list), ``style`` drawing the choices."""
    pad = " " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(item, (dict, list)) or style(0):
                lines.append(f"{pad}{key}: {flow(item)}{comment(style)}")
            elif isinstance(item, list) and item and style(1):  # a sequence at the key's indent
                lines.append(f"{pad}{key}:")
                lines.extend(render(item, indent, step, style))
            elif item:
                lines.append(f"{pad}{key}:")
                lines.extend(render(item, indent + step, step, style))
            else:
                lines.append(f"{pad}{key}: {flow(item)}")
    else:
        for item in value:
            if isinstance(item, (dict, list)) and item and not style(2):
                inner = render(item, indent + 2, step, style)
                first = inner[0][indent + 2:]
                lines.append(f"{pad}- {first}")  # compact: the first line of the item after '- '
                lines.extend(inner[1:])
            else:
                lines.append(f"{pad}- {flow(item)}{comment(style)}")
    return lines


def flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {flow(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(flow(item) for item in value) + "]"
    return str(value)


def comment(style: Any) -> str:
    return "  # note" if style(3) else ""


@st.composite
def documents(draw: Any) -> str:
    root = draw(st.dictionaries(keys, trees(), min_size=1, max_size=4))
    step = draw(st.integers(1, 4))
    choices = draw(st.lists(st.booleans(), min_size=8, max_size=8))
    counter = iter(range(10**6))

    def style(kind: int) -> bool:
        return choices[(kind + next(counter)) % len(choices)]

    lines = render(root, 0, step, style)
    if choices[5]:
        lines.insert(draw(st.integers(0, len(lines))), "# comment line")
    if choices[6]:
        lines.insert(draw(st.integers(0, len(lines))), "")
    return "\n".join(lines) + ("\n" if choices[7] else "")


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(documents())
def test_random_documents_agree(text):
    assert outcome(text) == outcome(text, subset=False)


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(documents(), st.integers(0, 10**6), st.sampled_from(list(" -:#{}[],\n\tx0'&") + ["", "  ", ": ", "- "]))
def test_mutated_documents_agree(text, where, insert):
    position = where % (len(text) + 1)
    mutated = text[:position] + insert + text[position + (1 if where % 3 == 0 else 0):]
    assert outcome(mutated) == outcome(mutated, subset=False)
