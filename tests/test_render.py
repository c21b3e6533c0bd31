"""Rendering goldens (regenerate with `pytest --update-goldens`) and invariants on every example."""

from __future__ import annotations

import io
import json

import pytest

from convcost import analyze, load
from convcost.grouping import block_groups, hierarchy
from convcost.render.analysis import report_dict
from convcost.render.common import View, json_text
from convcost.render.analysis import report_renderable

from .conftest import EXAMPLES, ROOT

GOLDEN = ROOT / "tests" / "golden"
ALL_EXAMPLES = sorted(EXAMPLES.glob("*.yaml"))


def render_text(renderable) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=140, color_system=None, force_terminal=False, legacy_windows=False).print(renderable)
    return buffer.getvalue()


@pytest.mark.parametrize("path", ALL_EXAMPLES, ids=lambda p: p.stem)
def test_every_example_invariants(path):
    report = analyze(load(str(path)))
    t = report.totals
    for field in ("macs", "flops", "params", "buffers", "weight_bytes", "activation_bytes"):
        assert getattr(t, field) == sum(getattr(row, field) for row in report.layers), field
    assert t.flops == sum(count for _, count in t.flops_by_category)
    # the peak is at least the biggest single step (input + output of any one layer) and at most everything
    assert t.peak_activation_bytes >= max(row.activation_bytes for row in report.layers)
    assert t.peak_activation_bytes <= t.activation_bytes + t.input_bytes
    # collapsing to depth 1 keeps the totals
    top = hierarchy(report, depth=1)
    assert sum((row.group or row.layer).macs for row in top) == t.macs
    doc = json.loads(json.dumps(report_dict(report)))
    assert doc["totals"]["macs"] == t.macs
    assert json.loads(json_text(report_dict(report))) == doc
    assert block_groups(report) == tuple(row.group for row in hierarchy(report) if row.group is not None)


@pytest.mark.parametrize("name,depth", [("one_by_one", None), ("googlenet", 1), ("resnet18", 2)])
def test_table_golden(name, depth, update_goldens):
    report = analyze(load(str(EXAMPLES / f"{name}.yaml")))
    text = render_text(report_renderable(report, View(depth=depth)))
    golden = GOLDEN / f"{name}{'' if depth is None else f'.depth{depth}'}.txt"
    if update_goldens or not golden.exists():
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
        if not update_goldens:
            pytest.fail(f"golden {golden.name} was missing and has been written; review and commit it")
    assert text == golden.read_text()
